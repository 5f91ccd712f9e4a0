package listener

import (
	"sync/atomic"
	"time"
)

// logEvery bounds how often a listener logs the same kind of failure: a
// socket that keeps failing, or a client retrying in a loop, must not flood
// the log. The counters have every occurrence.
const logEvery = 10 * time.Second

// logThrottle lets one log line through per logEvery and counts the ones
// it holds back, so that the next line can say how many there were. It is
// safe for concurrent use: the readers of one listener share it.
type logThrottle struct {
	now        func() time.Time // nil means time.Now; tests set a fake clock
	last       atomic.Int64     // unix nanoseconds of the last line let through
	suppressed atomic.Uint64
}

// allow reports whether to log now and, if so, how many lines were held
// back since the last one. The first call is always allowed.
func (t *logThrottle) allow() (ok bool, suppressed uint64) {
	now := time.Now
	if t.now != nil {
		now = t.now
	}
	ns := now().UnixNano()
	last := t.last.Load()
	// Of concurrent callers past the period, the one whose swap wins logs.
	if (last != 0 && ns-last < int64(logEvery)) || !t.last.CompareAndSwap(last, ns) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
