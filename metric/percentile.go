package metric

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// PercentileName returns the metric-name suffix of percentile p
// (docs/output.md, "Percentile names"): N is p×100 when that is a whole
// number ("50percentile", "99percentile"), otherwise the decimal digits
// of p ("999percentile" for 0.999, "995percentile" for 0.995), so no two
// percentiles share a name.
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

// CheckPercentile checks that p can be estimated and named.
func CheckPercentile(p float64) error {
	if math.IsNaN(p) || p <= 0 || p >= 1 {
		return fmt.Errorf("percentile %v: must be strictly between 0 and 1", p)
	}
	return nil
}

// Percentiles are the percentiles a flush emits for each digest, checked
// and named once (NewPercentiles) for the configuration, the local
// aggregator and the global tier alike. The zero value emits none.
type Percentiles struct {
	values   []float64
	suffixes []string // "." + PercentileName(p), parallel to values
}

// PercentileError is NewPercentiles' complaint about one listed percentile.
type PercentileError struct {
	Index int // in the list given to NewPercentiles
	Err   error
}

func (e *PercentileError) Error() string {
	return fmt.Sprintf("percentiles[%d]: %v", e.Index, e.Err)
}

func (e *PercentileError) Unwrap() error { return e.Err }

// NewPercentiles checks ps (each strictly between 0 and 1, no two with one
// name) and names them. Its error joins a *PercentileError per bad entry.
func NewPercentiles(ps []float64) (Percentiles, error) {
	var out Percentiles
	var errs []error
	seen := make(map[string]float64, len(ps))
	for i, p := range ps {
		if err := CheckPercentile(p); err != nil {
			errs = append(errs, &PercentileError{Index: i, Err: err})
			continue
		}
		name := PercentileName(p)
		if q, dup := seen[name]; dup {
			errs = append(errs, &PercentileError{Index: i, Err: fmt.Errorf("%v and %v both name %q", q, p, name)})
			continue
		}
		seen[name] = p
		out.values = append(out.values, p)
		out.suffixes = append(out.suffixes, "."+name)
	}
	if err := errors.Join(errs...); err != nil {
		return Percentiles{}, err
	}
	return out, nil
}

// SharedName returns the name of a percentile that ps and other both
// emit, if any: a series would flush it twice under one name.
func (ps Percentiles) SharedName(other Percentiles) (string, bool) {
	for _, s := range ps.suffixes {
		for _, o := range other.suffixes {
			if s == o {
				return s[1:], true
			}
		}
	}
	return "", false
}

// Quantiler is the merged state a series' percentiles are read from: a
// t-digest (sketch.Digest) or the Agent's sketch (agentsketch.Sketch).
type Quantiler interface {
	Quantile(q float64) float64
}

// Len is the number of percentiles: the points a digest flushes.
func (ps Percentiles) Len() int { return len(ps.values) }

// NamesLen is the length of what AppendNames writes for name.
func (ps Percentiles) NamesLen(name string) int {
	n := 0
	for _, s := range ps.suffixes {
		n += len(name) + len(s)
	}
	return n
}

// AppendNames writes name.<N>percentile for each percentile back to back,
// so that a series' point names take one allocation; AppendPoints cuts
// them apart again.
func (ps Percentiles) AppendNames(b *strings.Builder, name string) {
	for _, s := range ps.suffixes {
		b.WriteString(name)
		b.WriteString(s)
	}
}

// AppendPoints appends one gauge point per percentile of d, each a copy of
// base (named as the series) renamed by cutting the next name off names,
// which starts with AppendNames' output for base.Name. It returns the
// points and the rest of names.
func (ps Percentiles) AppendPoints(dst []Point, st Stamp, base Point, d Quantiler, names string) ([]Point, string) {
	for i, p := range ps.values {
		n := len(base.Name) + len(ps.suffixes[i])
		pt := base
		pt.Name, names = names[:n], names[n:]
		dst = append(dst, st.Gauge(pt, d.Quantile(p)))
	}
	return dst, names
}

// MustPercentiles is NewPercentiles for a list known to be good, such as
// a literal; it panics on a bad one.
func MustPercentiles(ps ...float64) Percentiles {
	out, err := NewPercentiles(ps)
	if err != nil {
		panic(err)
	}
	return out
}
