package forward

import (
	"cmp"
	"slices"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

// heldSeries is a series the global certainly did not merge, waiting to
// join the next Forward's series.
type heldSeries struct {
	series metric.Series
	since  time.Time // start of the oldest interval in it
	size   int64     // estimated from its batch's encoding
}

// heldState is what Forward leaves for the next call.
type heldState struct {
	series    []heldSeries
	ambiguous []*batch
	// expired counts the series of ambiguous batches given up when they
	// were taken (takeHeld), for the summary.
	expired int
}

// takeHeld hands over the held data to a Forward, dropping ambiguous
// batches the global may no longer remember.
func (f *Forwarder) takeHeld(now time.Time) heldState {
	f.heldMu.Lock()
	h := f.held
	f.held = heldState{}
	f.heldMu.Unlock()

	kept := h.ambiguous[:0]
	for _, b := range h.ambiguous {
		// The Forward about to start may resend for up to an interval.
		if now.Add(f.cfg.Interval).Sub(b.firstReached) > ambiguousTTL {
			// The global's dedup window may have forgotten the key by
			// then: resending could merge twice, and re-encoding under a
			// new key could too. Dropping is the only exactly-once choice.
			h.expired += b.n
			f.m.ambiguousExpired.Add(uint64(b.n))
			continue
		}
		kept = append(kept, b)
	}
	clear(h.ambiguous[len(kept):])
	h.ambiguous = kept
	return h
}

// heldStats describes the held data after a Forward.
type heldStats struct {
	series    int // held series plus the series in held ambiguous batches
	ambiguous int // held ambiguous batches
	bytes     int64
	dropped   int // series dropped for MaxHeldBytes by this Forward
}

// keep stores what a Forward could not deliver for the next one, dropping
// the oldest data beyond MaxHeldBytes.
func (f *Forwarder) keep(out *outcome) heldStats {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	h := &f.held
	h.series = append(h.series, out.held...)
	h.ambiguous = append(h.ambiguous, out.ambiguous...)

	var st heldStats
	for _, s := range h.series {
		st.bytes += s.size
	}
	for _, b := range h.ambiguous {
		st.bytes += int64(len(b.body))
	}
	if st.bytes > f.cfg.MaxHeldBytes {
		st.bytes, st.dropped = f.dropOldest(h, st.bytes)
		f.m.heldDropped.Add(uint64(st.dropped))
	}
	st.series, st.ambiguous = len(h.series), len(h.ambiguous)
	for _, b := range h.ambiguous {
		st.series += b.n
	}
	f.m.heldSeries.Set(float64(st.series))
	f.m.heldBytes.Set(float64(st.bytes))
	return st
}

// dropOldest drops held data, oldest first, until it fits MaxHeldBytes;
// it returns the bytes left and the series dropped. The age of a series is
// that of the oldest data merged into it, so a long-held series goes first
// even if it also carries newer data: the bound is on memory, and which
// data survives an outage that outgrows it is best effort.
func (f *Forwarder) dropOldest(h *heldState, total int64) (int64, int) {
	type item struct {
		since time.Time
		size  int64
		i     int  // index into h.series or h.ambiguous
		amb   bool // which of the two
	}
	items := make([]item, 0, len(h.series)+len(h.ambiguous))
	for i, s := range h.series {
		items = append(items, item{since: s.since, size: s.size, i: i})
	}
	for i, b := range h.ambiguous {
		items = append(items, item{since: b.oldest, size: int64(len(b.body)), i: i, amb: true})
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.since.UnixNano(), b.since.UnixNano()) })

	dropSeries := make([]bool, len(h.series))
	dropAmb := make([]bool, len(h.ambiguous))
	dropped := 0
	for _, it := range items {
		if total <= f.cfg.MaxHeldBytes {
			break
		}
		total -= it.size
		if it.amb {
			dropAmb[it.i] = true
			dropped += h.ambiguous[it.i].n
		} else {
			dropSeries[it.i] = true
			dropped++
		}
	}
	h.series = dropMarked(h.series, dropSeries)
	h.ambiguous = dropMarked(h.ambiguous, dropAmb)
	return total, dropped
}

// dropMarked removes the elements whose mark is set, keeping the order.
func dropMarked[T any](s []T, marks []bool) []T {
	kept := s[:0]
	for i, v := range s {
		if !marks[i] {
			kept = append(kept, v)
		}
	}
	clear(s[len(kept):]) // let the dropped data be collected
	return kept
}

// Hold keeps series for the next Forward without sending them now. The
// flusher calls it when a tick finds the previous Forward still running,
// so that the interval's sketches wait instead of being lost.
func (f *Forwarder) Hold(intervalStart time.Time, series []metric.Series) {
	size := max(f.bytesPerSeries.Load(), 1) // the encoded size of recent series
	var out outcome
	for _, s := range series {
		out.held = append(out.held, heldSeries{series: s, since: intervalStart, size: size})
	}
	f.keep(&out)
}
