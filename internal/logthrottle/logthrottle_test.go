package logthrottle

import (
	"sync"
	"testing"
	"time"
)

func TestLogThrottle(t *testing.T) {
	now := time.Unix(1700000000, 0)
	th := Throttle{Now: func() time.Time { return now }}
	step := func(d time.Duration, wantOK bool, wantSuppressed uint64) {
		t.Helper()
		now = now.Add(d)
		if ok, n := th.Allow(); ok != wantOK || n != wantSuppressed {
			t.Errorf("at +%v: Allow() = %v, %d; want %v, %d", d, ok, n, wantOK, wantSuppressed)
		}
	}
	step(0, true, 0) // the first line always goes out
	step(0, false, 0)
	step(time.Second, false, 0)
	step(DefaultEvery-2*time.Second, false, 0) // 1ns short of DefaultEvery
	step(time.Second, true, 3)                 // reports the three held back
	step(DefaultEvery-1, false, 0)
	step(1, true, 1)
	step(time.Hour, true, 0)
}

// The readers of one listener share a throttle: of many concurrent
// failures within a period one is logged and the others are counted, none
// lost. Run with -race.
func TestLogThrottleConcurrent(t *testing.T) {
	var th Throttle
	var mu sync.Mutex
	allowed, reported := 0, uint64(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if ok, n := th.Allow(); ok {
					mu.Lock()
					allowed++
					reported += n
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// A call that loses the race to the first line may be counted before
	// that line takes the count, and then the line reports it: either way
	// every call is the line, reported by it, or still held back.
	if allowed != 1 || reported+th.Suppressed() != 8*1000-1 {
		t.Errorf("allowed %d (reporting %d), suppressed %d; want 1 line and %d held back or reported",
			allowed, reported, th.Suppressed(), 8*1000-1)
	}
}

// A Throttle with its own period lets a line through once per that period.
func TestThrottleEvery(t *testing.T) {
	now := time.Unix(1700000000, 0)
	th := Throttle{Every: time.Second, Now: func() time.Time { return now }}
	if ok, _ := th.Allow(); !ok {
		t.Fatal("first line held back")
	}
	now = now.Add(time.Second - 1)
	if ok, _ := th.Allow(); ok {
		t.Error("a line 1ns short of Every went through")
	}
	now = now.Add(1)
	if ok, n := th.Allow(); !ok || n != 1 {
		t.Errorf("at Every: Allow() = %v, %d; want true, 1", ok, n)
	}
}
