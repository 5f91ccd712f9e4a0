package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
)

// The whole harness, built as `make bench-compare` builds it, at a rate far
// below what either receiver handles: the baseline must count every line
// and veneur-lite's sink every countable metric, with no kernel drops, in
// the private network namespace. About 6 s, most of it building.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	if err := proc.CanUnshareNet(); err != nil {
		t.Skipf("no private network namespace here (%v): the smoke test needs one", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "compare")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "results")
	cmd := exec.Command(bin, "-loads", "packed-mix", "-rates", "20k", "-reps", "1", "-duration", "1s", "-out", out, "-timeout", "1m")
	stdout, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("compare: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(string(stdout), "Summary") {
		t.Errorf("no summary in the output:\n%s", stdout)
	}
	files, _ := filepath.Glob(filepath.Join(out, "compare-*.json"))
	if len(files) != 1 {
		t.Fatalf("results: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Meta.PrivateNetns || !res.Meta.Complete || len(res.Runs) != 2 {
		t.Fatalf("meta %+v, %d runs", res.Meta, len(res.Runs))
	}
	for _, r := range res.Runs {
		if r.Err != "" || r.Sent < 10_000 || r.DropsProc != 0 || r.RcvbufErrors != 0 || r.CPUSeconds <= 0 {
			t.Errorf("%s: %+v", r.Subject, r)
			continue
		}
		switch r.Subject {
		case subjectBaseline:
			if r.Received != float64(r.Sent) {
				t.Errorf("baseline counted %v lines of %d sent", r.Received, r.Sent)
			}
		case subjectVeneur:
			// Counters and timers' .count, each exactly once.
			if r.Countable != float64(r.SentCountable) || r.LossPct != 0 || r.Series != 500 {
				t.Errorf("veneur-lite: sink counted %v of %d countable metrics in %d series (want 500)", r.Countable, r.SentCountable, r.Series)
			}
		}
	}
	if pngs, _ := filepath.Glob(filepath.Join(out, "compare-*-packed-mix.png")); len(pngs) != 1 {
		t.Errorf("plots: %v", pngs)
	}
}
