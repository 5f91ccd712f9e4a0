package httpclient

import (
	"context"
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
