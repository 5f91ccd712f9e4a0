// Package loadgen generates DogStatsD load for the benchmarks: with the
// real datadog-go v5 client, or in raw mode as prebuilt, packed datagrams
// written straight to UDP sockets, the cheapest sender possible, so that
// on a small machine the receiver, not the sender, runs out of CPU.
// Everything comes from a seeded RNG: two runs of one Config send the same
// bytes. It sends only to loopback and always stops within a bounded
// duration and count (MaxDuration, MaxMetricsPerRun).
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/veneur-lite/veneur-lite/internal/cputime"
)

// MetricType is a DogStatsD metric type the generator sends.
type MetricType uint8

// The metric types, in the order Mix lists their weights.
const (
	Count MetricType = iota
	Gauge
	Histogram
	Timing
	Distribution
	Set

	// NumTypes sizes arrays indexed by MetricType.
	NumTypes
)

// typeCodes are the DogStatsD type fields; typeNames name the metrics
// ("loadgen.counter.17") so that a series' type is readable in any sink.
var (
	typeCodes = [NumTypes]string{"c", "g", "h", "ms", "d", "s"}
	typeNames = [NumTypes]string{"counter", "gauge", "histogram", "timer", "distribution", "set"}
)

// String returns the DogStatsD type code: c, g, h, ms, d or s.
func (t MetricType) String() string {
	if t < NumTypes {
		return typeCodes[t]
	}
	return "MetricType(" + strconv.Itoa(int(t)) + ")"
}

// Countable reports whether every line of type t can be found again in
// the flushed aggregates: a counter line (always value 1, rate 1) adds 1 to
// its series' sum, a histogram-kind line adds 1 to name.count. Gauges and
// sets keep one value per series, so their loss can't be measured.
func (t MetricType) Countable() bool {
	return t == Count || t == Histogram || t == Timing || t == Distribution
}

// Mix is the relative weight of each metric type, indexed by MetricType.
type Mix [NumTypes]int

// DefaultMix resembles an instrumented web service: mostly counters, then
// timers and gauges, a few histograms, distributions and sets.
var DefaultMix = Mix{Count: 60, Gauge: 15, Histogram: 5, Timing: 15, Distribution: 3, Set: 2}

// CountableMix is DefaultMix without gauges and sets, for measuring loss
// exactly (see MetricType.Countable).
var CountableMix = Mix{Count: 60, Histogram: 5, Timing: 15, Distribution: 3}

// ParseMix reads a mix written as "c:60,g:15,ms:15,h:5,d:3,s:2"; types left
// out get weight 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		code, weight, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: %q is not type:weight", s, part)
		}
		t := MetricType(0)
		for t < NumTypes && typeCodes[t] != code {
			t++
		}
		if t == NumTypes {
			return Mix{}, fmt.Errorf("mix %q: unknown type %q (want c, g, h, ms, d or s)", s, code)
		}
		w, err := strconv.Atoi(weight)
		if err != nil || w < 0 {
			return Mix{}, fmt.Errorf("mix %q: weight of %s must be a non-negative integer", s, code)
		}
		m[t] = w
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("mix %q: every weight is 0", s)
	}
	return m, nil
}

// String writes the mix as ParseMix reads it.
func (m Mix) String() string {
	var parts []string
	for t, w := range m {
		if w > 0 {
			parts = append(parts, typeCodes[t]+":"+strconv.Itoa(w))
		}
	}
	return strings.Join(parts, ",")
}

func (m Mix) total() int {
	n := 0
	for _, w := range m {
		n += w
	}
	return n
}

// Mode is how the generator sends.
type Mode string

const (
	// ModeRaw writes prebuilt datagrams, each packed with as many lines as
	// fit in PacketSize, one write(2) per datagram on connected UDP
	// sockets. Building happens before the clock starts, so the sender
	// costs one system call per ~20 metrics.
	ModeRaw Mode = "raw"
	// ModeClient calls the real datadog-go v5 client once per metric, as
	// an application would; the client packs the lines into datagrams of
	// PacketSize bytes.
	ModeClient Mode = "datadog-go"
)

// Bounds that keep the generator a benchmark tool: whatever it is asked,
// a run ends within MaxDuration and sends at most MaxMetricsPerRun.
const (
	MaxDuration      = 10 * time.Minute
	MaxMetricsPerRun = 10_000_000_000
	maxRate          = 50e6 // metrics/s; well beyond what loopback carries
	maxNames         = 10_000_000
	maxTagValues     = 1_000_000
	maxTagsPerMetric = 32
	maxSockets       = 1024
	setMembers       = 10_000 // distinct set members the generator draws from
)

// RawPoolPackets is how many distinct datagrams raw mode prebuilds and then
// cycles through: ~3 MB at 1432 bytes, enough lines (~40,000) that the
// receiver sees the configured cardinality rather than a few hot series.
const RawPoolPackets = 2048

// maxPoolPackets bounds BuildPackets to about 100 MB of datagrams.
const maxPoolPackets = 1 << 16

// NoTags is the Config.TagsPerMetric of lines without tags (0 takes the
// default).
const NoTags = -1

// Config is one load generator run. The zero value of every field but Addr
// takes the default given in its comment (see SetDefaults).
type Config struct {
	// Addr is the DogStatsD UDP address, host:port. The host must be
	// 127.0.0.1: the generator refuses to send anywhere else.
	Addr string
	// Mode is ModeRaw (default) or ModeClient.
	Mode Mode
	// Seed seeds the RNG that picks every name, tag and value.
	Seed uint64
	// Names is the number of distinct metric names (default 100), shared
	// out among the types of Mix in proportion to their weights (each type
	// in use gets at least one).
	Names int
	// TagValues is the number of distinct values each tag key takes
	// (default 10). A line's tags are drawn independently, so a name has
	// up to TagValues^TagsPerMetric series.
	TagValues int
	// TagsPerMetric is the number of tags on every line (default 3), each
	// with a different key; NoTags for none.
	TagsPerMetric int
	// Mix weighs the metric types (default DefaultMix).
	Mix Mix
	// PacketSize is the most bytes per datagram (default 1432, what
	// datadog-go uses over UDP).
	PacketSize int
	// Rate is the target in metrics per second; 0 sends as fast as
	// possible (still bounded by Duration and MaxMetrics).
	Rate float64
	// Duration bounds the run (default 1s, at most MaxDuration).
	Duration time.Duration
	// MaxMetrics bounds the metrics sent (default: Rate×Duration, or
	// MaxMetricsPerRun when Rate is 0).
	MaxMetrics int64
	// Sockets is how many UDP sockets (source ports) the sends rotate
	// over (default 32), like that many application processes. With one
	// socket, SO_REUSEPORT hashes every datagram to the same reader and a
	// multi-reader server can use only one of them. In ModeClient each
	// socket is a datadog-go client of its own.
	Sockets int
	// ClientAggregation keeps datadog-go's client-side aggregation on in
	// ModeClient. Off by default so that every call becomes a line.
	ClientAggregation bool
}

// SetDefaults fills the zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeRaw
	}
	if c.Names == 0 {
		c.Names = 100
	}
	if c.TagValues == 0 {
		c.TagValues = 10
	}
	if c.TagsPerMetric == 0 {
		c.TagsPerMetric = 3
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix
	}
	if c.PacketSize == 0 {
		c.PacketSize = 1432
	}
	if c.Sockets == 0 {
		c.Sockets = 32
	}
	if c.Duration == 0 {
		c.Duration = time.Second
	}
	if c.MaxMetrics == 0 {
		c.MaxMetrics = MaxMetricsPerRun
		if c.Rate > 0 {
			c.MaxMetrics = min(int64(math.Ceil(c.Rate*c.Duration.Seconds())), MaxMetricsPerRun)
		}
	}
}

// Validate reports every field out of bounds.
func (c Config) Validate() error {
	return errors.Join(checkLoopback(c.Addr), c.validateTraffic())
}

// validateTraffic checks everything but the address: what BuildPackets
// needs.
func (c Config) validateTraffic() error {
	var errs []error
	if c.Mode != ModeRaw && c.Mode != ModeClient {
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", c.Mode, ModeRaw, ModeClient))
	}
	used := 0
	for t, w := range c.Mix {
		if w < 0 {
			errs = append(errs, fmt.Errorf("mix: negative weight for %s", MetricType(t)))
		}
		if w > 0 {
			used++
		}
	}
	if used == 0 {
		errs = append(errs, errors.New("mix: every weight is 0"))
	}
	if c.Names < max(used, 1) || c.Names > maxNames {
		errs = append(errs, fmt.Errorf("names %d: want %d to %d (at least one per type in the mix)", c.Names, max(used, 1), maxNames))
	}
	if c.TagValues < 1 || c.TagValues > maxTagValues {
		errs = append(errs, fmt.Errorf("tag values %d: want 1 to %d", c.TagValues, maxTagValues))
	}
	if c.TagsPerMetric < NoTags || c.TagsPerMetric > maxTagsPerMetric {
		errs = append(errs, fmt.Errorf("tags per metric %d: want %d (none) to %d", c.TagsPerMetric, NoTags, maxTagsPerMetric))
	}
	if c.PacketSize < 128 || c.PacketSize > 65507 {
		errs = append(errs, fmt.Errorf("packet size %d: want 128 to 65507 bytes", c.PacketSize))
	}
	if c.Sockets < 1 || c.Sockets > maxSockets {
		errs = append(errs, fmt.Errorf("sockets %d: want 1 to %d", c.Sockets, maxSockets))
	}
	if !(c.Rate >= 0 && c.Rate <= maxRate) { // NaN fails too
		errs = append(errs, fmt.Errorf("rate %v: want 0 (unpaced) to %v metrics/s", c.Rate, maxRate))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %v: want more than 0 and at most %v", c.Duration, MaxDuration))
	}
	if c.MaxMetrics < 1 || c.MaxMetrics > MaxMetricsPerRun {
		errs = append(errs, fmt.Errorf("max metrics %d: want 1 to %d", c.MaxMetrics, int64(MaxMetricsPerRun)))
	}
	return errors.Join(errs...)
}

// checkLoopback accepts only 127.0.0.1:<port>: a load generator pointed at
// a real host by mistake could take its metrics pipeline down.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return fmt.Errorf("address %q: the load generator only sends to 127.0.0.1", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("address %q: bad port", addr)
	}
	return nil
}

// Result is what a run sent.
type Result struct {
	// Metrics is the metrics (lines) handed to the socket or the client
	// without error; ByType splits it by type.
	Metrics int64
	ByType  [NumTypes]int64
	// Packets and Bytes are the datagrams written (raw mode; for the
	// client, what its telemetry reports as sent).
	Packets, Bytes int64
	// SendErrors counts failed writes (raw) or client calls that returned
	// an error; their metrics are not in Metrics.
	SendErrors int64
	// ClientDroppedPayloads are datagrams datadog-go dropped before the
	// wire because its sender queue was full: loss on the sender's side.
	ClientDroppedPayloads uint64
	// Elapsed is the time from the first send to the last.
	Elapsed time.Duration
	// SenderCPU is the CPU time (user + system) of the OS thread that sent
	// in raw mode, kernel loopback delivery included; 0 where unmeasured.
	SenderCPU time.Duration
}

// Countable is how many lines of countable types (MetricType.Countable)
// were sent: what the receiver's counter sums and histogram counts must
// add up to when nothing is lost.
func (r Result) Countable() int64 {
	var n int64
	for t, c := range r.ByType {
		if MetricType(t).Countable() {
			n += c
		}
	}
	return n
}

// Rate is the achieved send rate in metrics per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Metrics) / r.Elapsed.Seconds()
}

// Run validates cfg (after SetDefaults) and sends until cfg.Duration has
// passed or cfg.MaxMetrics were sent, whichever comes first.
func Run(cfg Config) (Result, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Mode == ModeClient {
		return runClient(cfg)
	}
	pool, err := BuildPackets(cfg, RawPoolPackets)
	if err != nil {
		return Result{}, err
	}
	return SendPackets(cfg, pool)
}

// Packet is one prebuilt datagram and the lines of each type it holds.
type Packet struct {
	Data   []byte
	ByType [NumTypes]int32
	Lines  int32
}

// BuildPackets builds n datagrams of cfg's traffic, each packed with as
// many whole lines as fit in cfg.PacketSize. The same cfg (Seed included)
// builds the same bytes. cfg.Addr is not used.
func BuildPackets(cfg Config, n int) ([]Packet, error) {
	cfg.SetDefaults()
	if n < 1 || n > maxPoolPackets {
		return nil, fmt.Errorf("build %d packets: want 1 to %d", n, maxPoolPackets)
	}
	g, err := newGenerator(cfg)
	if err != nil {
		return nil, err
	}
	packets := make([]Packet, n)
	var line []byte
	var lineType MetricType
	have := false // line holds a generated line not yet placed
	for i := range packets {
		p := &packets[i]
		p.Data = make([]byte, 0, cfg.PacketSize)
		for {
			if !have {
				m := g.next()
				line, lineType, have = appendLine(line[:0], &m), m.typ, true
			}
			if len(line) > cfg.PacketSize {
				return nil, fmt.Errorf("packet size %d: smaller than a %d-byte line", cfg.PacketSize, len(line))
			}
			if len(p.Data)+len(line) > cfg.PacketSize {
				break // the line opens the next packet
			}
			p.Data = append(p.Data, line...)
			p.ByType[lineType]++
			p.Lines++
			have = false
		}
	}
	return packets, nil
}

// SendPackets writes pool's datagrams in turn to cfg.Addr, rotating over
// cfg.Sockets connected UDP sockets, at cfg.Rate, until cfg.Duration or
// cfg.MaxMetrics. It holds its goroutine on one OS thread so that
// Result.SenderCPU can be read from that thread's rusage.
func SendPackets(cfg Config, pool []Packet) (Result, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if len(pool) == 0 {
		return Result{}, errors.New("send: no packets")
	}
	conns := make([]*net.UDPConn, cfg.Sockets)
	for i := range conns {
		c, err := net.Dial("udp", cfg.Addr)
		if err != nil {
			return Result{}, fmt.Errorf("send: %w", err)
		}
		defer c.Close()
		conns[i] = c.(*net.UDPConn)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := cputime.Thread()

	var r Result
	pc := newPacer(cfg.Rate, cfg.Duration)
	for i := 0; ; i++ {
		p := &pool[i%len(pool)]
		if r.Metrics+int64(p.Lines) > cfg.MaxMetrics || !pc.wait(r.Metrics) {
			break
		}
		if _, err := conns[i%len(conns)].Write(p.Data); err != nil {
			// On loopback a write fails with ECONNREFUSED when nothing
			// listens (the ICMP of an earlier datagram) or ENOBUFS under
			// memory pressure: count it and go on, as a client would.
			r.SendErrors++
			continue
		}
		r.Packets++
		r.Bytes += int64(len(p.Data))
		r.Metrics += int64(p.Lines)
		for t, n := range p.ByType {
			r.ByType[t] += int64(n)
		}
	}
	r.Elapsed = pc.elapsed()
	if cpu := cputime.Thread(); cpu > 0 {
		r.SenderCPU = cpu - cpu0
	}
	return r, nil
}

// runClient sends through the real datadog-go client.
func runClient(cfg Config) (Result, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Result{}, err
	}
	opts := []statsd.Option{statsd.WithMaxBytesPerPayload(cfg.PacketSize)}
	if !cfg.ClientAggregation {
		opts = append(opts, statsd.WithoutClientSideAggregation())
	}
	clients := make([]*statsd.Client, cfg.Sockets)
	for i := range clients {
		c, err := statsd.New(cfg.Addr, opts...)
		if err != nil {
			for _, c := range clients[:i] {
				_ = c.Close()
			}
			return Result{}, fmt.Errorf("datadog-go client: %w", err)
		}
		clients[i] = c
	}
	var r Result
	pc := newPacer(cfg.Rate, cfg.Duration)
	// attempts counts every call, failed ones too, so that a client that
	// keeps failing still moves the pacer and its duration check on.
	for attempts := int64(0); r.Metrics < cfg.MaxMetrics; attempts++ {
		// Reading the clock once per 64 calls keeps the pacer out of the
		// profile; at 1M/s that is a check every 64 µs.
		if attempts%64 == 0 && !pc.wait(r.Metrics) {
			break
		}
		// A run of 64 calls per client, so that each fills its buffers
		// as one busy application would.
		c := clients[(attempts/64)%int64(len(clients))]
		m := g.next()
		// The client may keep the tags (client-side aggregation), so it
		// gets its own slice.
		tags := append([]string(nil), m.tags...)
		var err error
		switch m.typ {
		case Count:
			err = c.Count(m.name, int64(m.value), tags, 1)
		case Gauge:
			err = c.Gauge(m.name, m.value, tags, 1)
		case Histogram:
			err = c.Histogram(m.name, m.value, tags, 1)
		case Timing:
			err = c.TimeInMilliseconds(m.name, m.value, tags, 1)
		case Distribution:
			err = c.Distribution(m.name, m.value, tags, 1)
		case Set:
			err = c.Set(m.name, m.member, tags, 1)
		}
		if err != nil {
			r.SendErrors++
			continue
		}
		r.Metrics++
		r.ByType[m.typ]++
	}
	r.Elapsed = pc.elapsed()
	var errs []error
	for _, c := range clients {
		// Close flushes what the client still buffers; its telemetry is
		// read before, while the client is still open.
		errs = append(errs, c.Flush())
		tel := c.GetTelemetry()
		r.Packets += int64(tel.TotalPayloadsSent)
		r.Bytes += int64(tel.TotalBytesSent)
		r.ClientDroppedPayloads += tel.TotalPayloadsDropped
		errs = append(errs, c.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("datadog-go: %w", err)
	}
	return r, nil
}

// pacer spreads sends so that, at any moment, the metrics sent so far match
// rate × elapsed. It never tries to make up for a stall by slowing later:
// falling behind (the sender was descheduled) means sending at once, which
// is what an application under load does too.
type pacer struct {
	start    time.Time
	rate     float64
	duration time.Duration
	last     time.Time
}

func newPacer(rate float64, duration time.Duration) *pacer {
	now := time.Now()
	return &pacer{start: now, rate: rate, duration: duration, last: now}
}

// minSleep is the shortest sleep worth asking for: the Go timer and the
// scheduler don't wake a goroutine sooner in practice, and the deficit a
// longer sleep builds is sent as one burst right after it.
const minSleep = 50 * time.Microsecond

// wait returns true when the metric after sent may go now, sleeping while
// ahead of schedule, and false once the duration is up.
func (p *pacer) wait(sent int64) bool {
	for {
		now := time.Now()
		el := now.Sub(p.start)
		if el >= p.duration {
			return false
		}
		p.last = now
		if p.rate <= 0 {
			return true
		}
		ahead := float64(sent) - p.rate*el.Seconds()
		if ahead < 1 {
			return true
		}
		time.Sleep(max(time.Duration(ahead/p.rate*1e9), minSleep))
	}
}

// elapsed is the time from the start to the last send allowed.
func (p *pacer) elapsed() time.Duration { return p.last.Sub(p.start) }

// genMetric is one generated line before formatting.
type genMetric struct {
	typ    MetricType
	name   string
	tags   []string // the generator's scratch: valid until the next call
	value  float64
	member string
}

// generator draws metrics from a seeded RNG.
type generator struct {
	rng     *rand.Rand
	mix     Mix
	total   int
	names   [NumTypes][]string
	tagVals [][]string // [key][value]: "key:value"
	members []string
	tags    []string
	perLine int
}

// tagKeys are realistic keys for the first tags of a line, so that line
// lengths resemble real traffic; more keys are named tag10, tag11 and on.
var tagKeys = []string{"env", "service", "region", "route", "status", "method", "shard", "az", "team", "version"}

func newGenerator(cfg Config) (*generator, error) {
	if err := cfg.validateTraffic(); err != nil {
		return nil, err
	}
	perLine := max(cfg.TagsPerMetric, 0) // NoTags
	g := &generator{
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		mix:     cfg.Mix,
		total:   cfg.Mix.total(),
		perLine: perLine,
		tags:    make([]string, perLine),
	}
	for t, n := range shareNames(cfg.Names, cfg.Mix) {
		g.names[t] = make([]string, n)
		for i := range n {
			g.names[t][i] = "loadgen." + typeNames[t] + "." + strconv.Itoa(i)
		}
	}
	g.tagVals = make([][]string, perLine)
	for k := range g.tagVals {
		key := "tag" + strconv.Itoa(k)
		if k < len(tagKeys) {
			key = tagKeys[k]
		}
		g.tagVals[k] = make([]string, cfg.TagValues)
		for v := range cfg.TagValues {
			g.tagVals[k][v] = key + ":" + key + "-" + strconv.Itoa(v)
		}
	}
	if cfg.Mix[Set] > 0 {
		g.members = make([]string, setMembers)
		for i := range g.members {
			g.members[i] = "user-" + strconv.Itoa(i)
		}
	}
	return g, nil
}

// shareNames splits n names among the types of mix in proportion to their
// weights (largest remainder), at least one per type in use. The caller
// has checked n ≥ the number of types in use.
func shareNames(n int, mix Mix) [NumTypes]int {
	var out [NumTypes]int
	total := mix.total()
	given := 0
	for t, w := range mix {
		if w > 0 {
			out[t] = max(1, n*w/total)
			given += out[t]
		}
	}
	// Hand out (or take back) the rounding difference one name at a time,
	// to the heaviest types first.
	for given != n {
		best := -1
		for t, w := range mix {
			if w == 0 || (given > n && out[t] == 1) {
				continue
			}
			if best < 0 || w > mix[best] {
				best = t
			}
		}
		if given < n {
			out[best]++
			given++
		} else {
			out[best]--
			given--
		}
	}
	return out
}

// next draws one metric.
func (g *generator) next() genMetric {
	pick := g.rng.IntN(g.total)
	t := MetricType(0)
	for pick >= g.mix[t] {
		pick -= g.mix[t]
		t++
	}
	m := genMetric{typ: t, name: g.names[t][g.rng.IntN(len(g.names[t]))]}
	for k := range g.perLine {
		g.tags[k] = g.tagVals[k][g.rng.IntN(len(g.tagVals[k]))]
	}
	m.tags = g.tags
	switch t {
	case Count:
		// Always 1: a counter's flushed sum then equals the lines that
		// arrived, which is how the pipeline benchmark measures loss.
		m.value = 1
	case Gauge:
		m.value = float64(g.rng.IntN(100_000)) / 100
	case Set:
		m.member = g.members[g.rng.IntN(len(g.members))]
	default: // histogram kinds: a lognormal latency in ms, 2 decimals
		m.value = math.Round(math.Exp(3+g.rng.NormFloat64())*100) / 100
	}
	return m
}

// appendLine appends m as one DogStatsD line, "name:value|type|#tags\n",
// formatted as datadog-go formats it.
func appendLine(dst []byte, m *genMetric) []byte {
	dst = append(dst, m.name...)
	dst = append(dst, ':')
	if m.typ == Set {
		dst = append(dst, m.member...)
	} else {
		dst = strconv.AppendFloat(dst, m.value, 'f', -1, 64)
	}
	dst = append(dst, '|')
	dst = append(dst, typeCodes[m.typ]...)
	for i, tag := range m.tags {
		if i == 0 {
			dst = append(dst, "|#"...)
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, tag...)
	}
	return append(dst, '\n')
}
