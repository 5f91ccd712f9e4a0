package aggregate

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// SeriesStats describes the interval under way, for "which metrics are
// eating the memory?" (GET /debug/series, veneur-lite top).
type SeriesStats struct {
	IntervalStart    time.Time         `json:"interval_start"`
	ElapsedSeconds   float64           `json:"elapsed_seconds"`
	LiveSeries       int               `json:"live_series"`
	MaxSeries        int               `json:"max_series"`
	MaxSeriesPerName int               `json:"max_series_per_name"`
	Samples          uint64            `json:"samples"`
	SamplesPerSecond float64           `json:"samples_per_second"`
	ShedSamples      map[string]uint64 `json:"shed_samples"` // by reason
	// Names are the top metric names by the requested order; TotalNames
	// counts them all.
	Names      []NameStats `json:"names"`
	TotalNames int         `json:"total_names"`
	// TagsSampled says the tag-key figures of some names were read from
	// the first tagSampleSeries of their series only.
	TagsSampled bool `json:"tags_sampled"`
}

// NameStats is one metric name's share of the interval.
type NameStats struct {
	Name             string  `json:"name"`
	Series           int     `json:"series"`
	Samples          uint64  `json:"samples"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	ShedSamples      uint64  `json:"shed_samples"`
	// TopTagKeys are the name's tag keys with the most distinct values:
	// the ones that multiply its series.
	TopTagKeys []TagKeyStats `json:"top_tag_keys"`
}

// TagKeyStats counts one tag key's distinct values.
type TagKeyStats struct {
	Key    string `json:"key"`
	Values int    `json:"values"`
}

// The orders Stats sorts names by.
const (
	BySeries  = "series"
	BySamples = "samples"
	ByShed    = "shed"
)

// tagSampleSeries bounds the series whose tags are read per name, so that
// a call stays cheap at a million series: distinct values are counted
// exactly below it and as "at least" past it.
const tagSampleSeries = 20_000

// topTagKeys is how many tag keys a name reports.
const topTagKeys = 5

// Stats returns the top n metric names of the interval under way by order
// (BySeries, BySamples or ByShed; anything else means BySeries). It holds
// each shard's lock only to read that shard's counts.
func (a *Aggregator) Stats(now time.Time, n int, order string) SeriesStats {
	started := time.Unix(0, a.intervalStart.Load())
	st := SeriesStats{
		IntervalStart:    started,
		ElapsedSeconds:   max(now.Sub(started).Seconds(), 0),
		MaxSeries:        a.limit.MaxSeries(),
		MaxSeriesPerName: a.limit.MaxSeriesPerName(),
	}
	byName := map[string]*NameStats{}
	for si := range a.shards {
		sh := &a.shards[si]
		sh.mu.Lock()
		for _, i := range sh.live {
			m := sh.metas[i]
			ns := byName[m.name]
			if ns == nil {
				ns = &NameStats{Name: m.name}
				byName[m.name] = ns
			}
			ns.Series++
			ns.Samples += uint64(sh.slots[i].samples)
		}
		sh.mu.Unlock()
	}
	iv := a.interval.Load()
	st.ShedSamples = map[string]uint64{}
	for reason, names := range iv.ShedByName() {
		for name, shed := range names {
			st.ShedSamples[reason] += shed
			ns := byName[name]
			if ns == nil {
				ns = &NameStats{Name: name}
				byName[name] = ns
			}
			ns.ShedSamples += shed
		}
	}

	all := make([]*NameStats, 0, len(byName))
	for _, ns := range byName {
		st.LiveSeries += ns.Series
		st.Samples += ns.Samples
		if st.ElapsedSeconds > 0 {
			ns.SamplesPerSecond = float64(ns.Samples) / st.ElapsedSeconds
		}
		all = append(all, ns)
	}
	if st.ElapsedSeconds > 0 {
		st.SamplesPerSecond = float64(st.Samples) / st.ElapsedSeconds
	}
	st.TotalNames = len(all)
	key := func(ns *NameStats) uint64 { return uint64(ns.Series) }
	switch order {
	case BySamples:
		key = func(ns *NameStats) uint64 { return ns.Samples }
	case ByShed:
		key = func(ns *NameStats) uint64 { return ns.ShedSamples }
	}
	slices.SortFunc(all, func(x, y *NameStats) int {
		return cmp.Or(cmp.Compare(key(y), key(x)), cmp.Compare(x.Name, y.Name))
	})
	all = all[:min(max(n, 0), len(all))]
	st.TagsSampled = a.tagKeyStats(all)
	st.Names = make([]NameStats, len(all))
	for i, ns := range all {
		st.Names[i] = *ns
	}
	return st
}

// tagKeyStats fills in the top tag keys of names, reading at most
// tagSampleSeries series of each; it reports whether it stopped short.
func (a *Aggregator) tagKeyStats(names []*NameStats) (sampled bool) {
	if len(names) == 0 {
		return false
	}
	type keyValues map[string]map[string]struct{} // tag key → distinct values
	want := make(map[string]keyValues, len(names))
	read := make(map[string]int, len(names))
	for _, ns := range names {
		want[ns.Name] = keyValues{}
	}
	for si := range a.shards {
		sh := &a.shards[si]
		sh.mu.Lock()
		for _, i := range sh.live {
			m := sh.metas[i]
			kv, ok := want[m.name]
			if !ok {
				continue
			}
			if read[m.name] >= tagSampleSeries {
				sampled = true
				continue
			}
			read[m.name]++
			for _, tag := range m.tags {
				k, v, _ := strings.Cut(tag, ":")
				if kv[k] == nil {
					kv[k] = map[string]struct{}{}
				}
				kv[k][v] = struct{}{}
			}
		}
		sh.mu.Unlock()
	}
	for _, ns := range names {
		for k, vs := range want[ns.Name] {
			ns.TopTagKeys = append(ns.TopTagKeys, TagKeyStats{Key: k, Values: len(vs)})
		}
		slices.SortFunc(ns.TopTagKeys, func(x, y TagKeyStats) int {
			return cmp.Or(cmp.Compare(y.Values, x.Values), cmp.Compare(x.Key, y.Key))
		})
		ns.TopTagKeys = ns.TopTagKeys[:min(topTagKeys, len(ns.TopTagKeys))]
	}
	return sampled
}
