// Package logthrottle bounds how often one kind of failure is logged: a
// socket that keeps failing, or a client retrying in a loop, must not
// flood the log. The self-metrics count every occurrence; the log line
// says how many it stands for.
package logthrottle

import (
	"sync/atomic"
	"time"
)

// DefaultEvery is the period of a Throttle whose Every is zero.
const DefaultEvery = 10 * time.Second

// Throttle lets one log line through per Every and counts the ones it
// holds back, so that the next line can say how many there were. The
// first call is always let through. It is safe for concurrent use, and
// ready as its zero value.
type Throttle struct {
	Every time.Duration    // zero means DefaultEvery
	Now   func() time.Time // nil means time.Now; tests set a fake clock

	last       atomic.Int64 // unix nanoseconds of the last line let through
	suppressed atomic.Uint64
}

// Allow reports whether to log now and, if so, how many lines were held
// back since the last one.
func (t *Throttle) Allow() (ok bool, suppressed uint64) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	every := t.Every
	if every == 0 {
		every = DefaultEvery
	}
	ns := now().UnixNano()
	last := t.last.Load()
	// Of concurrent callers past the period, the one whose swap wins logs.
	if (last != 0 && ns-last < int64(every)) || !t.last.CompareAndSwap(last, ns) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}

// Suppressed is how many lines are held back now.
func (t *Throttle) Suppressed() uint64 { return t.suppressed.Load() }
