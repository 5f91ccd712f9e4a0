package top

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/syncbuf"

	"github.com/veneur-lite/veneur-lite/aggregate"
)

// fakeInstance answers fetches from a fixed set of names, sorted and cut
// as the endpoint would, and records what it was asked.
type fakeInstance struct {
	mu    sync.Mutex
	names []aggregate.NameStats
	err   error
	block chan struct{} // when set, a fetch waits for it
	calls []string      // "order/n"
}

func (f *fakeInstance) fetch(ctx context.Context, n int, order string) (aggregate.SeriesStats, []byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s/%d", order, n))
	block, err := f.block, f.err
	names := slices.Clone(f.names)
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return aggregate.SeriesStats{}, nil, ctx.Err()
		}
	}
	if err != nil {
		return aggregate.SeriesStats{}, nil, err
	}
	sortNames(names, order)
	st := aggregate.SeriesStats{TotalNames: len(names), Names: names[:min(n, len(names))]}
	for _, ns := range names {
		st.LiveSeries += ns.Series
		st.Samples += ns.Samples
	}
	return st, nil, nil
}

func (f *fakeInstance) set(fn func(f *fakeInstance)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeInstance) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// lockedBuffer is the terminal's output, written by the view's goroutine.
type lockedBuffer struct{ syncbuf.Buffer }

// frame is the last screen drawn, as lines without escapes.
func (l *lockedBuffer) frame() []string {
	out := l.String()
	i := strings.LastIndex(out, home)
	if i < 0 {
		return nil
	}
	out = out[i+len(home):]
	if !strings.HasSuffix(out, clearBelow) {
		return []string{"(frame not finished)"}
	}
	out = strings.TrimSuffix(out, clearBelow)
	return strings.Split(strings.ReplaceAll(out, clearLine, ""), "\r\n")
}

// names lists the metric names of a frame's table, in order.
func names(frame []string) []string {
	var out []string
	inTable := false
	for _, l := range frame {
		if strings.HasPrefix(l, "NAME ") {
			inTable = true
			continue
		}
		if inTable {
			if l == "" {
				break // the table's end
			}
			out = append(out, strings.Fields(l)[0])
		}
	}
	return out
}

// liveRun is one live view under test, in a synctest bubble.
type liveRun struct {
	inst   *fakeInstance
	out    *lockedBuffer
	keys   chan byte
	cancel context.CancelFunc
	done   chan error
	height atomic.Int32
}

func startLive(t *testing.T, inst *fakeInstance, quitOnEOF bool, height int) *liveRun {
	t.Helper()
	r := &liveRun{inst: inst, out: &lockedBuffer{}, keys: make(chan byte), done: make(chan error, 1)}
	r.height.Store(int32(height))
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	o := Options{N: 20, Sort: "series", Interval: time.Second}
	scr := screen{out: r.out, keys: r.keys, quitOnEOF: quitOnEOF, size: func() (int, int) { return 100, int(r.height.Load()) }}
	go func() { r.done <- live(ctx, inst.fetch, o, "127.0.0.1:8127", scr) }()
	synctest.Wait()
	return r
}

// press types a key and waits for the view to settle.
func (r *liveRun) press(k byte) {
	r.keys <- k
	synctest.Wait()
}

func threeNames() []aggregate.NameStats {
	return []aggregate.NameStats{
		{Name: "top.one", Series: 1, Samples: 600},
		{Name: "top.ten", Series: 10, Samples: 50},
		{Name: "top.hundred", Series: 100, Samples: 200, ShedSamples: 30},
	}
}

// TestLiveKeys: s cycles the order, + and - change n, each asking the
// instance again at once; q quits.
func TestLiveKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &fakeInstance{names: threeNames()}
		r := startLive(t, inst, true, 24)
		check := func(caption string, want ...string) {
			t.Helper()
			f := r.out.frame()
			if len(f) < 5 || !strings.HasPrefix(f[4], caption) {
				t.Errorf("caption %q, want %q; frame:\n%s", f[min(4, len(f)-1)], caption, strings.Join(f, "\n"))
			}
			if got := names(f); !slices.Equal(got, want) {
				t.Errorf("names %v, want %v", got, want)
			}
		}
		check("top 3 of 3 names by series (-n 20)", "top.hundred", "top.ten", "top.one")
		r.press('s')
		check("top 3 of 3 names by samples (-n 20)", "top.one", "top.hundred", "top.ten")
		r.press('s')
		check("top 3 of 3 names by shed (-n 20)", "top.hundred", "top.one", "top.ten")
		r.press('s')
		check("top 3 of 3 names by series (-n 20)", "top.hundred", "top.ten", "top.one")
		r.press('+')
		check("top 3 of 3 names by series (-n 25)", "top.hundred", "top.ten", "top.one")
		for range 6 {
			r.press('-')
		}
		check("top 1 of 3 names by series (-n 1)", "top.hundred")
		r.press('x') // not a key: nothing asked
		want := []string{"series/20", "samples/20", "shed/20", "series/20", "series/25", "series/20", "series/15", "series/10", "series/5", "series/1", "series/1"}
		if got := inst.asked(); !slices.Equal(got, want) {
			t.Errorf("asked %v\n   want %v", got, want)
		}
		r.press('q')
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("live: %v", err)
			}
		default:
			t.Error("still running after q")
		}
	})
}

// TestLiveRefreshAndErrors: it asks every interval; a failure replaces
// the screen with one line and is retried; a good answer brings the
// table back.
func TestLiveRefreshAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &fakeInstance{names: threeNames()}
		r := startLive(t, inst, true, 24)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := len(inst.asked()); got != 4 {
			t.Errorf("asked %d times in 3 intervals, want 4", got)
		}
		refused := errors.New("127.0.0.1:8127 refused /debug/series (403): it answers clients on its own host only")
		inst.set(func(f *fakeInstance) { f.err = refused })
		time.Sleep(time.Second)
		synctest.Wait()
		want := []string{
			"veneur-lite top  127.0.0.1:8127",
			"",
			"error: " + refused.Error(),
			"retrying every 1s",
			"",
			"names by series (-n 20)   [s] sort  [+/-] n  [q] quit",
		}
		if got := r.out.frame(); !slices.Equal(got, want) {
			t.Errorf("frame\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		inst.set(func(f *fakeInstance) { f.err = nil })
		time.Sleep(time.Second)
		synctest.Wait()
		if got := names(r.out.frame()); len(got) != 3 {
			t.Errorf("after recovery: names %v", got)
		}
		r.press(ctrlC)
		if err := <-r.done; err != nil {
			t.Errorf("live: %v", err)
		}
	})
}

// TestLiveFitsTheScreen: the table stops at the screen's height, and
// follows it when it changes.
func TestLiveFitsTheScreen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &fakeInstance{names: threeNames()}
		r := startLive(t, inst, true, 8)
		f := r.out.frame()
		if len(f) != 8 || !strings.HasPrefix(f[4], "top 2 of 3 names") || !slices.Equal(names(f), []string{"top.hundred", "top.ten"}) {
			t.Errorf("8 lines high:\n%s", strings.Join(f, "\n"))
		}
		r.height.Store(3)
		time.Sleep(time.Second)
		synctest.Wait()
		if f := r.out.frame(); len(f) != 3 {
			t.Errorf("3 lines high: %d lines:\n%s", len(f), strings.Join(f, "\n"))
		}
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("live: %v", err)
		}
	})
}

// TestLiveSlowInstance: keys are answered while a fetch is in flight, a
// second fetch is not started beside it, and the one after it asks for
// the order now shown.
func TestLiveSlowInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		inst := &fakeInstance{names: threeNames()}
		r := startLive(t, inst, true, 24)
		inst.set(func(f *fakeInstance) { f.block = block })
		time.Sleep(time.Second) // a tick: the fetch hangs
		synctest.Wait()
		r.press('s')
		if got := names(r.out.frame()); !slices.Equal(got, []string{"top.one", "top.hundred", "top.ten"}) {
			t.Errorf("re-sorted at once: %v", got)
		}
		time.Sleep(3 * time.Second) // ticks while it hangs: nothing more asked
		synctest.Wait()
		if got := inst.asked(); !slices.Equal(got, []string{"series/20", "series/20"}) {
			t.Errorf("asked %v while one fetch hung", got)
		}
		inst.set(func(f *fakeInstance) { f.block = nil })
		close(block)
		synctest.Wait()
		if got := inst.asked(); !slices.Equal(got, []string{"series/20", "series/20", "samples/20"}) {
			t.Errorf("asked %v, want the new order asked for once the hung fetch ended", got)
		}
		if got := names(r.out.frame()); !slices.Equal(got, []string{"top.one", "top.hundred", "top.ten"}) {
			t.Errorf("the hung fetch's answer not shown in the order picked: %v", got)
		}
		r.press('q')
		if err := <-r.done; err != nil {
			t.Errorf("live: %v", err)
		}
	})
}

// TestLiveInputEnds: a terminal that hangs up ends the view; input from
// /dev/null just leaves it without keys.
func TestLiveInputEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startLive(t, &fakeInstance{names: threeNames()}, true, 24)
		close(r.keys)
		synctest.Wait()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("live: %v", err)
			}
		default:
			t.Error("still running after the terminal hung up")
		}

		r = startLive(t, &fakeInstance{names: threeNames()}, false, 24)
		close(r.keys)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		select {
		case err := <-r.done:
			t.Fatalf("ended (%v) when input from a file ended", err)
		default:
		}
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("live: %v", err)
		}
	})
}

// TestLiveWriteError: a terminal that cannot be written to ends the view
// with the error.
func TestLiveWriteError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scr := screen{out: failingWriter{}, size: func() (int, int) { return 80, 24 }}
		err := live(t.Context(), (&fakeInstance{}).fetch, Options{N: 5, Sort: "series", Interval: time.Second}, "x", scr)
		if err == nil {
			t.Error("no error")
		}
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("terminal gone") }
