package metric

import (
	"time"

	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

// Kind is the DogStatsD metric type of a sample or series.
type Kind uint8

// The metric kinds of a series. DogStatsD's histogram (h) and timer (ms)
// are one kind: they are aggregated alike and flush under the same names,
// so "x:1|h" and "x:1|ms" feed one series. A distribution (d) is a kind of
// its own, as in the Datadog Agent (its time sampler keeps distributions
// in a sketch map apart from every other type): "x:1|d" and "x:1|h" are two
// series, and a d series also keeps the Agent's sketch (docs/input.md).
const (
	KindInvalid Kind = iota
	Counter
	Gauge
	Histogram
	Set
	Distribution
	// KindMax is the largest valid Kind.
	KindMax = Distribution
)

var kindNames = [...]string{"invalid", "counter", "gauge", "histogram", "set", "distribution"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// IsHistogram reports whether series of kind k flush the histogram
// outputs (aggregates, percentiles): h and ms (a t-digest) and d (the
// Agent's sketch).
func (k Kind) IsHistogram() bool { return k == Histogram || k == Distribution }

// Sample is one parsed DogStatsD value. It is the unit the listener hands to
// the aggregator, in batches.
//
// Name, Tags and SetMember are sub-slices of the packet they were parsed
// from: they are valid only until that read buffer is reused, so Push copies
// what it keeps. Tags is the raw tag section of the line (without the
// leading '#'), comma-separated, unsorted, possibly holding a "host:" tag and
// the magic scope tags; the aggregator canonicalizes it.
type Sample struct {
	Name      []byte
	Tags      []byte
	SetMember []byte
	Value     float64
	// Rate is the client's sample rate in (0,1]; the parser replaces an
	// absent or invalid rate with 1.
	Rate float32
	Kind Kind
}

// Event is one DogStatsD event (_e). Priority and AlertType follow its
// fields p: and t:.
type Event struct {
	Title     string
	Text      string
	Timestamp int64 // unix seconds; 0 = time of arrival
	// Hostname is the event's host: its h: field, else its "host:" tag.
	Hostname string
	// HostSet says that the line named a host (a non-empty h: field or a
	// "host:" tag, possibly empty): Hostname is final even when empty, and
	// the instance's default hostname must not replace it. When HostSet
	// is false, Hostname is empty and the default applies.
	HostSet        bool
	AggregationKey string
	Priority       string // "normal" or "low"
	SourceType     string
	AlertType      string // "info", "error", "warning", "success"
	// Tags are as sent, minus empty tags, "host:" tags and "dd.internal.*"
	// tags (origin detection, consumed by the listener).
	Tags []string
}

// CheckStatus is a service check status as DogStatsD numbers it.
type CheckStatus uint8

const (
	CheckOK       CheckStatus = 0
	CheckWarning  CheckStatus = 1
	CheckCritical CheckStatus = 2
	CheckUnknown  CheckStatus = 3
)

// ServiceCheck is one DogStatsD service check (_sc).
type ServiceCheck struct {
	Name      string
	Status    CheckStatus
	Timestamp int64 // unix seconds; 0 = time of arrival
	// Hostname and HostSet are as in Event.
	Hostname string
	HostSet  bool
	// Tags are as in Event: no empty, "host:" or "dd.internal.*" tags.
	Tags    []string
	Message string
}

// Batch is what one read of the listener produces. The listener owns it and
// reuses it after Push returns.
type Batch struct {
	Samples []Sample
	Events  []Event
	Checks  []ServiceCheck
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Samples) // drop references to the old packet
	b.Samples = b.Samples[:0]
	b.Events = b.Events[:0]
	b.Checks = b.Checks[:0]
}

// PointType is how a sink should report a flushed value.
type PointType uint8

const (
	// GaugePoint is an instantaneous value.
	GaugePoint PointType = iota
	// RatePoint is a per-second rate over Point.Interval (Datadog "rate").
	RatePoint
)

func (t PointType) String() string {
	if t == RatePoint {
		return "rate"
	}
	return "gauge"
}

// Point is one flushed value of one series, what sinks receive.
type Point struct {
	Name      string
	Tags      []string // sorted, magic tags removed, extend_tags added
	Host      string   // empty for fleet-wide series flushed by a global
	Type      PointType
	Value     float64
	Timestamp int64         // unix seconds of the end of the interval
	Interval  time.Duration // for RatePoint: the interval the rate is over
	// Distribution marks a point computed from a d series (its
	// aggregates, or its fleet percentiles): a sink that ships the
	// series' sketch instead (the Datadog sink) leaves it out, so that a
	// d sample reaches Datadog once.
	Distribution bool
}

// SketchPoint is one d series' Datadog Agent sketch over one interval,
// flushed by the instance that received its samples (docs/output.md).
type SketchPoint struct {
	Name      string
	Tags      []string // as Point.Tags
	Host      string
	Timestamp int64 // unix seconds of the end of the interval
	Sketch    *agentsketch.Sketch
}
