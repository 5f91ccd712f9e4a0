// Package exposition serves a telemetry.Registry in the Prometheus text
// exposition format, for GET /metrics. It reads the same registry whose
// increases the flusher sends through the pipeline as veneur.* series, so
// the two never disagree, and it reads it without changing it (Visit), so
// scrapes never disturb those increases.
//
// Mapping: names and tags follow internal/promname, as in the remote-write
// sink (veneur.sink.requests → veneur_sink_requests); counters become
// counter families named with a _total suffix holding their total since
// start; gauges stay gauges; histograms become Prometheus histograms
// (_bucket, _sum, _count) over telemetry.Buckets; the veneur_internal_metric
// tag is dropped, since everything on this endpoint is internal. Each
// family's # HELP is its telemetry.Catalog help text.
package exposition

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/veneur-lite/veneur-lite/internal/promname"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Format is the Content-Type of the body: text format 0.0.4, which every
// Prometheus version scrapes.
var Format = expfmt.NewFormat(expfmt.TypeTextPlain)

// Handler serves reg's metrics. log (may be nil) hears about write errors.
func Handler(reg *telemetry.Registry, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Encode in full before answering, so a failure is a 500 rather
		// than a truncated 200 a scraper would half ingest.
		var buf bytes.Buffer
		if err := Write(&buf, reg); err != nil {
			log.Error("encode /metrics", "error", err)
			http.Error(w, "encode metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(Format))
		_, _ = w.Write(buf.Bytes())
	})
}

// series is one metric of a family with the raw name and tags it came from, which
// break ties deterministically.
type series struct {
	m    *dto.Metric
	raw  string
	help string
}

type family struct {
	typ    dto.MetricType
	series []series
}

// Write encodes reg's metrics to w in the text format, families sorted by
// name and series by labels.
func Write(w io.Writer, reg *telemetry.Registry) error {
	fams := map[string]*family{}
	var labels []promname.Label
	// Visit hands out counters before gauges, so when a gauge's name
	// collides with a counter family (a gauge "x_total" and a counter
	// "x"), the counter keeps the family and the gauge is left out.
	reg.Visit(func(m telemetry.Measurement) {
		name := promname.MetricName(string(m.Name))
		typ := dto.MetricType_GAUGE
		switch {
		case m.Histogram != nil:
			typ = dto.MetricType_HISTOGRAM
		case m.Counter:
			typ = dto.MetricType_COUNTER
			if !strings.HasSuffix(name, "_total") {
				name += "_total"
			}
		}
		f := fams[name]
		if f == nil {
			f = &family{typ: typ}
			fams[name] = f
		} else if f.typ != typ {
			return
		}
		var tags []string
		if len(m.Tags) > 0 {
			tags = strings.Split(string(m.Tags), ",")
		}
		labels, _ = promname.AppendLabels(labels[:0], name, "", tags, isInternalTag)
		dm := &dto.Metric{}
		for _, l := range labels {
			if l.Name != "__name__" {
				dm.Label = append(dm.Label, &dto.LabelPair{Name: &l.Name, Value: &l.Value})
			}
		}
		v := m.Value
		switch typ {
		case dto.MetricType_HISTOGRAM:
			dm.Histogram = histogram(m.Histogram)
		case dto.MetricType_COUNTER:
			dm.Counter = &dto.Counter{Value: &v}
		default:
			dm.Gauge = &dto.Gauge{Value: &v}
		}
		var help string
		if m.Spec != nil {
			help = m.Spec.Help
		}
		f.series = append(f.series, series{m: dm, raw: string(m.Name) + "|" + string(m.Tags), help: help})
	})

	for _, name := range slices.Sorted(maps.Keys(fams)) {
		f := fams[name]
		// Tags that differ only in what sanitising erases give one label
		// set twice; keep the one with the smallest raw name and tags.
		slices.SortFunc(f.series, func(a, b series) int {
			return cmp.Or(compareLabels(a.m.Label, b.m.Label), strings.Compare(a.raw, b.raw))
		})
		f.series = slices.CompactFunc(f.series, func(a, b series) bool { return compareLabels(a.m.Label, b.m.Label) == 0 })
		mf := &dto.MetricFamily{Name: &name, Type: f.typ.Enum()}
		// Names that sanitise alike share a family: the help of the
		// smallest raw name, as for the series.
		help := slices.MinFunc(f.series, func(a, b series) int { return strings.Compare(a.raw, b.raw) }).help
		if help != "" {
			mf.Help = &help
		}
		for _, s := range f.series {
			mf.Metric = append(mf.Metric, s.m)
		}
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("write family %s: %w", name, err)
		}
	}
	return nil
}

// histogram converts a snapshot; the text encoder adds the +Inf bucket.
func histogram(s *telemetry.HistogramSnapshot) *dto.Histogram {
	h := &dto.Histogram{SampleCount: &s.Count, SampleSum: &s.Sum}
	for i := range telemetry.Buckets {
		h.Bucket = append(h.Bucket, &dto.Bucket{CumulativeCount: &s.Cumulative[i], UpperBound: &telemetry.Buckets[i]})
	}
	return h
}

func isInternalTag(tag string) bool {
	k, _, _ := strings.Cut(tag, ":")
	return k == "veneur_internal_metric"
}

func compareLabels(a, b []*dto.LabelPair) int {
	return slices.CompareFunc(a, b, func(x, y *dto.LabelPair) int {
		return cmp.Or(strings.Compare(x.GetName(), y.GetName()), strings.Compare(x.GetValue(), y.GetValue()))
	})
}
