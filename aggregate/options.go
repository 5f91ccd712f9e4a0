package aggregate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Aggregate is one summary of a histogram series flushed as its own point
// (name.min, name.max, …). The values are bit flags so a configuration's set
// of aggregates folds into one mask, checked once per flushed series.
type Aggregate uint8

// The histogram aggregates of SPEC §1, in the order they are flushed.
const (
	AggMin Aggregate = 1 << iota
	AggMax
	AggCount
	AggSum
	AggAvg
	AggMedian
)

// allAggregates lists each aggregate once, in flush order.
var allAggregates = [...]Aggregate{AggMin, AggMax, AggCount, AggSum, AggAvg, AggMedian}

var aggregateNames = [...]string{"min", "max", "count", "sum", "avg", "median"}

// String returns the configuration name of a single aggregate, which is
// also the suffix of its metric name.
func (g Aggregate) String() string {
	if name, ok := g.name(); ok {
		return name
	}
	return "Aggregate(" + strconv.Itoa(int(g)) + ")"
}

// name returns the configuration name of g, if g is a single aggregate.
func (g Aggregate) name() (string, bool) {
	for i, one := range allAggregates {
		if g == one {
			return aggregateNames[i], true
		}
	}
	return "", false
}

// ParseAggregate returns the aggregate named s, as written in the
// aggregates configuration key.
func ParseAggregate(s string) (Aggregate, error) {
	for i, name := range aggregateNames {
		if s == name {
			return allAggregates[i], nil
		}
	}
	return 0, fmt.Errorf("unknown aggregate %q (want one of %s)", s, strings.Join(aggregateNames[:], ", "))
}

// UnmarshalText lets configuration decoders (YAML, environment) read an
// aggregate by name.
func (g *Aggregate) UnmarshalText(text []byte) error {
	parsed, err := ParseAggregate(string(text))
	if err != nil {
		return err
	}
	*g = parsed
	return nil
}

// MarshalText writes the aggregate's configuration name.
func (g Aggregate) MarshalText() ([]byte, error) {
	name, ok := g.name()
	if !ok {
		return nil, fmt.Errorf("marshal aggregate: invalid value %d", uint8(g))
	}
	return []byte(name), nil
}

// PercentileName returns the metric-name suffix of percentile p (SPEC §1):
// N is p×100 when that is a whole number ("50percentile", "99percentile"),
// otherwise the decimal digits of p ("999percentile" for 0.999,
// "995percentile" for 0.995), so no two percentiles share a name.
//
// It works on the shortest decimal form of p rather than on p*100, because
// binary floating point makes 0.57*100 = 56.99999999999999.
func PercentileName(p float64) string {
	digits := strconv.FormatFloat(p, 'f', -1, 64)
	digits = strings.TrimPrefix(digits, "0.")
	if len(digits) <= 2 { // p×100 is whole: 0.5 → "50", 0.05 → "5"
		if len(digits) == 1 {
			digits += "0"
		}
		digits = strings.TrimPrefix(digits, "0")
	}
	return digits + "percentile"
}

// ValidatePercentile checks that p can be estimated and named. New and the
// config package both check percentiles with it.
func ValidatePercentile(p float64) error {
	if math.IsNaN(p) || p <= 0 || p >= 1 {
		return fmt.Errorf("percentile %v: must be strictly between 0 and 1", p)
	}
	return nil
}

// aggregatorStats are the measurements the aggregator keeps, resolved once
// in New so hot paths never look a metric up by name. Nil telemetry
// metrics (from a nil registry) measure nothing.
type aggregatorStats struct {
	seriesFlushed  [kindCount]*telemetry.Counter // indexed by Kind
	samplesDropped *telemetry.Counter
	eventsDropped  *telemetry.Counter
	flushDuration  *telemetry.Gauge
}

// kindCount bounds the Kind values (KindInvalid included).
const kindCount = int(metric.Set) + 1

func newAggregatorStats(reg *telemetry.Registry) aggregatorStats {
	var st aggregatorStats
	for k := metric.Counter; int(k) < kindCount; k++ {
		st.seriesFlushed[k] = reg.Counter("flush.series", "kind:"+k.String())
	}
	st.samplesDropped = reg.Counter("aggregate.samples_dropped")
	st.eventsDropped = reg.Counter("aggregate.events_dropped")
	st.flushDuration = reg.Gauge("aggregate.flush_duration_ms")
	return st
}
