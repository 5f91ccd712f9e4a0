package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStatOf(t *testing.T) {
	if s := statOf([]float64{7, 2, 9}); s != (stat{Median: 7, Min: 2, Max: 9}) {
		t.Errorf("statOf = %+v", s)
	}
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name      string
		budget    float64
		perGlobal []float64
		want      verdict
	}{
		{"fits", 20, []float64{14.6, 15.2, 14.5}, verdict{BudgetCPU: 20, MaxCPU: 15.2, MaxGlobal: 1, MaxShare: 0.76, Fits: true}},
		{"exactly the budget fits", 20, []float64{20}, verdict{BudgetCPU: 20, MaxCPU: 20, MaxGlobal: 0, MaxShare: 1, Fits: true}},
		{"one global over", 20, []float64{5, 5, 21, 5}, verdict{BudgetCPU: 20, MaxCPU: 21, MaxGlobal: 2, MaxShare: 1.05, Fits: false}},
		{"no globals", 20, nil, verdict{BudgetCPU: 20, MaxGlobal: -1}},
	} {
		got := judge(c.budget, c.perGlobal)
		got.MaxShare = math.Round(got.MaxShare*1e6) / 1e6
		if got != c.want {
			t.Errorf("%s: judge = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestRunOrderInterleaves(t *testing.T) {
	got := runOrder([]int{10, 100, 1000}, 2)
	want := []step{{10, 1}, {100, 1}, {1000, 1}, {10, 2}, {100, 2}, {1000, 2}}
	if !slices.Equal(got, want) {
		t.Errorf("runOrder = %v, want %v", got, want)
	}
}

func TestParseLocals(t *testing.T) {
	got, err := parseLocals("10, 100,1k,100")
	if err != nil || !slices.Equal(got, []int{10, 100, 1000}) {
		t.Errorf("parseLocals = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-3", "x", "1000k"} {
		if _, err := parseLocals(bad); err == nil {
			t.Errorf("parseLocals(%q) accepted", bad)
		}
	}
}

// A run of globals' figures, 2 globals.
func runOf(locals int, cpu0, cpu1 float64, err string) Run {
	digests := int64(locals) * 100
	r := Run{Locals: locals, Merged: digests, Posted: digests, Err: err,
		GlobalCPU: cpu0 + cpu1, MaxGlobalCPU: max(cpu0, cpu1), BudgetShare: max(cpu0, cpu1) / 20}
	r.CPUPerDigestMicros = 1e6 * r.GlobalCPU / float64(digests)
	r.DigestsPerCoreSecond = float64(digests) / r.GlobalCPU
	for i, c := range []float64{cpu0, cpu1} {
		r.Globals = append(r.Globals, GlobalRun{Index: i, Merged: digests / 2, Posted: digests / 2, Share: 0.5, CPUSeconds: c, BudgetShare: c / 20})
	}
	return r
}

// Failed runs are counted and left out; the verdict takes each global's
// worst run, the median share the busiest global's median.
func TestSummarize(t *testing.T) {
	runs := []Run{
		runOf(10, 1, 2, ""),
		runOf(1000, 10, 12, ""),
		runOf(10, 100, 100, "global 0: posted 500 digests, import.series rose by 400"),
		runOf(1000, 18, 11, ""),
		runOf(1000, 11, 13, ""),
	}
	ps := summarize(runs, []int{10, 1000}, 2, 20)
	if len(ps) != 2 {
		t.Fatalf("%d points", len(ps))
	}
	if p := ps[0]; p.Locals != 10 || p.Runs != 1 || p.Failed != 1 || p.GlobalCPU.Median != 3 {
		t.Errorf("N=10: %+v", p)
	}
	p := ps[1]
	if p.Runs != 3 || p.Failed != 0 || p.Digests != 100_000 {
		t.Fatalf("N=1000: %+v", p)
	}
	if p.Verdict.MaxGlobal != 0 || p.Verdict.MaxCPU != 18 || !p.Verdict.Fits {
		t.Errorf("verdict %+v: want global 0 at 18 CPU-s, fits", p.Verdict)
	}
	if p.MedianShare != 13.0/20 {
		t.Errorf("median share %v, want %v", p.MedianShare, 13.0/20)
	}
	if g := p.Globals[1].CPU; g != (stat{Median: 12, Min: 11, Max: 13}) {
		t.Errorf("global 1 CPU %+v", g)
	}
	if want := 20 * p.DigestsPerCoreSecond.Median; p.CapacityPerGlobal != want {
		t.Errorf("capacity %v, want %v", p.CapacityPerGlobal, want)
	}

	// The report renders both, the failure included.
	res := results{Meta: meta{Globals: 2, Series: 100, Reps: 3, BudgetCores: 2, BudgetCPU: 20, Interval: "10s", Locals: []int{10, 1000}},
		Points: ps, Runs: runs}
	var b strings.Builder
	writeReport(&b, &res)
	for _, want := range []string{"Per global, 1,000 locals", "FAILED runs", "Verdict: 1,000 locals × 100 series = 100,000 digests", "FITS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestTickWait(t *testing.T) {
	const interval = 10 * time.Second
	at := func(s float64) time.Time {
		return time.Unix(1_700_000_000, 0).Add(time.Duration(s * float64(time.Second)))
	}
	for _, c := range []struct {
		now  float64 // seconds into an interval
		d    time.Duration
		want time.Duration
	}{
		{1, time.Second, 0},                         // ends well before the tick
		{8.9, time.Second, 1600 * time.Millisecond}, // would cross: wait past the tick
		{9.9, 100 * time.Millisecond, 600 * time.Millisecond},
		{9.9, 10 * time.Second, 0}, // too long to place: crosses anyway
	} {
		if got := tickWait(at(c.now), interval, c.d); got.Round(time.Millisecond) != c.want {
			t.Errorf("tickWait at %vs for %v = %v, want %v", c.now, c.d, got, c.want)
		}
	}
	if n := ticksBetween(at(9), at(31), interval); n != 3 {
		t.Errorf("ticksBetween 9s and 31s = %d, want 3", n)
	}
	if n := ticksBetween(at(1), at(9), interval); n != 0 {
		t.Errorf("ticksBetween 1s and 9s = %d, want 0", n)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-quick"}, io.Discard)
	if err != nil || o.reps != 1 || !slices.Equal(o.locals, []int{10, 100}) || o.budget() != 20 {
		t.Errorf("-quick: %+v, %v", o, err)
	}
	o, err = parseOptions([]string{"-globals", "4", "-locals", "1000", "-series", "10000"}, io.Discard)
	if err != nil || o.reps != 3 || o.globals != 4 || !slices.Equal(o.locals, []int{1000}) {
		t.Errorf("sharded: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-globals", "0"}, {"-concurrency", "0"}, {"-interval", "500ms"}, {"-series", "1000000"}, {"stray"}} {
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFmtInt(t *testing.T) {
	for v, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 10_000_000: "10,000,000", -1234: "-1,234"} {
		if got := fmtInt(v); got != want {
			t.Errorf("fmtInt(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestWithFlag(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{nil, []string{"-veneur-lite", "/abs"}},
		{[]string{"-globals", "4"}, []string{"-globals", "4", "-veneur-lite", "/abs"}},
		{[]string{"-veneur-lite", "bin/v", "-quick"}, []string{"-quick", "-veneur-lite", "/abs"}},
		{[]string{"--veneur-lite=bin/v", "-quick"}, []string{"-quick", "-veneur-lite", "/abs"}},
	} {
		if got := withFlag(c.in, "veneur-lite", "/abs"); !slices.Equal(got, c.want) {
			t.Errorf("withFlag(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
