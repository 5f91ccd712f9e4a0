package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
	"github.com/veneur-lite/veneur-lite/bench/loadgen"
)

// The sender runs in a process of its own (this binary with -sender-child)
// so that its CPU, and the kernel's loopback delivery it pays for in its
// send calls, is never charged to the receiver being measured. One sender
// serves a whole load: it builds the load's datagrams once, then sends
// them on request, run after run. Requests and replies are JSON lines on
// its stdin and stdout.

// senderSetup is the first request: the traffic to build.
type senderSetup struct {
	Gen     loadgen.Config `json:"gen"`
	Packets int            `json:"packets"`
}

// poolInfo describes the datagrams the sender built.
type poolInfo struct {
	Packets        int                     `json:"packets"`
	Lines          int64                   `json:"lines"`
	ByType         [loadgen.NumTypes]int64 `json:"by_type"`
	Series         int                     `json:"series"` // distinct name, type and tags
	MinLines       int                     `json:"min_lines_per_packet"`
	MaxLines       int                     `json:"max_lines_per_packet"`
	MeanBytes      float64                 `json:"mean_bytes_per_packet"`
	CountableShare float64                 `json:"countable_share"`
	BuildSeconds   float64                 `json:"build_seconds"`
	Error          string                  `json:"error,omitempty"`
}

// sendRequest is one run.
type sendRequest struct {
	Addr     string        `json:"addr"`
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
}

type sendReply struct {
	Result loadgen.Result `json:"result"`
	Error  string         `json:"error,omitempty"`
}

// maxSenderRequests bounds the child's request loop; a sweep makes a few
// dozen requests per load.
const maxSenderRequests = 10_000

// runSenderChild is the child's side: it serves requests from r until EOF.
func runSenderChild(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	enc := json.NewEncoder(w)
	var setup senderSetup
	if err := dec.Decode(&setup); err != nil {
		return fmt.Errorf("sender: read setup: %w", err)
	}
	start := time.Now()
	pool, err := loadgen.BuildPackets(setup.Gen, setup.Packets)
	if err != nil {
		_ = enc.Encode(poolInfo{Error: err.Error()})
		return fmt.Errorf("sender: %w", err)
	}
	info := describePool(pool)
	info.BuildSeconds = time.Since(start).Seconds()
	if err := enc.Encode(info); err != nil {
		return fmt.Errorf("sender: write pool info: %w", err)
	}
	for range maxSenderRequests {
		var req sendRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("sender: read request: %w", err)
		}
		cfg := setup.Gen
		cfg.Addr, cfg.Rate, cfg.Duration, cfg.MaxMetrics = req.Addr, req.Rate, req.Duration, 0
		res, err := loadgen.SendPackets(cfg, pool)
		reply := sendReply{Result: res}
		if err != nil {
			reply.Error = err.Error()
		}
		if err := enc.Encode(reply); err != nil {
			return fmt.Errorf("sender: write result: %w", err)
		}
	}
	return fmt.Errorf("sender: more than %d requests", maxSenderRequests)
}

// describePool counts what the pool holds. A series is a line without its
// value: "name:value|type|#tags" → "name|type|#tags".
func describePool(pool []loadgen.Packet) poolInfo {
	info := poolInfo{Packets: len(pool), MinLines: int(^uint(0) >> 1)}
	series := map[string]struct{}{}
	var size int
	for _, p := range pool {
		info.Lines += int64(p.Lines)
		for t, n := range p.ByType {
			info.ByType[t] += int64(n)
		}
		info.MinLines = min(info.MinLines, int(p.Lines))
		info.MaxLines = max(info.MaxLines, int(p.Lines))
		size += len(p.Data)
		for line := range bytes.SplitSeq(p.Data, []byte{'\n'}) {
			colon := bytes.IndexByte(line, ':')
			if colon < 0 {
				continue
			}
			pipe := bytes.IndexByte(line[colon:], '|')
			if pipe < 0 {
				continue
			}
			series[string(line[:colon])+string(line[colon+pipe:])] = struct{}{}
		}
	}
	info.Series = len(series)
	if len(pool) > 0 {
		info.MeanBytes = float64(size) / float64(len(pool))
	}
	var countable int64
	for t, n := range info.ByType {
		if loadgen.MetricType(t).Countable() {
			countable += n
		}
	}
	if info.Lines > 0 {
		info.CountableShare = float64(countable) / float64(info.Lines)
	}
	return info
}

// sender is the harness's handle on a sender child.
type sender struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	enc     *json.Encoder
	replies chan json.RawMessage
	done    chan struct{} // closed once the child has exited
	waitErr error
	stderr  *proc.TailBuffer
	Info    poolInfo
}

// startSender starts exe -sender-child and has it build gen's datagrams.
func startSender(exe string, gen loadgen.Config, packets int) (*sender, error) {
	cmd := exec.Command(exe, "-sender-child")
	// The child must not outlive the harness: it would keep sending.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	s := &sender{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin),
		replies: make(chan json.RawMessage, 1), done: make(chan struct{}), stderr: proc.NewTailBuffer(8 << 10)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sender: %w", err)
	}
	go func() {
		dec := json.NewDecoder(stdout)
		for {
			var m json.RawMessage
			if err := dec.Decode(&m); err != nil {
				break
			}
			s.replies <- m
		}
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.enc.Encode(senderSetup{Gen: gen, Packets: packets}); err != nil {
		s.kill()
		return nil, fmt.Errorf("sender: write setup: %w", err)
	}
	// Building up to 2^16 datagrams takes a few seconds at most.
	if err := s.reply(time.Minute, &s.Info); err != nil {
		s.kill()
		return nil, err
	}
	if s.Info.Error != "" {
		s.kill()
		return nil, fmt.Errorf("sender: %s", s.Info.Error)
	}
	return s, nil
}

// reply waits up to timeout for the child's next line and decodes it.
func (s *sender) reply(timeout time.Duration, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-s.replies:
		if err := json.Unmarshal(m, v); err != nil {
			return fmt.Errorf("sender: decode reply: %w", err)
		}
		return nil
	case <-s.done:
		return fmt.Errorf("sender exited (%w): %s", s.waitErr, s.stderr.String())
	case <-t.C:
		return fmt.Errorf("sender: no reply within %v", timeout)
	}
}

// send has the child send to addr at rate for d, and returns what it sent.
func (s *sender) send(ctx context.Context, addr string, rate float64, d time.Duration) (loadgen.Result, error) {
	if err := s.enc.Encode(sendRequest{Addr: addr, Rate: rate, Duration: d}); err != nil {
		return loadgen.Result{}, fmt.Errorf("sender: write request: %w", err)
	}
	var rep sendReply
	// The child stops by itself after d; ctx ending (an interrupt) kills it.
	errc := make(chan error, 1)
	go func() { errc <- s.reply(d+30*time.Second, &rep) }()
	select {
	case err := <-errc:
		if err != nil {
			return loadgen.Result{}, err
		}
	case <-ctx.Done():
		s.kill()
		// The child is gone, so the reply fails at once, saying how.
		return loadgen.Result{}, errors.Join(ctx.Err(), <-errc)
	}
	if rep.Error != "" {
		return rep.Result, fmt.Errorf("sender: %s", rep.Error)
	}
	return rep.Result, nil
}

// exited reports whether the child has gone: every later send would fail.
func (s *sender) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// close ends the child (EOF on its stdin) and waits for it, briefly.
func (s *sender) close() error {
	_ = s.stdin.Close()
	select {
	case <-s.done:
		return s.waitErr
	case <-time.After(10 * time.Second):
		s.kill()
		return errors.New("sender did not exit after its input closed")
	}
}

func (s *sender) kill() {
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// isSenderChild reports whether args ask for the sender child.
func isSenderChild(args []string) bool { return len(args) == 1 && args[0] == "-sender-child" }

// senderChildMain is main for the child.
func senderChildMain() int {
	if err := runSenderChild(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
