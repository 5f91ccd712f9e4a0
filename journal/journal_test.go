package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

var window0 = time.Unix(1_700_000_000, 0)

func testRecord(i int) *Record {
	return &Record{
		Key:           fmt.Sprintf("key-%04d", i),
		IntervalStart: window0.Add(time.Duration(i%3) * time.Second),
		Interval:      10 * time.Second,
		Received:      window0.Add(time.Duration(i) * time.Millisecond),
		Encoding:      Encoding(i % 3),
		Body:          bytes.Repeat([]byte{byte(i)}, 10+i*7),
	}
}

// collected is what a replay saw, ordered by window and key once Open
// returns (records of one segment are replayed concurrently).
type collected struct {
	mu      sync.Mutex
	windows []time.Time
	records []Record
}

func (c *collected) replay(w time.Time, r *Record) error {
	cp := *r
	cp.Body = bytes.Clone(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.windows = append(c.windows, w)
	c.records = append(c.records, cp)
	return nil
}

func (c *collected) sort() {
	idx := make([]int, len(c.records))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if d := c.windows[a].Compare(c.windows[b]); d != 0 {
			return d
		}
		return strings.Compare(c.records[a].Key, c.records[b].Key)
	})
	ws, rs := make([]time.Time, len(idx)), make([]Record, len(idx))
	for i, k := range idx {
		ws[i], rs[i] = c.windows[k], c.records[k]
	}
	c.windows, c.records = ws, rs
}

func open(t *testing.T, dir string, max int64) (*Journal, *collected, *telemetry.Registry) {
	t.Helper()
	var c collected
	reg := telemetry.NewRegistry()
	j, err := Open(Options{Dir: dir, MaxBytes: max, Stats: reg}, c.replay)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	c.sort()
	return j, &c, reg
}

func counter(reg *telemetry.Registry, name string) float64 {
	var v float64
	reg.Visit(func(m telemetry.Measurement) {
		if string(m.Name) == "veneur."+name {
			v += m.Value
		}
	})
	return v
}

func equalRecord(a, b *Record) bool {
	return a.Key == b.Key && a.IntervalStart.Equal(b.IntervalStart) && a.Interval == b.Interval &&
		a.Received.Equal(b.Received) && a.Encoding == b.Encoding && bytes.Equal(a.Body, b.Body)
}

func TestAppendThenReplayInWindowOrder(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, 0)
	want := map[time.Time][]*Record{}
	for i := range 12 {
		w := window0.Add(time.Duration(2-i%3) * 10 * time.Second) // out of order
		rec := testRecord(i)
		if err := j.Append(w, rec); err != nil {
			t.Fatal(err)
		}
		want[w] = append(want[w], rec)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, reg := open(t, dir, 0)
	if len(got.records) != 12 {
		t.Fatalf("replayed %d records, want 12", len(got.records))
	}
	i := 0
	for k := range 3 {
		w := window0.Add(time.Duration(k) * 10 * time.Second)
		for _, rec := range want[w] {
			if !got.windows[i].Equal(w) || !equalRecord(&got.records[i], rec) {
				t.Errorf("record %d: window %v %+v, want %v %+v", i, got.windows[i], got.records[i], w, rec)
			}
			i++
		}
	}
	if n := counter(reg, "import.journal_replayed_records"); n != 12 {
		t.Errorf("import.journal_replayed_records = %v, want 12", n)
	}
}

// A journal cut at every byte of its last record (the process died while
// writing it) opens, replays exactly the whole records before the cut, and
// takes appends after them that the next start replays.
func TestTruncatedAtEveryOffsetOfTheLastRecord(t *testing.T) {
	src := t.TempDir()
	j, _, _ := open(t, src, 0)
	recs := []*Record{testRecord(1), testRecord(2), testRecord(3)}
	for _, r := range recs {
		if err := j.Append(window0, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	name := segmentName(window0.UnixNano())
	full, err := os.ReadFile(filepath.Join(src, name))
	if err != nil {
		t.Fatal(err)
	}
	lastAt := len(full) - encodedSize(recs[2])
	extra := testRecord(9)
	for cut := lastAt; cut <= len(full); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), full[:cut], 0o640); err != nil {
			t.Fatal(err)
		}
		j, got, reg := open(t, dir, 0)
		whole := 2
		if cut == len(full) {
			whole = 3
		}
		if len(got.records) != whole {
			t.Fatalf("cut at %d of %d: replayed %d records, want %d", cut, len(full), len(got.records), whole)
		}
		for i := range whole {
			if !equalRecord(&got.records[i], recs[i]) {
				t.Fatalf("cut at %d: record %d differs", cut, i)
			}
		}
		wantCorrupt := 0.0
		if cut != lastAt && cut != len(full) {
			wantCorrupt = 1
		}
		if n := counter(reg, "import.journal_corrupt_records"); n != wantCorrupt {
			t.Fatalf("cut at %d: corrupt records %v, want %v", cut, n, wantCorrupt)
		}
		if err := j.Append(window0, extra); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		_, again, _ := open(t, dir, 0)
		if len(again.records) != whole+1 || !equalRecord(&again.records[whole], extra) {
			t.Fatalf("cut at %d: after an append, replayed %d records, want %d ending with the append", cut, len(again.records), whole+1)
		}
	}
}

// A flipped bit anywhere in a record's payload ends the replay there.
func TestCorruptRecordEndsItsSegmentOnly(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, 0)
	other := window0.Add(10 * time.Second)
	for i := range 3 {
		if err := j.Append(window0, testRecord(i)); err != nil {
			t.Fatal(err)
		}
		if err := j.Append(other, testRecord(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segmentName(window0.UnixNano()))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second := headerSize + encodedSize(testRecord(0))
	b[second+frameSize+3] ^= 0x10
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	j2, got, reg := open(t, dir, 0)
	if len(got.records) != 1+3 {
		t.Fatalf("replayed %d records, want 1 of the damaged window and 3 of the other", len(got.records))
	}
	if n := counter(reg, "import.journal_corrupt_records"); n != 1 {
		t.Errorf("corrupt records %v, want 1", n)
	}
	if r := j2.Replayed(); r.Corrupt != 1 || r.Records != 4 || r.Segments != 2 {
		t.Errorf("Replayed() = %+v", r)
	}
}

func TestForgetDeletesFlushedWindows(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, 0)
	w1, w2 := window0, window0.Add(10*time.Second)
	for i, w := range []time.Time{w1, w2, w1} {
		if err := j.Append(w, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := j.Bytes()
	if err := j.Forget(w1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(w1.UnixNano()))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("segment of the flushed window still there: %v", err)
	}
	if after, want := j.Bytes(), int64(headerSize+encodedSize(testRecord(1))); after != want || after >= before {
		t.Errorf("Bytes() = %d after Forget (%d before), want %d", after, before, want)
	}
	if err := j.Append(w1, testRecord(5)); !errors.Is(err, ErrFlushed) {
		t.Errorf("Append to a forgotten window: %v, want ErrFlushed", err)
	}
	// The process dies after the marker, before deleting a segment: the
	// next start must not replay it.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	stale, err := os.ReadFile(filepath.Join(dir, segmentName(w2.UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	j2, _, _ := open(t, dir, 0)
	if err := j2.Forget(w2); err != nil {
		t.Fatal(err)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(w2.UnixNano())), stale, 0o640); err != nil {
		t.Fatal(err)
	}
	_, got, _ := open(t, dir, 0)
	if len(got.records) != 0 {
		t.Errorf("replayed %d records of windows the marker covers", len(got.records))
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(w2.UnixNano()))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("segment the marker covers not removed at start: %v", err)
	}
}

func TestFullUntilForgotten(t *testing.T) {
	rec := testRecord(4)
	max := int64(headerSize + 3*encodedSize(rec))
	j, _, _ := open(t, t.TempDir(), max)
	for i := range 3 {
		if err := j.Append(window0, rec); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := j.Append(window0.Add(10*time.Second), rec); !errors.Is(err, ErrFull) {
		t.Fatalf("append past the bound: %v, want ErrFull", err)
	}
	if err := j.Forget(window0); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(window0.Add(10*time.Second), rec); err != nil {
		t.Fatalf("append once the flushed window is forgotten: %v", err)
	}
}

// Appends that arrive while a sync runs share the next one.
func TestGroupCommit(t *testing.T) {
	j, _, reg := open(t, t.TempDir(), 0)
	// Hold the committer inside its first round, queue more appends
	// behind it, then let go: they make one group.
	j.mu.Lock()
	locked := true
	defer func() {
		if locked {
			j.mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	wg.Go(func() { errs <- j.Append(window0, testRecord(0)) })
	await.Until(t, 10*time.Second, func() (bool, string) {
		return j.groups.Load() == 1, "first append not taken by the committer"
	})
	const queued = 40
	for i := range queued {
		wg.Go(func() { errs <- j.Append(window0, testRecord(1+i)) })
	}
	await.Until(t, 10*time.Second, func() (bool, string) {
		return len(j.requests) == queued, fmt.Sprintf("%d of %d appends queued", len(j.requests), queued)
	})
	j.mu.Unlock()
	locked = false
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := counter(reg, "import.journal_syncs"); n != 2 {
		t.Errorf("%v syncs for 1 + %d appends, want 2", n, queued)
	}
}

func TestAppendAfterClose(t *testing.T) {
	j, _, _ := open(t, t.TempDir(), 0)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(window0, testRecord(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
}
