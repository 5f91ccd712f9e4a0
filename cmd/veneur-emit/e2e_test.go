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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/syncbuf"
)

// veneurLite is a running veneur-lite whose console sink's lines are
// collected.
type veneurLite struct {
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	mu     sync.Mutex
	lines  []string
	done   chan struct{} // closed once stdout is read and the process waited for
	err    error
}

// startVeneurLite builds ./cmd/veneur-lite and runs it with config.
func startVeneurLite(t *testing.T, config string) *veneurLite {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "veneur-lite")
	build := exec.Command("go", "build", "-o", bin, "github.com/veneur-lite/veneur-lite/cmd/veneur-lite")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "veneur.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	v := &veneurLite{cmd: exec.Command(bin, "-f", path), done: make(chan struct{})}
	v.cmd.Stderr = &v.stderr
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			v.mu.Lock()
			v.lines = append(v.lines, sc.Text())
			v.mu.Unlock()
		}
		v.err = v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		_ = v.cmd.Process.Kill()
		<-v.done
		if t.Failed() {
			t.Logf("veneur-lite stderr:\n%s", v.stderr.String())
		}
	})
	return v
}

func (v *veneurLite) output() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}

// stop sends SIGTERM, which flushes what was received, and waits for the
// exit.
func (v *veneurLite) stop(t *testing.T) {
	t.Helper()
	if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		t.Fatal("veneur-lite still running 10s after SIGTERM")
	}
	if v.err != nil {
		t.Fatalf("veneur-lite exited with %v", v.err)
	}
}

// awaitHealthy waits until veneur-lite answers its health check on
// httpAddr (plain HTTP).
func awaitHealthy(t *testing.T, httpAddr string) {
	t.Helper()
	await.Until(t, 20*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/healthcheck")
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %q", resp.StatusCode, body)
	})
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	return closedPort(t)
}

// Every kind, sent by veneur-emit over each transport to a running
// veneur-lite, comes out of its console sink with the values sent.
func TestEndToEndVeneurLite(t *testing.T) {
	t.Parallel() // mostly go build
	udp, tcp, httpAddr := freeAddr(t, "udp"), freeAddr(t, "tcp"), freeAddr(t, "tcp")
	sock := filepath.Join(shortTempDir(t), "statsd.sock")
	v := startVeneurLite(t, fmt.Sprintf(
		"statsd_listen_addresses: [udp://%s, tcp://%s, unixgram://%s]\nhttp_address: %s\ninterval: 1s\nhostname: box\n",
		udp, tcp, sock, httpAddr))
	awaitHealthy(t, httpAddr)

	send := func(args ...string) {
		t.Helper()
		if code, _, stderr := emit(t, args...); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
	}
	send("-hostport", "udp://"+udp, "-name", "emit.deploys", "-count", "2", "-tag", "env:dev")
	send("-hostport", "tcp://"+tcp, "-name", "emit.queue", "-gauge", "4.5", "-tag", "env:dev")
	send("-hostport", "unixgram://"+sock, "-name", "emit.job.time", "-timing", "250ms")
	send("-hostport", "udp://"+udp, "-name", "emit.users", "-set", "user:42", "-tag", "host:web1")
	send("-hostport", "tcp://"+tcp, "-e_title", "Deployed web", "-e_text", "v1.2\nto prod", "-e_time", "1700000000",
		"-e_hostname", "web1", "-e_aggr_key", "rel-42", "-e_priority", "low", "-e_source_type", "cron",
		"-e_alert_type", "success", "-e_event_tags", "env:dev")
	send("-hostport", "unixgram://"+sock, "-sc_name", "emit.db.up", "-sc_status", "WARNING",
		"-sc_hostname", "db1", "-sc_tags", "env:dev", "-sc_msg", "lag 30s")

	code, stdout, stderr := emit(t, "-debug", "-hostport", "udp://"+udp, "-name", "emit.backup.time", "-tag", "env:dev",
		"-sc_name", "emit.backup.ok", "-command", "--", "sh", "-c", "echo working; exit 3")
	if code != 3 || stdout != "working\n" {
		t.Fatalf("-command: exit %d, stdout %q; want the command's 3 and %q", code, stdout, "working\n")
	}
	m := regexp.MustCompile(`^emit\.backup\.time:([0-9.]+)\|ms\|#env:dev,exit_status:3\n_sc\|emit\.backup\.ok\|2\|m:exit status 3\n$`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("-command -debug printed %q", stderr)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	took := strconv.FormatFloat(ms, 'g', -1, 64) // as the console sink prints it

	v.stop(t)
	out := v.output()
	want := []string{
		"emit.deploys rate 2 host=box tags=env:dev interval=1s count=2",
		"emit.queue gauge 4.5 host=box tags=env:dev",
		"emit.job.time.min gauge 250 host=box tags=",
		"emit.job.time.max gauge 250 host=box tags=",
		"emit.job.time.count rate 1 host=box tags= interval=1s count=1",
		"emit.users gauge 1 host= tags=", // a set size is a fleet series on the root of the tier
		`event title="Deployed web" text="v1.2\nto prod" host=web1 time=2023-11-14T22:13:20Z priority=low alert_type=success aggregation_key="rel-42" source_type="cron" tags=env:dev`,
		`service_check name=emit.db.up status=warning host=db1 time=arrival message="lag 30s" tags=env:dev`,
		"emit.backup.time.max gauge " + took + " host=box tags=env:dev,exit_status:3",
		"emit.backup.time.count rate 1 host=box tags=env:dev,exit_status:3 interval=1s count=1",
		`service_check name=emit.backup.ok status=critical host=box time=arrival message="exit status 3" tags=`,
	}
	for _, w := range want {
		n := 0
		for _, l := range out {
			if l == w {
				n++
			}
		}
		if n != 1 {
			t.Errorf("console shows %d of\n  %s\nwant 1", n, w)
		}
	}
	if t.Failed() {
		var emitted []string
		for _, l := range out {
			if !strings.HasPrefix(l, "veneur.") {
				emitted = append(emitted, l)
			}
		}
		t.Logf("console lines (veneur.* left out):\n%s", strings.Join(emitted, "\n"))
	}
}
