package metric

import (
	"fmt"

	"github.com/axiomhq/hyperloglog"

	"github.com/veneur-lite/veneur-lite/sketch"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

// Series is the mergeable state of one series over one interval: what a
// local forwards to the global tier, and what a global merges from every
// host. Digests and sketches are mergeable, counter sums add up and of
// gauges the later value wins, so two states of one Key always merge into
// one.
type Series struct {
	// Key is the series identity across the fleet (SeriesKey): kind, name
	// and tags, without host or scope, so every host's state for one
	// series routes to, and merges on, one global instance.
	Key  string
	Name string
	Tags []string // sorted, deduplicated; no host, magic or extend tags
	Kind Kind
	// Value is a Counter's weighted sum or a Gauge's last value.
	Value  float64
	Digest *sketch.Digest      // Histogram
	Dist   *agentsketch.Sketch // Distribution: the Agent's sketch
	Set    *hyperloglog.Sketch // Set, at sketch.SetPrecision
}

// Merge folds src, a later state of the same series, into s: digests and
// sets merge, counters add up, and src's gauge value wins. src's digest
// and sketch are consumed: the digest is left shuffled (which saves the
// copy a non-destructive merge makes), so the caller must own src and not
// use it afterwards. A nil sketch on either side is adopted or skipped.
func (s *Series) Merge(src *Series) error {
	if s.Kind != src.Kind {
		return fmt.Errorf("merge %s: kind %v into %v", src.Key, src.Kind, s.Kind)
	}
	switch {
	case s.Kind == Counter:
		s.Value += src.Value
	case s.Kind == Gauge:
		s.Value = src.Value
	case s.Kind == Distribution:
		switch {
		case s.Dist == nil:
			s.Dist = src.Dist
		case src.Dist != nil:
			s.Dist.Merge(src.Dist)
		}
	case s.Kind.IsHistogram():
		switch {
		case s.Digest == nil:
			s.Digest = src.Digest
		case src.Digest != nil:
			s.Digest.Merge(src.Digest)
		}
	case s.Kind == Set:
		switch {
		case s.Set == nil:
			s.Set = src.Set
		case src.Set != nil:
			if err := s.Set.Merge(src.Set); err != nil {
				return fmt.Errorf("merge set %s: %w", s.Key, err)
			}
		}
	}
	return nil
}
