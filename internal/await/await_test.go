package await

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	start := time.Now()
	Until(t, time.Minute, func() (bool, string) { return calls.Add(1) >= 3, "" })
	if n := calls.Load(); n != 3 {
		t.Errorf("cond called %d times, want 3 (it held on the third)", n)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %v for three checks", time.Since(start))
	}
}

// fatalRecorder stands in for a test that Until fails.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = format
	panic(r)
}

func TestUntilFailsAfterTheTimeout(t *testing.T) {
	r := &fatalRecorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("recovered %v, want the recorder's Fatalf", p)
			}
		}()
		Until(r, 20*time.Millisecond, func() (bool, string) { return false, "never" })
	}()
	if r.msg == "" || time.Since(start) < 20*time.Millisecond {
		t.Errorf("failed after %v with %q; want a failure after the 20ms timeout", time.Since(start), r.msg)
	}
}
