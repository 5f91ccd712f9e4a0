package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/veneur-lite/veneur-lite/bench/internal/stats"

	"github.com/veneur-lite/veneur-lite/bench/loadgen"
)

// load is one traffic shape of the sweep.
type load struct {
	Name  string `json:"name"`
	About string `json:"about"`
	// Gen is the generator's configuration; Addr, Rate and Duration are
	// set per run.
	Gen loadgen.Config `json:"gen"`
	// Packets is how many distinct datagrams the sender builds and cycles
	// through: enough lines that every series of the load recurs.
	Packets int `json:"pool_packets"`
	// Interval is veneur-lite's flush interval for this load (-interval
	// overrides it for all).
	Interval time.Duration `json:"interval"`
	// OnePerDatagram asserts that the built datagrams hold one line each.
	OnePerDatagram bool      `json:"one_per_datagram,omitempty"`
	Rates          []float64 `json:"rates_per_s"`
	// Pool is what the sender built, as it reported it.
	Pool poolInfo `json:"pool"`
}

// Offered rates in metrics/s. Datagrams of one metric cost the sender one
// system call per metric (its single thread reached ~100k datagrams/s on
// the busy development VM), so that load steps up from lower.
var (
	packedRates      = []float64{0.2e6, 0.4e6, 0.8e6, 1.6e6, 2.4e6, 3.2e6, 4.8e6}
	packedRatesQuick = []float64{0.4e6, 1.6e6, 3.2e6}
	smallRates       = []float64{25e3, 50e3, 100e3, 150e3, 200e3, 300e3, 400e3}
	smallRatesQuick  = []float64{50e3, 100e3, 200e3}
)

// defaultLoads are the four loads of the comparison. Series counts are
// names × tag values ^ tags per metric; every load is seeded, so two runs
// send the same bytes.
//
// The 1,000-series loads flush every second, so a run holds two or three
// periodic flushes besides the final one. 100k-series flushes every 10 s,
// with each run placed between two ticks (see harness.avoidTick): flushing
// ~300,000 points every second took more than the second on the 2-vCPU
// development VM, so the sink missed its deadline and dropped whole
// intervals, a figure about the flush interval rather than about
// ingestion. Its only flush is then the final one, whose CPU still counts.
func defaultLoads(quick bool) []load {
	packed, small := packedRates, smallRates
	if quick {
		packed, small = packedRatesQuick, smallRatesQuick
	}
	return []load{
		{
			Name:     "packed-counters",
			About:    "counters only, ~1,432-byte datagrams, 1,000 series",
			Gen:      loadgen.Config{Seed: 1, Mix: loadgen.Mix{loadgen.Count: 1}, Names: 8, TagValues: 5, TagsPerMetric: 3},
			Packets:  2048,
			Interval: time.Second,
			Rates:    packed,
		},
		{
			Name:     "packed-mix",
			About:    "c:1,ms:1,g:1,s:1, ~1,432-byte datagrams, 1,000 series; loss counted on c and ms",
			Gen:      loadgen.Config{Seed: 2, Mix: loadgen.Mix{loadgen.Count: 1, loadgen.Timing: 1, loadgen.Gauge: 1, loadgen.Set: 1}, Names: 8, TagValues: 5, TagsPerMetric: 3},
			Packets:  2048,
			Interval: time.Second,
			Rates:    packed,
		},
		{
			// Lines of these tags are 65–70 bytes, so a 128-byte datagram
			// holds exactly one (the sweep checks).
			Name:           "one-per-datagram",
			About:          "counters, one metric per datagram, 1,000 series",
			Gen:            loadgen.Config{Seed: 3, Mix: loadgen.Mix{loadgen.Count: 1}, Names: 8, TagValues: 5, TagsPerMetric: 3, PacketSize: 128},
			Packets:        8192,
			Interval:       time.Second,
			OnePerDatagram: true,
			Rates:          small,
		},
		{
			// 16,384 datagrams of ~24 lines draw ~390,000 lines from the
			// 100,000 series: ~98 % of them appear, each interval.
			Name:     "100k-series",
			About:    "the generator's default mix (c, g, ms, h, d, s), packed, 100,000 series",
			Gen:      loadgen.Config{Seed: 4, Mix: loadgen.DefaultMix, Names: 1000, TagValues: 10, TagsPerMetric: 2},
			Packets:  16384,
			Interval: 10 * time.Second,
			Rates:    packed,
		},
	}
}

// sweep runs every load: for each offered rate, reps rounds of (baseline,
// veneur-lite), so that the two meet the same machine within seconds of
// each other. It returns the runs done so far when ctx ends.
func (h *harness) sweep(ctx context.Context, loads []load, log *slog.Logger) ([]Run, error) {
	var runs []Run
	for li := range loads {
		l := &loads[li]
		snd, err := startSender(h.opts.self, l.Gen, l.Packets)
		if err != nil {
			return runs, fmt.Errorf("load %s: %w", l.Name, err)
		}
		l.Pool = snd.Info
		if l.OnePerDatagram && l.Pool.MaxLines != 1 {
			_ = snd.close()
			return runs, fmt.Errorf("load %s: datagrams hold up to %d lines, want 1", l.Name, l.Pool.MaxLines)
		}
		log.Info("load", "name", l.Name, "series", l.Pool.Series, "datagrams", l.Pool.Packets,
			"lines_per_datagram", fmt.Sprintf("%.1f", float64(l.Pool.Lines)/float64(l.Pool.Packets)),
			"countable_share", fmt.Sprintf("%.2f", l.Pool.CountableShare), "build_s", fmt.Sprintf("%.1f", l.Pool.BuildSeconds))
		for _, rate := range l.Rates {
			for rep := 1; rep <= h.opts.reps; rep++ {
				for _, subject := range subjects {
					r := h.runOne(ctx, l, snd, subject, rate, rep)
					runs = append(runs, r)
					logRun(log, &r)
					if ctx.Err() != nil {
						_ = snd.close()
						return runs, ctx.Err()
					}
					if snd.exited() {
						return runs, fmt.Errorf("load %s: the sender died: %s", l.Name, r.Err)
					}
				}
			}
		}
		if err := snd.close(); err != nil {
			log.Warn("sender", "load", l.Name, "error", err)
		}
	}
	return runs, nil
}

func logRun(log *slog.Logger, r *Run) {
	if !r.ok() {
		log.Warn("run failed", "load", r.Load, "subject", r.Subject, "offered", fmtRate(r.Offered), "rep", r.Rep, "error", r.Err)
		return
	}
	log.Info("run", "load", r.Load, "subject", r.Subject, "offered", fmtRate(r.Offered), "rep", r.Rep,
		"sent_per_s", fmtRate(r.SendRate), "delivered_per_s", fmtRate(r.DeliveredRate),
		"loss_pct", fmt.Sprintf("%.2f", r.LossPct), "kdrops", r.DropsProc,
		"cpu_s_per_m", fmt.Sprintf("%.3f", r.CPUPerMillion), "steal_pct", fmt.Sprintf("%.1f", r.StealPct),
		"other_cpu_s", fmt.Sprintf("%.2f", r.OtherCPU), "wall_s", fmt.Sprintf("%.1f", r.WallSeconds))
}

// point is one receiver at one offered rate of one load: the medians of
// its runs that produced figures. With none (Runs 0), every figure is 0.
type point struct {
	Load    string  `json:"load"`
	Subject string  `json:"subject"`
	Offered float64 `json:"offered_per_s"`
	Runs    int     `json:"runs"`   // that produced figures
	Failed  int     `json:"failed"` // that did not

	SendRate      float64 `json:"send_rate_per_s"`
	Delivered     float64 `json:"delivered_per_s"`
	DeliveredMin  float64 `json:"delivered_min_per_s"`
	DeliveredMax  float64 `json:"delivered_max_per_s"`
	LossPct       float64 `json:"loss_pct"`
	LossMin       float64 `json:"loss_min_pct"`
	LossMax       float64 `json:"loss_max_pct"`
	Drops         float64 `json:"kernel_drops"` // /proc/net/udp, datagrams
	CPUPerMillion float64 `json:"cpu_s_per_million"`
	StealPct      float64 `json:"steal_pct"`
	OtherCPU      float64 `json:"other_cpu_s"`
	// SenderLimited marks a rate the sender could not reach (median
	// achieved < 95 % of offered): the point is really at SendRate.
	SenderLimited bool `json:"sender_limited"`
}

// senderShortfall is how far below the offered rate the achieved one may
// fall before a point is marked sender-limited.
const senderShortfall = 0.95

// aggregate groups runs into points, in the order loads and rates were
// run, the baseline before veneur-lite.
func aggregate(runs []Run) []point {
	type key struct {
		load, subject string
		offered       float64
	}
	var order []key
	groups := map[key][]*Run{}
	for i := range runs {
		r := &runs[i]
		k := key{r.Load, r.Subject, r.Offered}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	loadOrder := map[string]int{}
	for _, k := range order {
		if _, ok := loadOrder[k.load]; !ok {
			loadOrder[k.load] = len(loadOrder)
		}
	}
	slices.SortStableFunc(order, func(a, b key) int {
		return cmp.Or(cmp.Compare(loadOrder[a.load], loadOrder[b.load]), cmp.Compare(a.offered, b.offered),
			cmp.Compare(slices.Index(subjects, a.subject), slices.Index(subjects, b.subject)))
	})
	points := make([]point, 0, len(order))
	for _, k := range order {
		p := point{Load: k.load, Subject: k.subject, Offered: k.offered}
		var send, deliv, loss, drops, cpu, steal, other []float64
		for _, r := range groups[k] {
			if !r.ok() {
				p.Failed++
				continue
			}
			send = append(send, r.SendRate)
			deliv = append(deliv, r.DeliveredRate)
			loss = append(loss, r.LossPct)
			drops = append(drops, float64(r.DropsProc))
			cpu = append(cpu, r.CPUPerMillion)
			steal = append(steal, r.StealPct)
			other = append(other, r.OtherCPU)
		}
		p.Runs = len(send)
		if p.Runs > 0 { // else every figure stays 0: read Runs first
			p.SendRate, p.Delivered, p.LossPct = stats.Median(send), stats.Median(deliv), stats.Median(loss)
			p.Drops, p.CPUPerMillion, p.StealPct, p.OtherCPU = stats.Median(drops), stats.Median(cpu), stats.Median(steal), stats.Median(other)
			p.DeliveredMin, p.DeliveredMax = slices.Min(deliv), slices.Max(deliv)
			p.LossMin, p.LossMax = slices.Min(loss), slices.Max(loss)
			p.SenderLimited = p.SendRate < senderShortfall*p.Offered
		}
		points = append(points, p)
	}
	return points
}

// threshold is the highest rate one receiver handled within the loss
// bound.
type threshold struct {
	Rate float64 `json:"rate_per_s"` // 0 when None
	// Bound: no limit was found below Rate, because the receiver was
	// lossless up to the top of the sweep or as far as the sender could
	// go; the real limit is at least Rate.
	Bound bool `json:"bound"`
	// SenderLimited: the walk ended at a rate the sender could not reach,
	// and Rate is what it did reach there.
	SenderLimited bool `json:"sender_limited"`
	// None: lossy already at the lowest rate offered.
	None bool `json:"none"`
}

// maxLossless walks ps (one receiver, one load) up the offered rates and
// returns the last rate before the first whose median loss reached
// maxLossPct. Stopping at the first failure, rather than taking the
// highest passing rate anywhere, keeps one lucky run above the knee from
// counting; a rate with no successful run counts as a failure. A lossless
// rate the sender fell short of also ends the walk, at the rate it did
// reach: nothing was offered beyond it, so it is a bound, not a limit.
func maxLossless(ps []point, maxLossPct float64) threshold {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b point) int { return cmp.Compare(a.Offered, b.Offered) })
	t := threshold{None: true}
	for i, p := range ps {
		if p.Runs == 0 || !(p.LossPct < maxLossPct) {
			break
		}
		if p.SenderLimited {
			return threshold{Rate: max(t.Rate, p.SendRate), Bound: true, SenderLimited: true}
		}
		t = threshold{Rate: p.Offered, Bound: i == len(ps)-1}
	}
	return t
}

// summary is the headline of one load.
type summary struct {
	Load     string               `json:"load"`
	Lossless map[string]threshold `json:"max_lossless"` // by subject
	// Ratio is veneur-lite's lossless rate over the baseline's, with
	// RatioText saying when it is only a bound; 0 when unknown.
	Ratio     float64 `json:"ratio"`
	RatioText string  `json:"ratio_text"`
	// CPU per million metrics of each receiver at CPURate: the highest
	// rate at which both were lossless and the sender kept up, or the
	// lowest rate of the sweep when there is none (CPUAtLossless false).
	CPURate       float64            `json:"cpu_rate_per_s"`
	CPUAtLossless bool               `json:"cpu_at_lossless"`
	CPU           map[string]float64 `json:"cpu_s_per_million"`
}

// summarize computes each load's summary from its points.
func summarize(points []point, maxLossPct float64) []summary {
	var out []summary
	for _, ps := range groupByLoad(points) {
		s := summary{Load: ps[0].Load, Lossless: map[string]threshold{}, CPU: map[string]float64{}}
		bySubject := map[string][]point{}
		for _, p := range ps {
			bySubject[p.Subject] = append(bySubject[p.Subject], p)
		}
		for _, subj := range subjects {
			s.Lossless[subj] = maxLossless(bySubject[subj], maxLossPct)
		}
		s.Ratio, s.RatioText = ratio(s.Lossless[subjectVeneur], s.Lossless[subjectBaseline], lowest(ps))
		s.CPURate, s.CPUAtLossless = cpuRate(bySubject[subjectBaseline], bySubject[subjectVeneur], maxLossPct)
		for _, subj := range subjects {
			for _, p := range bySubject[subj] {
				if p.Offered == s.CPURate && p.Runs > 0 {
					s.CPU[subj] = p.CPUPerMillion
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// groupByLoad splits points, which aggregate returns load by load.
func groupByLoad(points []point) [][]point {
	var out [][]point
	for i := 0; i < len(points); {
		j := i
		for j < len(points) && points[j].Load == points[i].Load {
			j++
		}
		out = append(out, points[i:j])
		i = j
	}
	return out
}

func lowest(ps []point) float64 {
	lo := math.Inf(1)
	for _, p := range ps {
		lo = min(lo, p.Offered)
	}
	return lo
}

// ratio is v/b with what is known about it when either threshold is only
// a bound.
func ratio(v, b threshold, lowestRate float64) (float64, string) {
	switch {
	case b.None:
		return 0, "n/a (baseline lossy at the lowest rate)"
	case v.None:
		r := lowestRate / b.Rate
		return r, fmt.Sprintf("< %.2f", r)
	case v.Bound && b.Bound:
		return 0, "n/a (no limit found for either)"
	}
	r := v.Rate / b.Rate
	switch {
	case b.Bound: // the baseline could do more: the ratio is at most this
		return r, fmt.Sprintf("≤ %.2f", r)
	case v.Bound:
		return r, fmt.Sprintf("≥ %.2f", r)
	}
	return r, fmt.Sprintf("%.2f", r)
}

// cpuRate is the highest offered rate at which both receivers were
// lossless and got what was offered, where their CPU per metric compares
// like with like; failing that, the lowest rate.
func cpuRate(base, ven []point, maxLossPct float64) (float64, bool) {
	lossless := func(ps []point, rate float64) bool {
		for _, p := range ps {
			if p.Offered == rate {
				return p.Runs > 0 && p.LossPct < maxLossPct && !p.SenderLimited
			}
		}
		return false
	}
	if len(base) == 0 {
		return 0, false
	}
	best, found := base[0].Offered, false
	for _, p := range base {
		best = min(best, p.Offered)
	}
	for _, p := range base {
		if lossless(base, p.Offered) && lossless(ven, p.Offered) && (!found || p.Offered > best) {
			best, found = p.Offered, true
		}
	}
	return best, found
}

// fmtRate writes metrics/s compactly: 1.60M, 0.25M, 50k, 950.
func fmtRate(r float64) string {
	switch {
	case math.IsNaN(r):
		return "-"
	case r >= 1e5:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}
