package datadog

import (
	"context"

	"github.com/DataDog/agent-payload/v5/gogen"

	"github.com/veneur-lite/veneur-lite/internal/httpsink"
	"github.com/veneur-lite/veneur-lite/metric"
)

const protobufContentType = "application/x-protobuf"

// sketchLimits bound a /api/beta/sketches body: the Datadog Agent's
// serializer defaults (serializer_max_payload_size 2.5 MiB compressed,
// serializer_max_uncompressed_payload_size 4 MiB); maxItems is
// flush_max_per_body.
var sketchLimits = limits{maxRaw: 4 << 20, maxCompressed: 5 << 19}

// sketchesField is the key of SketchPayload's field 1 (repeated Sketch),
// wire type 2: a body is these entries back to back, which is a valid
// SketchPayload with the metadata left at its zero value, as the Agent
// sends it.
const sketchesField = 1<<3 | 2

// FlushSketches posts the d series' sketches to /api/beta/sketches as
// agent-payload SketchPayload protobuf bodies of at most FlushMaxPerBody
// sketches, compressed and retried as the series are. What is not
// delivered before ctx ends is dropped and counted
// (veneur.sink.sketches_dropped).
func (s *Sink) FlushSketches(ctx context.Context, sketches []metric.SketchPoint) error {
	if len(sketches) == 0 {
		return nil
	}
	lim := sketchLimits
	lim.maxItems = s.cfg.FlushMaxPerBody
	out := s.core.Flush(ctx, "sketches", len(sketches), lim.maxItems, func(lo, hi int, out *httpsink.Outcome) {
		run := sketches[lo:hi]
		c := chunker{noSeparator: true, lim: lim, get: s.getBody, put: s.putBody,
			emit: s.poster(ctx, s.sketches, "sketches", s.m.sketchesSent, out)}
		var enc sketchEncoder
		s.feed(&c, out, "sketch", "sketches", len(run), func(i int) ([]byte, string, error) {
			return enc.appendSketch(enc.buf[:0], &run[i]), run[i].Name, nil
		})
	})
	s.m.sketchesDropped.Add(uint64(out.Dropped()))
	return out.Err("sketches", len(sketches))
}

// sketchEncoder turns sketch points into SketchPayload entries with the
// Agent's own message types, reusing its buffers from one to the next.
type sketchEncoder struct {
	msg  gogen.SketchPayload_Sketch
	dogs [1]gogen.SketchPayload_Sketch_Dogsketch
	buf  []byte
}

// appendSketch appends p as one SketchPayload field-1 entry: one Sketch
// (metric, host, tags) with one Dogsketch for its interval.
func (e *sketchEncoder) appendSketch(dst []byte, p *metric.SketchPoint) []byte {
	sk := p.Sketch
	d := &e.dogs[0]
	k, n := sk.AppendColumns(d.K[:0], d.N[:0])
	*d = gogen.SketchPayload_Sketch_Dogsketch{
		Ts: p.Timestamp, Cnt: sk.Count(), Min: sk.Min(), Max: sk.Max(), Avg: sk.Avg(), Sum: sk.Sum(),
		K: k, N: n,
	}
	e.msg = gogen.SketchPayload_Sketch{Metric: p.Name, Host: p.Host, Tags: p.Tags, Dogsketches: e.dogs[:]}
	e.buf = appendField(dst, sketchesField, &e.msg)
	return e.buf
}
