package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// runsOf builds the runs of one receiver at one rate with the given losses.
func runsOf(load, subject string, offered float64, losses ...float64) []Run {
	var out []Run
	for i, l := range losses {
		out = append(out, Run{Load: load, Subject: subject, Offered: offered, Rep: i + 1,
			SendRate: offered, DeliveredRate: offered * (1 - l/100), LossPct: l, CPUPerMillion: 1 + l/100})
	}
	return out
}

func TestAggregateTakesMediansAndSkipsFailedRuns(t *testing.T) {
	var runs []Run
	runs = append(runs, runsOf("a", subjectVeneur, 2e6, 10, 0, 30)...)
	runs = append(runs, runsOf("a", subjectBaseline, 2e6, 0, 0, 0)...)
	runs = append(runs, runsOf("a", subjectBaseline, 1e6, 0, 0)...)
	runs = append(runs, Run{Load: "a", Subject: subjectBaseline, Offered: 1e6, Err: "boom", LossPct: 100})
	runs = append(runs, runsOf("b", subjectBaseline, 1e6, 5)...)
	runs[0].SendRate = 1.5e6 // one short run does not make the point sender-limited
	ps := aggregate(runs)
	var got []string
	for _, p := range ps {
		got = append(got, p.Load+"/"+p.Subject+"/"+fmtRate(p.Offered))
	}
	want := []string{"a/baseline/1.00M", "a/baseline/2.00M", "a/veneur-lite/2.00M", "b/baseline/1.00M"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
	if p := ps[0]; p.Runs != 2 || p.Failed != 1 || p.LossPct != 0 {
		t.Errorf("failed run counted: %+v", p)
	}
	if p := ps[2]; p.LossPct != 10 || p.LossMin != 0 || p.LossMax != 30 || p.Delivered != 1.8e6 || p.SenderLimited {
		t.Errorf("veneur-lite point %+v", p)
	}
	onlyFailed := aggregate([]Run{{Load: "c", Subject: subjectVeneur, Offered: 1, Err: "x"}})
	if p := onlyFailed[0]; p.Runs != 0 || p.Failed != 1 || p.LossPct != 0 || math.IsNaN(p.CPUPerMillion) {
		t.Errorf("a point without runs must hold zeros, not NaN: %+v", p)
	}
}

func TestMaxLossless(t *testing.T) {
	pt := func(rate, loss float64) point { return point{Offered: rate, LossPct: loss, Runs: 3} }
	for _, c := range []struct {
		name string
		ps   []point
		want threshold
	}{
		{"knee in the middle", []point{pt(3, 50), pt(1, 0), pt(2, 0.99)}, threshold{Rate: 2}},
		{"exactly the threshold is lossy", []point{pt(1, 0), pt(2, 1)}, threshold{Rate: 1}},
		{"lucky run above the knee does not count", []point{pt(1, 0), pt(2, 5), pt(3, 0)}, threshold{Rate: 1}},
		{"lossless throughout", []point{pt(1, 0), pt(2, 0)}, threshold{Rate: 2, Bound: true}},
		{"the sender fell short", []point{pt(1, 0), {Offered: 2, SendRate: 1.5, Runs: 3, SenderLimited: true}, pt(3, 0)},
			threshold{Rate: 1.5, Bound: true, SenderLimited: true}},
		{"the sender fell short below the previous rate", []point{pt(1, 0), {Offered: 2, SendRate: 0.8, Runs: 3, SenderLimited: true}},
			threshold{Rate: 1, Bound: true, SenderLimited: true}},
		{"lossy where the sender fell short", []point{pt(1, 0), {Offered: 2, SendRate: 1.5, LossPct: 5, Runs: 3, SenderLimited: true}},
			threshold{Rate: 1}},
		{"lossy from the start", []point{pt(1, 2), pt(2, 0)}, threshold{None: true}},
		{"a rate without runs stops the walk", []point{pt(1, 0), {Offered: 2}, pt(3, 0)}, threshold{Rate: 1}},
		{"nothing", nil, threshold{None: true}},
	} {
		if got := maxLossless(c.ps, 1); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestRatioSaysWhenItIsABound(t *testing.T) {
	for _, c := range []struct {
		v, b  threshold
		ratio float64
		text  string
	}{
		{threshold{Rate: 1e6}, threshold{Rate: 4e6}, 0.25, "0.25"},
		{threshold{Rate: 1e6}, threshold{Rate: 4e6, Bound: true}, 0.25, "≤ 0.25"},
		{threshold{Rate: 4e6, Bound: true}, threshold{Rate: 2e6}, 2, "≥ 2.00"},
		{threshold{Rate: 4e6, Bound: true}, threshold{Rate: 4e6, Bound: true}, 0, "n/a (no limit"},
		{threshold{None: true}, threshold{Rate: 2e6}, 0.1, "< 0.10"},
		{threshold{Rate: 1e6}, threshold{None: true}, 0, "n/a (baseline"},
	} {
		r, text := ratio(c.v, c.b, 0.2e6)
		if math.Abs(r-c.ratio) > 1e-9 || !strings.HasPrefix(text, c.text) {
			t.Errorf("ratio(%+v, %+v) = %v %q, want %v %q", c.v, c.b, r, text, c.ratio, c.text)
		}
	}
}

func TestSummarize(t *testing.T) {
	var runs []Run
	for _, r := range []struct {
		rate         float64
		base, veneur float64 // loss %
	}{{0.2e6, 0, 0}, {0.4e6, 0, 0.5}, {0.8e6, 0, 20}, {1.6e6, 3, 60}} {
		runs = append(runs, runsOf("l", subjectBaseline, r.rate, r.base, r.base, r.base)...)
		runs = append(runs, runsOf("l", subjectVeneur, r.rate, r.veneur, r.veneur, r.veneur)...)
	}
	s := summarize(aggregate(runs), 1)
	if len(s) != 1 {
		t.Fatalf("%d summaries", len(s))
	}
	got := s[0]
	if got.Lossless[subjectBaseline] != (threshold{Rate: 0.8e6}) || got.Lossless[subjectVeneur] != (threshold{Rate: 0.4e6}) {
		t.Errorf("thresholds %+v", got.Lossless)
	}
	if got.Ratio != 0.5 || got.RatioText != "0.50" {
		t.Errorf("ratio %v %q", got.Ratio, got.RatioText)
	}
	// CPU compares at the highest rate both handled: 0.4M.
	if got.CPURate != 0.4e6 || !got.CPUAtLossless || got.CPU[subjectBaseline] != 1 || got.CPU[subjectVeneur] != 1.005 {
		t.Errorf("cpu at %v (%v): %v", got.CPURate, got.CPUAtLossless, got.CPU)
	}

	// Nothing lossless for veneur-lite: CPU compares at the lowest rate.
	runs = append(runsOf("m", subjectBaseline, 1e6, 0), runsOf("m", subjectVeneur, 1e6, 50)...)
	runs = append(runs, append(runsOf("m", subjectBaseline, 2e6, 0), runsOf("m", subjectVeneur, 2e6, 70)...)...)
	got = summarize(aggregate(runs), 1)[0]
	if got.CPURate != 1e6 || got.CPUAtLossless || !strings.HasPrefix(got.RatioText, "< ") {
		t.Errorf("lossy veneur-lite: cpu at %v (%v), ratio %q", got.CPURate, got.CPUAtLossless, got.RatioText)
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("1.6M, 200k,4e5,0.2M")
	if want := []float64{200e3, 400e3, 1.6e6}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseRates = %v %v, want %v", got, err, want)
	}
	for _, bad := range []string{"", "fast", "-1M", "0", "30M"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) accepted", bad)
		}
	}
}

func TestSelectLoads(t *testing.T) {
	ls, err := selectLoads(options{loads: "100k-series, packed-mix", rates: "1M"})
	if err != nil || len(ls) != 2 || ls[0].Name != "100k-series" || !slices.Equal(ls[1].Rates, []float64{1e6}) {
		t.Errorf("selectLoads = %+v, %v", ls, err)
	}
	if _, err := selectLoads(options{loads: "nope"}); err == nil {
		t.Error("an unknown load was accepted")
	}
	for _, l := range defaultLoads(true) {
		if len(l.Rates) != 3 {
			t.Errorf("-quick load %s has %d rates", l.Name, len(l.Rates))
		}
	}
}

func TestFmtRate(t *testing.T) {
	for in, want := range map[float64]string{4.8e6: "4.80M", 200e3: "0.20M", 50e3: "50k", 950: "950", math.NaN(): "-"} {
		if got := fmtRate(in); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestTickWait(t *testing.T) {
	base := time.Unix(1_700_000_000, 0) // a multiple of 10 s
	for _, c := range []struct {
		at       time.Duration // after a tick
		interval time.Duration
		want     time.Duration
	}{
		{0, 10 * time.Second, 0},                                                  // 10 s ahead: room for 3 s + slack
		{5 * time.Second, 10 * time.Second, 0},                                    // 5 s left ≥ 4.5 s
		{6 * time.Second, 10 * time.Second, 4*time.Second + 100*time.Millisecond}, // 4 s left: wait for the tick
		{500 * time.Millisecond, time.Second, 0},                                  // 1 s interval: ticks always fall in runs
		{6 * time.Second, 8 * time.Second, 0},                                     // 8 s < 2 × 4.5 s: not placed
	} {
		if got := tickWait(base.Add(c.at), c.interval, 3*time.Second); got != c.want {
			t.Errorf("%v after a tick of %v: wait %v, want %v", c.at, c.interval, got, c.want)
		}
	}
}

// A rate the sender fell short of for one receiver is no place to compare
// CPU, nor a limit found.
func TestSummarizeSenderLimited(t *testing.T) {
	var runs []Run
	runs = append(runs, runsOf("l", subjectBaseline, 1e6, 0)...)
	runs = append(runs, runsOf("l", subjectVeneur, 1e6, 0)...)
	runs = append(runs, runsOf("l", subjectBaseline, 2e6, 0)...)
	short := runsOf("l", subjectVeneur, 2e6, 0)
	short[0].SendRate = 0.7e6
	runs = append(runs, short...)
	got := summarize(aggregate(runs), 1)[0]
	if v := got.Lossless[subjectVeneur]; v != (threshold{Rate: 1e6, Bound: true, SenderLimited: true}) {
		t.Errorf("veneur-lite threshold %+v", v)
	}
	if got.CPURate != 1e6 || !got.CPUAtLossless {
		t.Errorf("CPU compared at %v (%v), want 1M", got.CPURate, got.CPUAtLossless)
	}
	if got.RatioText != "n/a (no limit found for either)" {
		t.Errorf("ratio %q", got.RatioText)
	}
}
