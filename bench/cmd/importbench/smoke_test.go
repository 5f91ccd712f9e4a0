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

// The whole command, built as `make bench-import` builds it, on a tiny
// configuration: 2 real globals, 3 locals of 50 series. Each global must
// merge exactly what was posted to it, and the report must parse. In a
// private network namespace where one can be made, else on 127.0.0.1.
// About 5 s, most of it building.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs real globals")
	}
	dir := t.TempDir()
	veneur := filepath.Join(dir, "veneur-lite")
	bin := filepath.Join(dir, "importbench")
	for _, b := range []struct{ out, pkg string }{{veneur, "../../../cmd/veneur-lite"}, {bin, "."}} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	out := filepath.Join(dir, "results")
	args := []string{"-veneur-lite", veneur, "-globals", "2", "-locals", "3", "-series", "50", "-templates", "2",
		"-reps", "1", "-out", out, "-timeout", "1m"}
	private := proc.CanUnshareNet() == nil
	if !private {
		args = append(args, "-no-netns")
	}
	stdout, err := exec.Command(bin, args...).Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("importbench: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(string(stdout), "Verdict: 3 locals × 50 series = 150 digests") {
		t.Errorf("no verdict in the output:\n%s", stdout)
	}
	files, _ := filepath.Glob(filepath.Join(out, "import-*.json"))
	if len(files) != 1 {
		t.Fatalf("results: %v", files)
	}
	if txt, _ := filepath.Glob(filepath.Join(out, "import-*.txt")); len(txt) != 1 {
		t.Errorf("text results: %v", txt)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Meta.Complete || res.Meta.PrivateNetns != private || len(res.Runs) != 1 || len(res.Points) != 1 {
		t.Fatalf("meta %+v, %d runs, %d points", res.Meta, len(res.Runs), len(res.Points))
	}
	r := res.Runs[0]
	if r.Err != "" || r.Posted != 150 || r.Merged != 150 || r.Non200 != 0 || len(r.Globals) != 2 || r.GlobalCPU <= 0 {
		t.Fatalf("run %+v", r)
	}
	var sum int64
	for _, g := range r.Globals {
		if g.Posted == 0 || g.Merged != g.Posted || g.WindowMerged != g.Posted || g.CPUSeconds <= 0 || g.Warnings+g.Errors != 0 {
			t.Errorf("global %d: %+v", g.Index, g)
		}
		sum += g.Posted
	}
	if sum != 150 {
		t.Errorf("the globals were posted %d digests, want 150", sum)
	}
	if p := res.Points[0]; p.Runs != 1 || !p.Verdict.Fits || p.DigestsPerCoreSecond.Median <= 0 {
		t.Errorf("point %+v", p)
	}
}
