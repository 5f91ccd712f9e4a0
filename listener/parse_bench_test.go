package listener

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/veneur-lite/veneur-lite/metric"
)

// benchPacket builds a datagram the way datadog-go v5 fills one: lines of
// every type with 3-4 tags and a container id, some sampled, one
// multi-value, packed up to the default 1432-byte UDP payload.
func benchPacket(tb testing.TB) (packet []byte, lines int) {
	shapes := []string{
		"myapp.http.requests:1|c|#env:prod,service:web,route:/api/v1/users/%d|c:ci-3f2a9c1d8e7b4a60",
		"myapp.http.latency:%d.25|ms|@0.5|#env:prod,service:web,method:get|c:ci-3f2a9c1d8e7b4a60",
		"myapp.db.query.duration:0.00%d|d|#env:prod,db:users,op:select,shard:3|c:ci-3f2a9c1d8e7b4a60",
		"myapp.queue.depth:%d|g|#env:prod,queue:emails,region:us-east-1|c:ci-3f2a9c1d8e7b4a60",
		"myapp.active.users:user-%d|s|#env:prod,plan:pro|c:ci-3f2a9c1d8e7b4a60",
		"myapp.payload.bytes:512:%d:2048|h|#env:prod,endpoint:upload|c:ci-3f2a9c1d8e7b4a60",
		"myapp.cache.hits:%d|c|@0.1|#env:prod,cache:redis,region:us-east-1|c:ci-3f2a9c1d8e7b4a60",
	}
	var buf bytes.Buffer
	for i := 0; ; i++ {
		line := fmt.Sprintf(shapes[i%len(shapes)], 100+i)
		if buf.Len()+len(line)+1 > 1432 {
			break
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
		lines++
	}
	packet = buf.Bytes()
	if lines < 15 {
		tb.Fatalf("bench packet has only %d lines", lines)
	}
	return packet, lines
}

// BenchmarkParse measures the parser alone over one realistic datagram.
// ns/line is the figure to hold against the ~300 ns per metric budget.
//
// Reproduce and compare with benchstat:
//
//	go test ./listener -run '^$' -bench Parse -benchmem -count 6
func BenchmarkParse(b *testing.B) {
	packet, lines := benchPacket(b)
	p := NewParser(4096, nil)
	batch := metric.Batch{Samples: make([]metric.Sample, 0, 2*lines)}
	b.ReportAllocs()
	b.SetBytes(int64(len(packet)))
	for b.Loop() {
		batch.Reset()
		if n := p.Parse(packet, &batch); n != 0 {
			b.Fatalf("rejected %d lines", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(lines), "ns/line")
}

// BenchmarkParseLine is one typical datadog-go line through parseLine.
func BenchmarkParseLine(b *testing.B) {
	line := []byte("myapp.http.latency:12.25|ms|@0.5|#env:prod,service:web,method:get|c:ci-3f2a9c1d8e7b4a60")
	p := NewParser(4096, nil)
	batch := metric.Batch{Samples: make([]metric.Sample, 0, 4)}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		batch.Reset()
		if err := p.parseLine(line, &batch); err != nil {
			b.Fatal(err)
		}
	}
}
