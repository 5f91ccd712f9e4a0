package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
func binary(t testing.TB) string {
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
func freePort(t testing.TB, network string) string {
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

// proc is a running veneur-lite whose stdout and stderr lines are collected.
type proc struct {
	cmd       *exec.Cmd
	mu        sync.Mutex
	lines     []string
	errLines  []string
	grew      chan struct{}
	errGrew   chan struct{}
	done      chan struct{}
	err       error
	stderrLog testWriter
}

func startBinary(t testing.TB, configYAML string) *proc {
	t.Helper()
	return startBinaryEnv(t, configYAML)
}

// startBinaryEnv runs the binary on configYAML with env added to the
// test's environment.
func startBinaryEnv(t testing.TB, configYAML string, env ...string) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "veneur.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "-f", path)
	cmd.Env = append(os.Environ(), env...)
	return startProc(t, cmd)
}

// startProc starts cmd, a veneur-lite process (the binary itself, or a
// wrapper that execs it), and keeps its output lines for the waits.
func startProc(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, grew: make(chan struct{}, 1), errGrew: make(chan struct{}, 1), done: make(chan struct{}), stderrLog: testWriter{t}}
	cmd.Stderr = stderrRecorder{p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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

// stderrRecorder logs the process's stderr and keeps its lines. exec
// copies stderr to it from one goroutine, and slog writes a line per call.
type stderrRecorder struct{ p *proc }

func (r stderrRecorder) Write(b []byte) (int, error) {
	_, _ = r.p.stderrLog.Write(b)
	r.p.mu.Lock()
	r.p.errLines = append(r.p.errLines, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	r.p.mu.Unlock()
	select {
	case r.p.errGrew <- struct{}{}:
	default:
	}
	return len(b), nil
}

// waitErrLine waits until a stderr line contains all of parts.
func (p *proc) waitErrLine(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	exited := false
	for {
		p.mu.Lock()
		for _, l := range p.errLines {
			if !slices.ContainsFunc(parts, func(part string) bool { return !strings.Contains(l, part) }) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		if exited {
			t.Fatalf("process exited (%v) before logging %q", p.err, parts)
		}
		select {
		case <-p.errGrew:
		case <-p.done: // stderr is complete: look once more
			exited = true
		case <-deadline:
			t.Fatalf("no stderr line containing %q within %s", parts, timeout)
		}
	}
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
func waitHealthy(t testing.TB, httpAddr string) {
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
	// The flush opens with its header, and the user's line comes before
	// the process's own veneur.* lines.
	out := p.output()
	at := slices.Index(out, line)
	header := at - 1
	for header >= 0 && !strings.HasPrefix(out[header], "--- flush ") {
		header--
	}
	if header < 0 || !strings.Contains(out[header], " interval=1s points=") || slices.ContainsFunc(out[header:at], func(l string) bool { return strings.HasPrefix(l, "veneur.") }) {
		t.Errorf("want a flush header, then deploys before any veneur.* line; stdout: %q", out)
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

// runBinary runs the binary to completion (bounded) with env added to the
// test's environment, and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatalf("run %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%v still running after 15s; stderr: %s", args, errOut.String())
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// -validate-config rejects exactly what startup rejects, with the same
// lines: each names the file line, the key and the reason.
func TestBinaryValidateConfigRejectsWhatStartupRejects(t *testing.T) {
	dir := t.TempDir()
	// If startup wrongly got past the config, it would bind these, not the
	// default ports, and be killed by runBinary's deadline.
	env := []string{"VENEUR_STATSD_LISTEN_ADDRESSES=udp://127.0.0.1:0", "VENEUR_HTTP_ADDRESS=127.0.0.1:0"}
	cases := []struct {
		name, body string
		want       []string // stderr lines after "veneur-lite: invalid config: <file>:"
	}{
		{"unknown", "interval: 5s\nflush_intervall: 5s\n", []string{"2: flush_intervall: unknown key"}},
		{"negative", "num_readers: -1\n", []string{"1: num_readers: -1 is less than 1"}},
		{"values", "interval: tenseconds\nflush_on_shutdown: maybe\nnum_workers: abc\npercentiles: abc\n", []string{
			`1: interval: "tenseconds" is not a duration like 10s`,
			`2: flush_on_shutdown: "maybe" is not true or false`,
			`3: num_workers: "abc" is not an integer`,
			`4: percentiles[0]: "abc" is not a number`,
		}},
		{"forward-query", "forward_address: http://g:8127/?x=1\n", []string{
			`1: forward_address[0]: forward address "http://g:8127/?x=xxxxx": unexpected credentials, query, fragment or opaque part (want http(s)://host:port or srv://name)`,
		}},
		{"forward-srv-port", "forward_address: srv://name:53\n", []string{
			`1: forward_address[0]: forward address "srv://name:53": srv:// takes a bare DNS name (want http(s)://host:port or srv://name)`,
		}},
		{"shards", "num_workers: 5000\n", []string{"1: num_workers: 5000 is more than 4096"}},
		{"sink-unknown", "metric_sinks:\n  - kind: console\n    config: {colour: true}\n", []string{
			"3: metric_sinks[0].config.colour: unknown key",
		}},
		{"sink-value", "hostname: h\nmetric_sinks:\n  - kind: datadog\n    config:\n      api_key: k\n      flush_max_per_body: abc\n", []string{
			`6: metric_sinks[0].config.flush_max_per_body: "abc" is not an integer`,
		}},
		{"sink-invalid", "metric_sinks:\n  - kind: datadog\n    config:\n      timeout: 0s\n", []string{
			"3: metric_sinks[0].config: api_key: must be set",
			"3: metric_sinks[0].config: timeout: must be positive, got 0s",
		}},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".yaml")
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, w := range c.want {
			want.WriteString("veneur-lite: invalid config: " + path + ":" + w + "\n")
		}
		for _, args := range [][]string{{"-validate-config", "-f", path}, {"-f", path}} {
			code, stdout, stderr := runBinary(t, env, args...)
			if code != 1 || stdout != "" || stderr != want.String() {
				t.Errorf("%s %v: exit %d, stdout %q, stderr\n%s\nwant exit 1, stderr\n%s", c.name, args, code, stdout, stderr, want.String())
			}
		}
	}
}

// Addresses: a missing scheme says which one to add (not url.Parse's
// words), a port out of range is refused naming the key, and a password
// in a URL is never echoed.
func TestBinaryValidateConfigAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veneur.yaml")
	body := "http_address: 127.0.0.1:99999\nstatsd_listen_addresses: [127.0.0.1:8125, udp://127.0.0.1:99999]\n" +
		"forward_address: http://user:pw@global:8127\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range []string{
		`2: statsd_listen_addresses[0]: "127.0.0.1:8125" needs a scheme: udp://127.0.0.1:8125`,
		`2: statsd_listen_addresses[1]: "udp://127.0.0.1:99999": port 99999 is out of range (0 to 65535)`,
		`1: http_address: "127.0.0.1:99999": port 99999 is out of range (0 to 65535)`,
		`3: forward_address[0]: forward address "http://xxxxx@global:8127": unexpected credentials, query, fragment or opaque part (want http(s)://host:port or srv://name)`,
	} {
		want.WriteString("veneur-lite: invalid config: " + path + ":" + w + "\n")
	}
	for _, args := range [][]string{{"-validate-config", "-f", path}, {"-f", path}} {
		code, stdout, stderr := runBinary(t, nil, args...)
		if code != 1 || stdout != "" || stderr != want.String() {
			t.Errorf("%v: exit %d, stdout %q, stderr\n%s\nwant exit 1, stderr\n%s", args, code, stdout, stderr, want.String())
		}
	}
}

func TestBinaryValidateConfigAndVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, body := range []string{
		"interval: 5s\npercentiles: [0.5, 0.999]\n",
		"hostname: \"\"\n",                                // the OS hostname
		"extend_tags: env:prod\naggregates: max\n",        // list keys take a string
		"unix_socket_mode: \"0700\"\nnum_workers: 4096\n", // the largest shard count New takes
	} {
		code, stdout, stderr := runBinary(t, nil, "-validate-config", "-f", write("good.yaml", body))
		if code != 0 || stdout != "config ok\n" || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", body, code, stdout, stderr)
		}
	}
	// A warning is printed, and a config that is otherwise valid is still ok.
	code, stdout, stderr := runBinary(t, []string{"VENEUR_INTERVALS=5s"}, "-validate-config", "-f", write("good.yaml", "interval: 5s\n"))
	wantErr := "veneur-lite: warning: VENEUR_INTERVALS is not a configuration key; ignored (did you mean VENEUR_INTERVAL?)\n"
	if code != 0 || stdout != "config ok\n" || stderr != wantErr {
		t.Errorf("unknown variable: exit %d, stdout %q, stderr %q; want 0, config ok, %q", code, stdout, stderr, wantErr)
	}

	code, stdout, _ = runBinary(t, nil, "-version")
	if code != 0 || !strings.HasPrefix(stdout, "veneur-lite ") {
		t.Errorf("-version: exit %d %q", code, stdout)
	}
}

// "veneur-lite veneur.yaml" (-f forgotten) must not run on the defaults.
func TestBinaryPositionalArgumentIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{"veneur.yaml"}, {"-f", "veneur.yaml", "extra"}} {
		code, stdout, stderr := runBinary(t, nil, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "veneur-lite: unexpected argument") ||
			!strings.Contains(stderr, "usage: veneur-lite [-f config.yaml]") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and usage", args, code, stdout, stderr)
		}
	}
}

// SIGHUP neither kills the process nor loses data: it is logged and
// ignored, the process keeps serving, and what arrives afterwards is
// flushed at SIGTERM. Load-time warnings are logged at startup.
func TestBinarySIGHUPIsIgnored(t *testing.T) {
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	p := startBinaryEnv(t, fmt.Sprintf("statsd_listen_addresses: [udp://%s]\nhttp_address: %s\ninterval: 1h\nhostname: box\n", udp, httpAddr),
		"VENEUR_INTERVALS=1s")
	waitHealthy(t, httpAddr)
	p.waitErrLine(t, 5*time.Second, "level=WARN", "VENEUR_INTERVALS is not a configuration key", "did you mean VENEUR_INTERVAL?")

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitErrLine(t, 5*time.Second, "level=INFO", "SIGHUP received: no TLS files to reload")
	waitHealthy(t, httpAddr)

	u, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := io.WriteString(u, "after.hup:1|c"); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	if got, want := p.waitLine(t, "after.hup ", time.Second), "after.hup rate 0.0002777777777777778 host=box tags= interval=1h0m0s count=1"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
