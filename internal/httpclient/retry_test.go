package httpclient

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayIsFullJitterCappedAndHonoursRetryAfter(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt, ceil := range []time.Duration{10, 20, 40, 80, 80, 80} {
		ceil *= time.Millisecond
		var lo, hi time.Duration = ceil, 0
		for range 2000 {
			d := b.Delay(attempt, 0)
			if d <= 0 || d > ceil {
				t.Fatalf("attempt %d: delay %s outside (0, %s]", attempt, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceil/4 || hi < ceil*3/4 {
			t.Errorf("attempt %d: delays span [%s, %s], want most of (0, %s]", attempt, lo, hi, ceil)
		}
	}
	if d := b.Delay(100, 0); d <= 0 || d > b.Max {
		t.Errorf("huge attempt: %s", d)
	}
	if d := b.Delay(0, 3*time.Second); d != 3*time.Second {
		t.Errorf("Retry-After 3s: delay %s", d)
	}
}

func TestSleepRespectsDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if !Sleep(ctx, time.Millisecond) {
		t.Error("a short sleep well before the deadline was refused")
	}
	// Refusing at once and waiting for the deadline differ by a minute, so
	// a busy machine cannot blur them.
	short, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	start := time.Now()
	if Sleep(short, time.Hour) || time.Since(start) > 30*time.Second {
		t.Errorf("a sleep past the deadline should be refused at once (took %s)", time.Since(start))
	}
	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if Sleep(done, time.Second) {
		t.Error("slept on a cancelled context")
	}
}

func TestAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "2": 2 * time.Second, "-1": 0, "soon": 0, "Wed, 21 Oct 2015 07:28:00 GMT": 0} {
		if got := After(in); got != want {
			t.Errorf("After(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRetry: attempts go on while they ask to, up to the bound, and stop
// at success or at a failure for good; each wait taken is reported before
// the next attempt.
func TestRetry(t *testing.T) {
	b := Backoff{Base: time.Microsecond, Max: time.Microsecond}
	transient := errors.New("transient")
	for _, tc := range []struct {
		name        string
		results     []error // per call; nil succeeds
		again       bool
		wantCalls   int
		wantErr     error
		wantRetried int
	}{
		{"succeeds third", []error{transient, transient, nil}, true, 3, nil, 2},
		{"gives up at the bound", []error{transient, transient, transient, transient}, true, 3, transient, 2},
		{"fails for good", []error{transient, nil}, false, 1, transient, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, retried := 0, 0
			err := b.Retry(t.Context(), 3, func() (bool, error) {
				calls++
				return tc.again, tc.results[calls-1]
			}, func(n int, wait time.Duration, err error) {
				retried++
				if n != calls || wait <= 0 || err == nil {
					t.Errorf("retried(%d, %v, %v) after call %d", n, wait, err, calls)
				}
			})
			if calls != tc.wantCalls || retried != tc.wantRetried || !errors.Is(err, tc.wantErr) {
				t.Errorf("%d calls, %d retries, %v; want %d, %d, %v", calls, retried, err, tc.wantCalls, tc.wantRetried, tc.wantErr)
			}
		})
	}
	// A context that has ended leaves no time to wait.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	if err := b.Retry(ctx, 10, func() (bool, error) { calls++; return true, transient }, nil); calls != 1 || !errors.Is(err, transient) {
		t.Errorf("ended context: %d calls, %v; want 1, the attempt's error", calls, err)
	}
}
