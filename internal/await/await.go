// Package await is how tests wait for a state that nothing announces on a
// channel: another process's output, a counter, a handler's slots.
package await

import (
	"testing"
	"time"
)

// maxPause bounds the pause between checks: short enough not to slow a
// test, long enough not to hammer another process with queries.
const maxPause = 50 * time.Millisecond

// Until calls cond until it holds and fails t once timeout has passed
// without it; last describes the state for the failure message. The pause
// between calls starts at 1ms and doubles to maxPause, so in-process state
// is seen at once and other processes are not flooded. Call it from the
// test's goroutine (it may call t.Fatalf).
func Until(t testing.TB, timeout time.Duration, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v; last: %s", timeout, last)
		}
		time.Sleep(pause) // pacing the checks; the condition is what is awaited
		pause = min(2*pause, maxPause)
	}
}
