package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
	"golang.org/x/sys/unix"
)

// The two receivers, side by side in every table.
const (
	subjectBaseline = "baseline"
	subjectVeneur   = "veneur-lite"
)

var subjects = []string{subjectBaseline, subjectVeneur}

// Run is one run: one receiver, one load, one offered rate.
type Run struct {
	Load    string    `json:"load"`
	Subject string    `json:"subject"`
	Rep     int       `json:"rep"`
	Offered float64   `json:"offered_per_s"`
	Start   time.Time `json:"start"`

	// What the sender did (loadgen.Result).
	Sent          int64   `json:"sent"`
	SentCountable int64   `json:"sent_countable"`
	Datagrams     int64   `json:"sent_datagrams"`
	SendErrors    int64   `json:"send_errors"`
	SendSeconds   float64 `json:"send_seconds"`
	SendRate      float64 `json:"send_rate_per_s"` // achieved
	SenderCPU     float64 `json:"sender_cpu_s"`

	// Received is the metrics that reached the end of the receiver: for
	// the baseline, the lines it counted; for veneur-lite, the countable
	// metrics found at the sink scaled by Sent/SentCountable (gauges and
	// sets cannot be counted back, so they are assumed to fare as the
	// countable ones did).
	Received      float64 `json:"received"`
	Countable     float64 `json:"received_countable,omitempty"` // veneur-lite: Σ value×interval at the sink
	DeliveredRate float64 `json:"delivered_per_s"`              // Received / SendSeconds
	LossPct       float64 `json:"loss_pct"`                     // of countable metrics for veneur-lite, of lines for the baseline

	// Kernel drops, three ways: what the receiver itself saw through
	// SO_RXQ_OVFL (veneur-lite reports it as veneur.listener.packets_dropped
	// through the sink), the drops column of /proc/net/udp for the run's
	// port, and the namespace's Udp RcvbufErrors over the run. All in
	// datagrams.
	DropsSelf    float64 `json:"kernel_drops_self"`
	DropsProc    uint64  `json:"kernel_drops_proc"`
	RcvbufErrors uint64  `json:"rcvbuf_errors"`

	// CPUSeconds is the receiver process's user + system time from the
	// moment it was ready (sockets bound) to its exit, so the run, the
	// drain and veneur-lite's final flush, but not process start-up: the
	// rusage wait4 returns at exit minus CPUStartup, read from
	// /proc/<pid>/task/*/schedstat once ready. CPUPerMillion divides it by
	// Received/1e6.
	CPUSeconds    float64 `json:"cpu_s"`
	CPUStartup    float64 `json:"cpu_startup_s"`
	CPUPerMillion float64 `json:"cpu_s_per_million"`

	// The machine during the run, from /proc/stat: hypervisor steal, and
	// the CPU used by everything but the receiver, the sender thread and
	// the harness (other sessions' work, unattributed kernel time).
	StealPct float64 `json:"steal_pct"`
	OtherCPU float64 `json:"other_cpu_s"`

	// veneur-lite only: what the sink received, and the daemon's log.
	Sink     *sinkTotals `json:"sink,omitempty"`
	Series   int         `json:"sink_series,omitempty"` // countable series seen at the sink
	Warnings int         `json:"log_warnings,omitempty"`
	Errors   int         `json:"log_errors,omitempty"`
	// LogTail is the end of veneur-lite's log when it warned or failed.
	LogTail string `json:"log_tail,omitempty"`
	// DatagramsPerRead is the baseline's mean recvmmsg batch: small
	// batches mean a wake-up per few datagrams, whose cost dominates its
	// CPU figure.
	DatagramsPerRead float64 `json:"datagrams_per_read,omitempty"`
	// ReadErrors is the baseline's failed reads (none expected).
	ReadErrors uint64 `json:"read_errors,omitempty"`

	WallSeconds float64 `json:"wall_s"`
	Err         string  `json:"error,omitempty"`
}

// ok reports whether the run produced figures.
func (r *Run) ok() bool { return r.Err == "" }

// harness holds what every run shares.
type harness struct {
	opts   options
	intake *intake
	tmp    string // per-run config files
	runs   int
}

// exitTimeout bounds a receiver's shutdown: veneur-lite's own budget is
// 9 s from the signal.
const exitTimeout = 20 * time.Second

// startBaseline starts nullrecv on addr and waits for its ready line.
func (h *harness) startBaseline(addr string) (*proc.Child, error) {
	c, err := proc.Start(h.opts.nullrecv, "-addr", addr,
		"-readers", fmt.Sprint(h.opts.readers), "-read-buffer", fmt.Sprint(h.opts.readBuffer))
	if err != nil {
		return nil, err
	}
	select {
	case line, ok := <-c.Lines():
		var r readyLine
		if ok && json.Unmarshal([]byte(line), &r) == nil && r.Event == "ready" {
			return c, nil
		}
		c.Kill()
		return nil, fmt.Errorf("nullrecv: unexpected first line %q: %s", line, c.Stderr().String())
	case <-time.After(10 * time.Second):
		c.Kill()
		return nil, fmt.Errorf("nullrecv not ready within 10s: %s", c.Stderr().String())
	}
}

// The lines of nullrecv's stdout protocol (see bench/cmd/nullrecv).
type readyLine struct {
	Event string `json:"event"`
	Addr  string `json:"addr"`
}

type nullCounts struct {
	Event       string `json:"event"`
	Datagrams   uint64 `json:"datagrams"`
	Lines       uint64 `json:"lines"`
	KernelDrops uint64 `json:"kernel_drops"`
	Reads       uint64 `json:"reads"`
	ReadErrors  uint64 `json:"read_errors"`
}

// veneurConfig is the daemon's configuration for a run: everything left at
// its default but what the comparison needs to control.
func (h *harness) veneurConfig(udpAddr, httpAddr string, interval time.Duration) string {
	return fmt.Sprintf(`# written by bench/cmd/compare
statsd_listen_addresses: [udp://%s]
http_address: %s
interval: %v
hostname: bench-compare
num_readers: %d
read_buffer_size_bytes: %d
metric_sinks:
  - kind: datadog
    config:
      api_key: bench-compare-not-a-key
      api_hostname: %s
`, udpAddr, httpAddr, interval, h.opts.readers, h.opts.readBuffer, h.intake.URL())
}

// startVeneur writes a config, starts the built veneur-lite and waits until
// it answers /healthcheck (its UDP sockets are bound before HTTP serves).
func (h *harness) startVeneur(ctx context.Context, addr string, interval time.Duration) (*proc.Child, error) {
	httpPort, err := proc.FreePort("tcp")
	if err != nil {
		return nil, err
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	h.runs++
	path := filepath.Join(h.tmp, fmt.Sprintf("veneur-%d.yaml", h.runs))
	if err := os.WriteFile(path, []byte(h.veneurConfig(addr, httpAddr, interval)), 0o600); err != nil {
		return nil, fmt.Errorf("write veneur-lite config: %w", err)
	}
	c, err := proc.Start(h.opts.veneur, "-f", path)
	if err != nil {
		return nil, err
	}
	if err := proc.WaitHealthy(ctx, c, httpAddr, 15*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// tickSlack is the time a veneur-lite run needs besides its sending: start
// until healthy, and the stop once the sender returns.
const tickSlack = 1500 * time.Millisecond

// tickFree reports whether runs sending for d are placed between two of
// veneur-lite's flush ticks, which fall on multiples of interval: when a
// run takes at most half the interval, so that the wait for a tick to
// pass is never longer than the run.
func tickFree(interval, d time.Duration) bool { return interval >= 2*(d+tickSlack) }

// tickWait is how long to wait at now so that a run sending for d ends
// before the next tick: zero when it already does, else until just after
// that tick.
func tickWait(now time.Time, interval, d time.Duration) time.Duration {
	if !tickFree(interval, d) {
		return 0
	}
	// Truncate, as veneur-lite's flusher computes its ticks.
	left := now.Truncate(interval).Add(interval).Sub(now)
	if left >= d+tickSlack {
		return 0
	}
	return left + 100*time.Millisecond
}

// avoidTick waits as tickWait says: then the only flush of a run is the
// final one, in every run alike, rather than in some of them.
func avoidTick(ctx context.Context, interval, d time.Duration) error {
	wait := tickWait(time.Now(), interval, d)
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runOne runs subject at one offered rate of a load: start the receiver,
// send, read the kernel's drop counters, SIGTERM the receiver, wait for it
// to exit, then count what it received.
func (h *harness) runOne(ctx context.Context, l *load, snd *sender, subject string, rate float64, rep int) Run {
	r := Run{Load: l.Name, Subject: subject, Rep: rep, Offered: rate, Start: time.Now().UTC()}
	if err := h.measure(ctx, l, snd, &r); err != nil {
		r.Err = err.Error()
	}
	r.WallSeconds = time.Since(r.Start).Seconds()
	return r
}

func (h *harness) measure(ctx context.Context, l *load, snd *sender, r *Run) error {
	port, err := proc.FreePort("udp")
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var c *proc.Child
	if r.Subject == subjectBaseline {
		c, err = h.startBaseline(addr)
	} else {
		h.intake.take() // nothing from an earlier run may count
		if err := avoidTick(ctx, l.Interval, h.opts.duration); err != nil {
			return err
		}
		c, err = h.startVeneur(ctx, addr, l.Interval)
	}
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Kill()
		}
	}()

	if r.CPUStartup, err = proc.TaskCPU(c.Pid()); err != nil {
		return err
	}
	cpu0, err := proc.ReadCPUTimes()
	if err != nil {
		return err
	}
	rcvbuf0, err := udpRcvbufErrors()
	if err != nil {
		return err
	}
	self0 := selfCPU()

	res, err := snd.send(ctx, addr, r.Offered, h.opts.duration)
	if err != nil {
		return err
	}
	r.Sent, r.SentCountable, r.Datagrams, r.SendErrors = res.Metrics, res.Countable(), res.Packets, res.SendErrors
	r.SendSeconds, r.SendRate, r.SenderCPU = res.Elapsed.Seconds(), res.Rate(), res.SenderCPU.Seconds()
	if r.Sent == 0 {
		return fmt.Errorf("the sender sent nothing (%d send errors)", res.SendErrors)
	}
	// The sender has returned, so every datagram is queued or dropped
	// already: loopback delivers within the send call.
	if r.DropsProc, _, err = udpSocketDrops(port); err != nil {
		return err
	}

	stopped = true
	if err := c.Stop(exitTimeout); err != nil {
		return err
	}
	r.CPUSeconds = c.CPU() - r.CPUStartup
	r.Warnings, r.Errors = c.Stderr().Counts()
	if r.Warnings+r.Errors > 0 {
		r.LogTail = c.Stderr().String()
	}

	cpu1, err := proc.ReadCPUTimes()
	if err != nil {
		return err
	}
	rcvbuf1, err := udpRcvbufErrors()
	if err != nil {
		return err
	}
	r.RcvbufErrors = rcvbuf1 - rcvbuf0
	if total := cpu1.Total - cpu0.Total; total > 0 {
		r.StealPct = 100 * (cpu1.Steal - cpu0.Steal) / total
	}
	r.OtherCPU = max(0, (cpu1.Busy-cpu0.Busy)-r.CPUSeconds-r.SenderCPU-(selfCPU()-self0))

	if r.Subject == subjectBaseline {
		if err := r.countBaseline(c); err != nil {
			return err
		}
	} else {
		if err := r.countVeneur(h.intake); err != nil {
			return err
		}
	}
	r.DeliveredRate = r.Received / r.SendSeconds
	if r.Received > 0 {
		r.CPUPerMillion = r.CPUSeconds / (r.Received / 1e6)
	}
	return nil
}

func (r *Run) countBaseline(c *proc.Child) error {
	var last string
	for line := range c.Lines() { // closed: the process has exited
		last = line
	}
	var n nullCounts
	if err := json.Unmarshal([]byte(last), &n); err != nil || n.Event != "done" {
		return fmt.Errorf("nullrecv: last line %q is not its counts", last)
	}
	r.Received = float64(n.Lines)
	r.LossPct = 100 * (float64(r.Sent) - r.Received) / float64(r.Sent)
	r.DropsSelf = float64(n.KernelDrops)
	r.ReadErrors = n.ReadErrors
	if n.Reads > 0 {
		r.DatagramsPerRead = float64(n.Datagrams) / float64(n.Reads)
	}
	return nil
}

func (r *Run) countVeneur(in *intake) error {
	bodies, unexpected := in.take()
	if len(unexpected) > 0 {
		return fmt.Errorf("intake: %s", strings.Join(unexpected, "; "))
	}
	t, err := decodeBodies(bodies)
	if err != nil {
		return err
	}
	r.Sink, r.Series = &t, len(t.PerSeries)
	r.Countable = t.Countable
	r.DropsSelf = t.Self["veneur.listener.packets_dropped"]
	if r.SentCountable == 0 {
		return errors.New("the load has no countable metrics: veneur-lite's loss cannot be measured")
	}
	share := float64(r.SentCountable) / float64(r.Sent)
	r.Received = t.Countable / share
	r.LossPct = 100 * (float64(r.SentCountable) - t.Countable) / float64(r.SentCountable)
	return nil
}

// selfCPU is the harness's own user + system time so far.
func selfCPU() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
