package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds the real veneur-lite once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "veneur-lite-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "veneur-lite")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
}

// proc is a running veneur-lite whose stdout lines are collected.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	grew  chan struct{}
	done  chan struct{}
	err   error
}

func startBinary(t *testing.T, configYAML string) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "veneur.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "-f", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, grew: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.grew <- struct{}{}:
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitLine waits until a stdout line has the given prefix.
func (p *proc) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.HasPrefix(l, prefix) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.grew:
		case <-p.done:
			t.Fatalf("process exited (%v) before printing %q", p.err, prefix)
		case <-deadline:
			t.Fatalf("no line starting with %q within %s; stdout: %q", prefix, timeout, p.output())
		}
	}
}

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitHealthy polls /healthcheck until the daemon serves.
func waitHealthy(t *testing.T, httpAddr string) {
	t.Helper()
	await.Until(t, 10*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/healthcheck")
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.TrimSpace(string(body)) == "ok", fmt.Sprintf("%d %q", resp.StatusCode, body)
	})
}

// The README's promise: a line sent with nc shows up on stdout within one
// interval, from the real binary with the console sink.
func TestBinaryConsoleShowsNetcatWithinOneInterval(t *testing.T) {
	nc := requireNetcat(t)
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf("statsd_listen_addresses: [udp://%s]\nhttp_address: %s\ninterval: 1s\nhostname: box\n", udp, httpAddr))
	waitHealthy(t, httpAddr)
	h, port, _ := net.SplitHostPort(udp)
	sent := time.Now()
	runNC(t, "deploys:1|c|#env:test\n", nc, "-u", "-w0", h, port)
	line := p.waitLine(t, "deploys ", 3*time.Second)
	if took := time.Since(sent); took > 2*time.Second {
		t.Errorf("visible after %s, want within one 1s interval (+ slack)", took)
	}
	if want := "deploys rate 1 host=box tags=env:test interval=1s count=1"; line != want {
		t.Errorf("console line\n got %q\nwant %q", line, want)
	}
	for _, path := range []string{"/version", "/debug/pprof/"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, err, resp)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/version" && !strings.HasPrefix(string(body), "veneur-lite ") {
			t.Errorf("/version = %q", body)
		}
	}
}

// SIGTERM long before the interval ends still flushes everything sent, and
// the process exits 0 within 10 s.
func TestBinarySIGTERMFlushesEverything(t *testing.T) {
	udp, tcp, httpAddr := freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf("statsd_listen_addresses: [udp://%s, tcp://%s]\nhttp_address: %s\ninterval: 1h\nhostname: box\n", udp, tcp, httpAddr))
	waitHealthy(t, httpAddr)

	u, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	const packets = 200
	for i := range packets {
		if _, err := fmt.Fprintf(u, "shutdown.udp:1|c\nshutdown.timer:%d|ms", i); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, strings.Repeat("shutdown.tcp:1|c\n", 1000)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("not exited 10s after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit: %v, want status 0", p.err)
	}
	t.Logf("exited %s after SIGTERM", time.Since(start))
	want := map[string]string{
		"shutdown.udp ":         "shutdown.udp rate 0.05555555555555555 host=box tags= interval=1h0m0s count=200",
		"shutdown.tcp ":         "shutdown.tcp rate 0.2777777777777778 host=box tags= interval=1h0m0s count=1000",
		"shutdown.timer.count ": "shutdown.timer.count rate 0.05555555555555555 host=box tags= interval=1h0m0s count=200",
		"shutdown.timer.max ":   "shutdown.timer.max gauge 199 host=box tags=",
		"shutdown.timer.min ":   "shutdown.timer.min gauge 0 host=box tags=",
	}
	for prefix, line := range want {
		if got := p.waitLine(t, prefix, time.Second); got != line {
			t.Errorf("got %q\nwant %q", got, line)
		}
	}
}

func TestBinaryValidateConfigAndVersion(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name, body string
		wantCode   int
		wantOut    string
	}{
		{"good.yaml", "interval: 5s\npercentiles: [0.5, 0.999]\n", 0, "config ok"},
		{"unknown.yaml", "interval: 5s\nflush_intervall: 5s\n", 1, `unknown key "flush_intervall"`},
		{"badvalue.yaml", "num_readers: -1\n", 1, "num_readers: -1 is less than 1"},
		{"badsink.yaml", "metric_sinks:\n  - kind: console\n    config: {colour: true}\n", 1, `unknown key "colour"`},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, "-validate-config", "-f", write(c.name, c.body))
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != c.wantCode || !strings.Contains(string(out), c.wantOut) {
			t.Errorf("%s: exit %d output %q; want exit %d containing %q", c.name, code, out, c.wantCode, c.wantOut)
		}
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "veneur-lite ") {
		t.Errorf("-version: %q %v", out, err)
	}
}
