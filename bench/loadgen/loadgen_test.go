package loadgen

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/listener"
	"github.com/veneur-lite/veneur-lite/metric"
)

// kindOf maps the generator's types to the parser's kinds.
var kindOf = [NumTypes]metric.Kind{
	Count: metric.Counter, Gauge: metric.Gauge, Histogram: metric.Histogram,
	Timing: metric.Histogram, Distribution: metric.Distribution, Set: metric.Set,
}

// Every generated line is valid DogStatsD that our parser accepts, the
// per-type counts of each packet are right, packets are packed close to
// PacketSize, and the same seed builds the same bytes.
func TestBuildPackets(t *testing.T) {
	cfg := Config{Seed: 7}
	pool, err := BuildPackets(cfg, 64)
	if err != nil {
		t.Fatal(err)
	}
	p := listener.NewParser(4096, nil)
	var batch metric.Batch
	names := map[string]bool{}
	var lines, bytesTotal int
	for i, pk := range pool {
		if len(pk.Data) > 1432 || len(pk.Data) < 1432-150 {
			t.Errorf("packet %d: %d bytes, want close to and at most 1432", i, len(pk.Data))
		}
		batch.Reset()
		if rej := p.Parse(pk.Data, &batch); rej != 0 {
			t.Fatalf("packet %d: parser rejected %d lines:\n%s", i, rej, pk.Data)
		}
		if len(batch.Samples) != int(pk.Lines) || bytes.Count(pk.Data, []byte("\n")) != int(pk.Lines) {
			t.Fatalf("packet %d: %d samples, %d newlines, Lines = %d", i, len(batch.Samples), bytes.Count(pk.Data, []byte("\n")), pk.Lines)
		}
		// h and ms both parse as histograms: compare per kind.
		var byKind, want [metric.KindMax + 1]int32
		for ty, n := range pk.ByType {
			want[kindOf[ty]] += n
		}
		for _, s := range batch.Samples {
			byKind[s.Kind]++
			if s.Kind == metric.Counter && s.Value != 1 {
				t.Errorf("counter %s = %v, want 1 (loss accounting relies on it)", s.Name, s.Value)
			}
			if n := bytes.Count(s.Tags, []byte(",")) + 1; n != 3 {
				t.Errorf("%s has %d tags, want 3: %s", s.Name, n, s.Tags)
			}
			names[string(s.Name)] = true
		}
		if byKind != want {
			t.Errorf("packet %d: parsed %v per kind, packet says %v", i, byKind, want)
		}
		lines += int(pk.Lines)
		bytesTotal += len(pk.Data)
	}
	if per := float64(lines) / float64(len(pool)); per < 15 || per > 30 {
		t.Errorf("%.1f lines per packet, want about 20 (datadog-go's packing)", per)
	}
	if len(names) > 100 || len(names) < 80 {
		t.Errorf("%d distinct names, want up to the 100 configured (most of them drawn)", len(names))
	}

	again, err := BuildPackets(cfg, 64)
	if err != nil {
		t.Fatal(err)
	}
	other, err := BuildPackets(Config{Seed: 8}, 64)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pool {
		if !bytes.Equal(pool[i].Data, again[i].Data) {
			t.Fatalf("packet %d differs between two builds with the same seed", i)
		}
	}
	if bytes.Equal(pool[0].Data, other[0].Data) {
		t.Error("seeds 7 and 8 built the same first packet")
	}
}

// The knobs reach the traffic: the mix's shares, name and tag cardinality.
func TestBuildPacketsKnobs(t *testing.T) {
	cfg := Config{Names: 4, TagValues: 2, TagsPerMetric: 2, Mix: Mix{Count: 3, Set: 1}, PacketSize: 512}
	pool, err := BuildPackets(cfg, 200)
	if err != nil {
		t.Fatal(err)
	}
	var byType [NumTypes]int64
	lines := map[string]bool{}
	for _, pk := range pool {
		if len(pk.Data) > 512 {
			t.Fatalf("%d-byte packet, PacketSize is 512", len(pk.Data))
		}
		for ty, n := range pk.ByType {
			byType[ty] += int64(n)
		}
		for l := range strings.Lines(string(pk.Data)) {
			name, rest, _ := strings.Cut(l, ":")
			_, tags, _ := strings.Cut(rest, "|#")
			lines[name+"|"+strings.TrimSpace(tags)] = true
		}
	}
	total := byType[Count] + byType[Set]
	if total == 0 || byType[Gauge]+byType[Histogram]+byType[Timing]+byType[Distribution] != 0 {
		t.Fatalf("per type %v, want counters and sets only", byType)
	}
	if share := float64(byType[Count]) / float64(total); share < 0.7 || share > 0.8 {
		t.Errorf("counters are %.2f of lines, want about 0.75", share)
	}
	// 3 counter names and 1 set name (shared 3:1), 2×2 tag combinations.
	if len(lines) != 4*2*2 {
		t.Errorf("%d distinct name+tags, want 16: %v", len(lines), lines)
	}
	bare, err := BuildPackets(Config{TagsPerMetric: NoTags}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bare[0].Data, []byte("|#")) || bare[0].Lines < 30 {
		t.Errorf("NoTags: %d lines, want more than 30 lines without tags:\n%s", bare[0].Lines, bare[0].Data)
	}
	if _, err := BuildPackets(Config{TagsPerMetric: 32, PacketSize: 128}, 1); err == nil {
		t.Error("a line longer than the packet size was accepted")
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Addr: "127.0.0.1:8125"}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Addr = "10.0.0.1:8125" }, "only sends to 127.0.0.1"},
		{func(c *Config) { c.Addr = "localhost:8125" }, "only sends to 127.0.0.1"},
		{func(c *Config) { c.Addr = "[::1]:8125" }, "only sends to 127.0.0.1"},
		{func(c *Config) { c.Addr = "127.0.0.2:8125" }, "only sends to 127.0.0.1"},
		{func(c *Config) { c.Addr = "127.0.0.1:0" }, "bad port"},
		{func(c *Config) { c.Duration = MaxDuration + time.Second }, "duration"},
		{func(c *Config) { c.Duration = -time.Second }, "duration"},
		{func(c *Config) { c.MaxMetrics = MaxMetricsPerRun + 1 }, "max metrics"},
		{func(c *Config) { c.Rate = -1 }, "rate"},
		{func(c *Config) { c.Mode = "tcp" }, "mode"},
		{func(c *Config) { c.Mix = Mix{} }, "every weight is 0"},
		{func(c *Config) { c.Names = 3 }, "names 3"}, // DefaultMix uses 6 types
		{func(c *Config) { c.PacketSize = 70000 }, "packet size"},
		{func(c *Config) { c.TagsPerMetric = -2 }, "tags per metric"},
		{func(c *Config) { c.Sockets = -1 }, "sockets"},
	} {
		cfg := ok
		c.mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", cfg, err, c.want)
		}
	}
	if _, err := Run(Config{Addr: "192.0.2.1:8125"}); err == nil {
		t.Error("Run sent to a non-loopback address")
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("c:60, ms:15,s:2")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Mix{Count: 60, Timing: 15, Set: 2}); m != want {
		t.Errorf("got %v, want %v", m, want)
	}
	if back, err := ParseMix(DefaultMix.String()); err != nil || back != DefaultMix {
		t.Errorf("DefaultMix round trip: %v %v", back, err)
	}
	for _, bad := range []string{"", "c", "x:1", "c:-1", "c:0,g:0", "c:1.5"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestShareNames(t *testing.T) {
	for _, c := range []struct {
		n    int
		mix  Mix
		want [NumTypes]int
	}{
		{100, DefaultMix, [NumTypes]int{60, 15, 5, 15, 3, 2}},
		{6, DefaultMix, [NumTypes]int{1, 1, 1, 1, 1, 1}},
		{10, Mix{Count: 1, Gauge: 1, Set: 1}, [NumTypes]int{4, 3, 0, 0, 0, 3}},
	} {
		got := shareNames(c.n, c.mix)
		if got != c.want {
			t.Errorf("shareNames(%d, %v) = %v, want %v", c.n, c.mix, got, c.want)
		}
	}
}

// listenUDP returns a loopback socket and a function that reads from it
// until it has been quiet for a moment, returning the datagrams.
func listenUDP(t *testing.T) (addr string, drain func() [][]byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	return pc.LocalAddr().String(), func() [][]byte {
		var got [][]byte
		buf := make([]byte, 65536)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, _, err := pc.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, bytes.Clone(buf[:n]))
		}
	}
}

// Raw mode stops at MaxMetrics, keeps to the rate, and what it reports
// sending is what arrives.
func TestRawSenderBounds(t *testing.T) {
	addr, drain := listenUDP(t)
	res, err := Run(Config{Addr: addr, Rate: 100_000, Duration: 5 * time.Second, MaxMetrics: 5000})
	if err != nil {
		t.Fatal(err)
	}
	got := drain()
	lines := 0
	for _, d := range got {
		lines += bytes.Count(d, []byte("\n"))
	}
	if res.Metrics > 5000 || res.Metrics < 5000-30 { // whole packets of ~20 lines
		t.Errorf("sent %d metrics, want just under MaxMetrics 5000", res.Metrics)
	}
	if int64(len(got)) != res.Packets || int64(lines) != res.Metrics {
		t.Errorf("received %d datagrams / %d lines; sender reports %d / %d", len(got), lines, res.Packets, res.Metrics)
	}
	// 5000 metrics at 100k/s take 50 ms; the pacer must not have sent them
	// all at once (a generous bound: the machine may be busy).
	if res.Elapsed < 40*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("took %v, want about 50ms at 100k metrics/s", res.Elapsed)
	}

	// The duration bounds a run that the count would not.
	res, err = Run(Config{Addr: addr, Rate: 20_000, Duration: 100 * time.Millisecond, MaxMetrics: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	drain()
	if res.Elapsed > 100*time.Millisecond || res.Metrics > 2000+30 {
		t.Errorf("duration 100ms at 20k/s: sent %d in %v", res.Metrics, res.Elapsed)
	}
}

// Client mode goes through the real datadog-go client: every call arrives
// as one line that our parser accepts.
func TestClientSender(t *testing.T) {
	addr, drain := listenUDP(t)
	res, err := Run(Config{Addr: addr, Mode: ModeClient, Sockets: 2, Rate: 50_000, MaxMetrics: 2000, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics != 2000 || res.SendErrors != 0 {
		t.Fatalf("sent %d (errors %d), want 2000", res.Metrics, res.SendErrors)
	}
	p := listener.NewParser(4096, nil)
	var batch metric.Batch
	byKind := map[metric.Kind]int64{}
	for _, d := range drain() {
		if len(d) > 1432 {
			t.Errorf("%d-byte datagram from datadog-go", len(d))
		}
		batch.Reset()
		if rej := p.Parse(d, &batch); rej != 0 {
			t.Fatalf("%d lines rejected in %q", rej, d)
		}
		for _, s := range batch.Samples {
			if strings.HasPrefix(string(s.Name), "loadgen.") {
				byKind[s.Kind]++
			}
		}
	}
	sent := map[metric.Kind]int64{} // h and ms both parse as histograms
	for ty, n := range res.ByType {
		sent[kindOf[ty]] += n
	}
	for k, n := range sent {
		if byKind[k] != n {
			t.Errorf("%v: received %d lines, sent %d", k, byKind[k], n)
		}
	}
}
