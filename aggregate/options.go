package aggregate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Aggregate is one summary of a histogram series flushed as its own point
// (name.min, name.max, …). The values are bit flags so a configuration's set
// of aggregates folds into one mask, checked once per flushed series.
type Aggregate uint8

// The histogram aggregates of the aggregates key (docs/configuration.md),
// in the order they are flushed.
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

// aggregatorStats are the measurements the aggregator keeps, resolved once
// in New so hot paths never look a metric up by name. Nil telemetry
// metrics (from a nil registry) measure nothing.
type aggregatorStats struct {
	seriesFlushed  [kindCount]*telemetry.Counter // indexed by Kind
	samplesDropped *telemetry.Counter
	eventsDropped  *telemetry.Counter
}

// kindCount bounds the Kind values (KindInvalid included).
const kindCount = int(metric.KindMax) + 1

func newAggregatorStats(reg *telemetry.Registry) aggregatorStats {
	var st aggregatorStats
	for k := metric.Counter; int(k) < kindCount; k++ {
		st.seriesFlushed[k] = reg.Counter("flush.series", "kind:"+k.String())
	}
	st.samplesDropped = reg.Counter("aggregate.samples_dropped")
	st.eventsDropped = reg.Counter("aggregate.events_dropped")
	return st
}
