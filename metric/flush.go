package metric

import (
	"time"

	"github.com/axiomhq/hyperloglog"
)

// Stamp is what every point of one flush shares, local or global: the
// timestamp, and the interval over which counters become per-second
// rates (docs/output.md, "Metric types"). The points of a series' merged
// state are made here, so that both tiers emit a kind alike.
type Stamp struct {
	Timestamp int64         // unix seconds
	Interval  time.Duration // a non-positive one is taken as one second
}

// Rate returns base as a rate: sum per second of the interval.
func (st Stamp) Rate(base Point, sum float64) Point {
	seconds := st.Interval.Seconds()
	if seconds <= 0 {
		seconds = 1
	}
	base.Type, base.Value, base.Interval, base.Timestamp = RatePoint, sum/seconds, st.Interval, st.Timestamp
	return base
}

// Gauge returns base as a gauge of v.
func (st Stamp) Gauge(base Point, v float64) Point {
	base.Type, base.Value, base.Timestamp = GaugePoint, v, st.Timestamp
	return base
}

// ScalarPoint returns the one point of a counter (its sum as a rate), a
// gauge (its value) or a set (its estimated size, a gauge). Histograms
// flush several points: Percentiles.AppendPoints and the local aggregates.
func (st Stamp) ScalarPoint(base Point, kind Kind, value float64, set *hyperloglog.Sketch) Point {
	switch kind {
	case Counter:
		return st.Rate(base, value)
	case Set:
		return st.Gauge(base, float64(set.Estimate()))
	default: // Gauge
		return st.Gauge(base, value)
	}
}
