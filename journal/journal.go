// Package journal keeps what a global instance acknowledged and has not
// yet flushed on disk, so that a process killed without warning loses none
// of it (docs/output.md, journal/FORMAT.md).
//
// Each record is one batch as received, appended to the segment of the
// window it merges into. Append returns once the record is durable: the
// appends that arrive while one fdatasync runs share the next. Forget
// writes a flush marker and deletes the segments of flushed windows. Open
// replays what is left, ending a segment's replay at its first torn or
// corrupt record.
package journal

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/telemetry"
)

// ErrFull is Append's answer when the journal holds MaxBytes: the caller
// refuses the batch (503), to be resent once flushed windows are forgotten.
var ErrFull = errors.New("import journal full")

// ErrClosed is Append's answer after Close.
var ErrClosed = errors.New("import journal closed")

// ErrFlushed is Append's answer for a window already forgotten: its
// record would never be replayed.
var ErrFlushed = errors.New("window already flushed")

// Options configures Open. Dir is required.
type Options struct {
	Dir string
	// MaxBytes bounds the bytes of all segments; zero means no bound.
	MaxBytes int64
	// Stats receives the measurements; nil measures nothing.
	Stats *telemetry.Registry
	// Log receives the one line a replay that met corrupt records writes;
	// nil means slog.Default().
	Log *slog.Logger
	// ReplayWorkers bounds the records replayed at once; zero means
	// GOMAXPROCS.
	ReplayWorkers int
}

// Replayed is what Open found.
type Replayed struct {
	Segments int
	Records  int
	Bytes    int64
	// Corrupt counts the segments whose replay ended early at a torn or
	// corrupt record (each ends its segment's replay, so it is one record
	// per segment, whatever followed it).
	Corrupt int
	// Failed counts the records the replay function refused.
	Failed int
}

// Journal is a directory of segments, one per window. Append, Forget and
// Close are safe for concurrent use.
type Journal struct {
	dir     string
	max     int64
	log     *slog.Logger
	workers int

	size     atomic.Int64 // bytes on disk and reserved by appends under way
	requests chan *request
	closing  chan struct{}
	closed   chan struct{}
	once     sync.Once

	// mu is held by the committer for a whole write-and-sync round and by
	// Forget, so that a segment is never removed under a write.
	mu       sync.Mutex
	segments map[int64]*segment // by window start, Unix nanoseconds
	through  int64              // the flush marker: windows up to it are forgotten
	hasMark  bool

	replayed Replayed
	stats    stats
	// groups counts the groups the committer took (tests wait on it).
	groups atomic.Int64
}

type segment struct {
	f    *os.File
	size int64
}

type request struct {
	window int64
	// head is the record up to its body; body is the caller's, which
	// Append holds until the record is written.
	head, body []byte
	done       chan error
}

type stats struct {
	syncs    *telemetry.Counter
	written  *telemetry.Counter
	corrupt  *telemetry.Counter
	replayed *telemetry.Counter
	size     *telemetry.Gauge
	syncTime *telemetry.Histogram
}

// maxGroup bounds the records one fdatasync covers, so that one round's
// buffers stay bounded.
const maxGroup = 1024

const markerName = "flushed"

// Open opens (creating it if need be) the journal in opts.Dir and replays
// every segment the flush marker does not cover, oldest window first,
// calling replay for each whole record, concurrently within a segment
// (ReplayWorkers); replay's Body points into memory unmapped after it
// returns. A torn or corrupt record ends its
// segment's replay: it is counted, logged once per Open, and the segment
// is cut there so that later appends follow the last good record. An
// error from replay counts the record as failed and the replay goes on.
func Open(opts Options, replay func(window time.Time, rec *Record) error) (*Journal, error) {
	if opts.Dir == "" {
		return nil, errors.New("journal: no directory")
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{
		dir:      opts.Dir,
		max:      opts.MaxBytes,
		log:      opts.Log,
		requests: make(chan *request, maxGroup),
		closing:  make(chan struct{}),
		closed:   make(chan struct{}),
		segments: make(map[int64]*segment),
		workers:  opts.ReplayWorkers,
	}
	if j.workers <= 0 {
		j.workers = runtime.GOMAXPROCS(0)
	}
	if j.log == nil {
		j.log = slog.Default()
	}
	reg := opts.Stats
	j.stats = stats{
		syncs:    reg.Counter("import.journal_syncs"),
		written:  reg.Counter("import.journal_written_bytes"),
		corrupt:  reg.Counter("import.journal_corrupt_records"),
		replayed: reg.Counter("import.journal_replayed_records"),
		size:     reg.Gauge("import.journal_bytes"),
		syncTime: reg.Histogram("import.journal_sync_duration_seconds"),
	}
	if err := j.readMarker(); err != nil {
		return nil, err
	}
	if err := j.replay(replay); err != nil {
		_ = j.closeFiles()
		return nil, err
	}
	j.stats.size.Set(float64(j.size.Load()))
	go j.commit()
	return j, nil
}

// Replayed returns what Open replayed.
func (j *Journal) Replayed() Replayed { return j.replayed }

// Bytes returns the bytes the journal holds on disk and has reserved.
func (j *Journal) Bytes() int64 { return j.size.Load() }

func segmentName(window int64) string { return "window-" + strconv.FormatInt(window, 10) + ".seg" }

func parseSegmentName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, "window-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".seg")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// replay reads every segment not covered by the marker, removing those
// that are.
func (j *Journal) replay(fn func(time.Time, *Record) error) error {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var windows []int64
	for _, e := range entries {
		if w, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			windows = append(windows, w)
		}
	}
	slices.Sort(windows)
	var firstCorrupt string
	for _, w := range windows {
		path := filepath.Join(j.dir, segmentName(w))
		if j.hasMark && w <= j.through {
			// Flushed, but the process died before deleting it.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			continue
		}
		good, torn, err := j.replaySegment(path, w, fn)
		if err != nil {
			return err
		}
		if torn {
			j.replayed.Corrupt++
			j.stats.corrupt.Inc()
			if firstCorrupt == "" {
				firstCorrupt = fmt.Sprintf("%s at byte %d", path, good)
			}
		}
		if good == 0 {
			// Not even a whole header: the segment was being created.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if torn {
			if err := f.Truncate(good); err != nil {
				f.Close()
				return fmt.Errorf("journal: cut torn tail: %w", err)
			}
		}
		if _, err := f.Seek(good, 0); err != nil {
			f.Close()
			return fmt.Errorf("journal: %w", err)
		}
		j.segments[w] = &segment{f: f, size: good}
		j.size.Add(good)
		j.replayed.Segments++
		j.replayed.Bytes += good
	}
	if firstCorrupt != "" {
		j.log.Warn("import journal: replay stopped at torn or corrupt records (a write cut short by the crash); everything before them was replayed",
			"segments", j.replayed.Corrupt, "first", firstCorrupt)
	}
	return nil
}

// replaySegment replays the whole records of one segment and returns the
// offset after the last of them and whether something followed it. The
// records are checked in order, then replayed by up to replayWorkers at
// once: merges commute, as those of concurrent imports do.
func (j *Journal) replaySegment(path string, window int64, fn func(time.Time, *Record) error) (good int64, torn bool, err error) {
	b, unmap, err := mapFile(path)
	if err != nil {
		return 0, false, fmt.Errorf("journal: %w", err)
	}
	defer unmap()
	start, err := parseHeader(b)
	if err != nil || start.UnixNano() != window {
		return 0, len(b) > 0, nil
	}
	off := headerSize
	var recs []Record
	for off < len(b) {
		var rec Record
		n, err := parseRecord(b[off:], &rec)
		if err != nil {
			torn = true
			break
		}
		recs = append(recs, rec)
		off += n
	}
	var failed atomic.Int64
	var g errgroup.Group
	g.SetLimit(j.workers)
	for i := range recs {
		g.Go(func() error {
			if err := fn(start, &recs[i]); err != nil {
				failed.Add(1)
				j.log.Warn("import journal: a record was not replayed", "segment", path, "key", recs[i].Key, "error", err)
			}
			return nil
		})
	}
	_ = g.Wait()
	ok := len(recs) - int(failed.Load())
	j.replayed.Records += ok
	j.replayed.Failed += int(failed.Load())
	j.stats.replayed.Add(uint64(ok))
	return int64(off), torn, nil
}

// Append makes rec durable in the segment of the window starting at
// window, and returns once it is (or ErrFull, ErrFlushed, ErrClosed or a
// write error, and then it is not in the journal).
func (j *Journal) Append(window time.Time, rec *Record) error {
	head, err := appendRecordHead(make([]byte, 0, encodedSize(rec)-len(rec.Body)), rec)
	if err != nil {
		return err
	}
	n := int64(len(head) + len(rec.Body))
	if j.size.Add(n) > j.max && j.max > 0 {
		j.size.Add(-n)
		return ErrFull
	}
	r := &request{window: window.UnixNano(), head: head, body: rec.Body, done: make(chan error, 1)}
	select {
	case j.requests <- r:
	case <-j.closing:
		j.size.Add(-n)
		return ErrClosed
	}
	select {
	case err = <-r.done:
	case <-j.closed:
		// Queued after the committer's last look: never written.
		select {
		case err = <-r.done:
		default:
			err = ErrClosed
		}
	}
	if err != nil {
		j.size.Add(-n)
	}
	return err
}

// commit is the committer: it takes the appends waiting, writes them to
// their segments and syncs each segment once, then answers them all.
func (j *Journal) commit() {
	defer close(j.closed)
	group := make([]*request, 0, maxGroup)
	for {
		select {
		case r := <-j.requests:
			group = append(group[:0], r)
		case <-j.closing:
			j.refuseWaiting()
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-j.requests:
				group = append(group, r)
			default:
				break more
			}
		}
		j.groups.Add(1)
		j.writeGroup(group)
		clear(group)
	}
}

// refuseWaiting answers the appends still queued at Close.
func (j *Journal) refuseWaiting() {
	for {
		select {
		case r := <-j.requests:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// writeGroup writes one group commit.
func (j *Journal) writeGroup(group []*request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	began := time.Now()
	// One write and one sync per segment: a group's records are in one or
	// two windows.
	slices.SortStableFunc(group, func(a, b *request) int { return cmp.Compare(a.window, b.window) })
	for i := 0; i < len(group); {
		w := group[i].window
		end := i + 1
		for end < len(group) && group[end].window == w {
			end++
		}
		err := j.writeSegment(w, group[i:end])
		for _, r := range group[i:end] {
			r.done <- err
		}
		i = end
	}
	j.stats.syncTime.Since(began)
	j.stats.size.Set(float64(j.size.Load()))
}

// writeSegment appends records of one window and syncs them; j.mu is held.
func (j *Journal) writeSegment(w int64, recs []*request) error {
	if j.hasMark && w <= j.through {
		return ErrFlushed
	}
	seg := j.segments[w]
	if seg == nil {
		var err error
		if seg, err = j.create(w); err != nil {
			return err
		}
	}
	bufs := make([][]byte, 0, 2*len(recs))
	for _, r := range recs {
		bufs = append(bufs, r.head, r.body)
	}
	n, err := writeAll(seg.f, bufs)
	if err != nil {
		return j.undo(seg, fmt.Errorf("journal write: %w", err))
	}
	if err := datasync(seg.f); err != nil {
		return j.undo(seg, fmt.Errorf("journal sync: %w", err))
	}
	seg.size += n
	j.stats.syncs.Inc()
	j.stats.written.Add(uint64(n))
	return nil
}

// undo cuts a failed write off, so that later records follow the last
// good one.
func (j *Journal) undo(seg *segment, err error) error {
	if terr := seg.f.Truncate(seg.size); terr != nil {
		return errors.Join(err, terr)
	}
	if _, serr := seg.f.Seek(seg.size, 0); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// create starts the segment of window w: its header, synced, and its
// directory entry, synced.
func (j *Journal) create(w int64) (*segment, error) {
	path := filepath.Join(j.dir, segmentName(w))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	hdr := appendHeader(nil, time.Unix(0, w))
	if _, err = f.Write(hdr); err == nil {
		err = datasync(f)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("journal: create segment: %w", err)
	}
	seg := &segment{f: f, size: int64(len(hdr))}
	j.segments[w] = seg
	j.size.Add(seg.size)
	j.stats.written.Add(uint64(len(hdr)))
	return seg, nil
}

// Forget records that every window starting at or before through is
// flushed (the flush marker) and deletes their segments. A window's
// segment may then not be appended to again.
func (j *Journal) Forget(through time.Time) error {
	t := through.UnixNano()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.hasMark && t <= j.through {
		return nil
	}
	if err := j.writeMarker(t); err != nil {
		return err
	}
	j.through, j.hasMark = t, true
	var errs []error
	for w, seg := range j.segments {
		if w > t {
			continue
		}
		errs = append(errs, seg.f.Close(), os.Remove(filepath.Join(j.dir, segmentName(w))))
		delete(j.segments, w)
		j.size.Add(-seg.size)
	}
	j.stats.size.Set(float64(j.size.Load()))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("journal: forget: %w", err)
	}
	return nil
}

// The marker is the window start it covers and its CRC, replaced
// atomically (written aside, synced, renamed, directory synced).
func (j *Journal) writeMarker(t int64) error {
	b := binary.BigEndian.AppendUint64(nil, uint64(t))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(j.dir, markerName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("journal: flush marker: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = datasync(f)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, filepath.Join(j.dir, markerName))
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		return fmt.Errorf("journal: flush marker: %w", err)
	}
	return nil
}

func (j *Journal) readMarker() error {
	b, err := os.ReadFile(filepath.Join(j.dir, markerName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		// Renamed into place whole, so this is not a crash's doing.
		return fmt.Errorf("journal: flush marker %s is corrupt; remove it to replay every segment", filepath.Join(j.dir, markerName))
	}
	j.through, j.hasMark = int64(binary.BigEndian.Uint64(b)), true
	return nil
}

// Close stops the committer (appends waiting get ErrClosed) and closes
// the segments, which stay on disk for the next Open.
func (j *Journal) Close() error {
	j.once.Do(func() { close(j.closing) })
	<-j.closed
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.closeFiles()
}

func (j *Journal) closeFiles() error {
	var errs []error
	for w, seg := range j.segments {
		errs = append(errs, seg.f.Close())
		delete(j.segments, w)
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
