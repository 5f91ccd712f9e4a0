package prometheus

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/veneur-lite/veneur-lite/internal/promname"
	"github.com/veneur-lite/veneur-lite/metric"
)

// toSeries maps each point onto one series with one sample: labels by
// internal/promname, sorted as remote write requires, the timestamp in
// milliseconds. Label and sample storage is allocated once per flush.
//
// Two points whose labels come out identical (api.requests and
// api_requests, or a counter and a gauge of one name) cannot both be sent:
// Prometheus refuses a second value at the same timestamp, and refusing
// rolls back the whole request, so one collision would cost a body's worth
// of series. One of them is kept, the same one whatever the flush order:
// the smallest by name, host, tags and type. The rest are counted
// (sink.errors cause:duplicate, sink.series_dropped) and logged once per
// flush.
func (s *Sink) toSeries(points []metric.Point) []timeSeries {
	nLabels := 0
	for i := range points {
		nLabels += 2 + len(points[i].Tags)
	}
	var (
		series  = make([]timeSeries, 0, len(points))
		slab    = make([]promname.Label, 0, nLabels)
		from    = make([]int, 0, len(points)) // series → index of its point
		index   = make(map[uint64]int, len(points))
		scratch []promname.Label
		h       = xxhash.New()

		labelsDropped, dups int
		firstDup            string
	)
	for i := range points {
		p := &points[i]
		var dropped int
		scratch, dropped = promname.AppendLabels(scratch[:0], promname.MetricName(p.Name), p.Host, p.Tags, nil)
		labelsDropped += dropped

		h.Reset()
		for _, l := range scratch {
			_, _ = h.WriteString(l.Name)
			_, _ = h.Write(sep)
			_, _ = h.WriteString(l.Value)
			_, _ = h.Write(sep)
		}
		sum := h.Sum64()
		if j, ok := index[sum]; ok && slices.Equal(series[j].labels, scratch) {
			dups++
			if firstDup == "" {
				firstDup = p.Name
			}
			if comparePoints(p, &points[from[j]]) < 0 {
				series[j].value, series[j].ms = sampleOf(p)
				from[j] = i
			}
			continue
		}
		// A hash shared by different labels (never seen in practice)
		// leaves both series in; only the first is in the index.

		start := len(slab)
		slab = append(slab, scratch...)
		k := len(series)
		ts := timeSeries{labels: slab[start:len(slab):len(slab)]}
		ts.value, ts.ms = sampleOf(p)
		series = append(series, ts)
		from = append(from, i)
		if _, ok := index[sum]; !ok {
			index[sum] = k
		}
	}
	s.m.labelsDropped.Add(uint64(labelsDropped))
	if dups > 0 {
		s.core.CountError(causeDuplicate, dups)
		s.m.seriesDropped.Add(uint64(dups))
		s.log.Warn("series collide after mapping names and tags to Prometheus rules; one of each is sent",
			"dropped", dups, "example", firstDup)
	}
	return series
}

// sampleOf returns the value and the timestamp in milliseconds p is sent
// with.
func sampleOf(p *metric.Point) (value float64, ms int64) {
	v := p.Value
	if math.IsNaN(v) {
		// Prometheus reads one NaN bit pattern as a staleness marker;
		// any other NaN is a value. Send the ordinary one.
		v = math.NaN()
	}
	return v, p.Timestamp * 1000
}

// comparePoints orders points by identity, then value, so that the choice
// among colliding series does not depend on the order of the flush.
func comparePoints(a, b *metric.Point) int {
	return cmp.Or(
		strings.Compare(a.Name, b.Name),
		strings.Compare(a.Host, b.Host),
		slices.Compare(a.Tags, b.Tags),
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Value, b.Value),
		cmp.Compare(a.Timestamp, b.Timestamp),
	)
}

// sep ends each name and value in a label set's hash: 0xff occurs in no
// valid name and no valid UTF-8 value.
var sep = []byte{0xff}
