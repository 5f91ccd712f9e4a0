// Package servertest runs a real server program, installed from a Debian
// package, for an end-to-end test: on a free loopback port, until the test
// ends, with its output in the test log when the test fails.
package servertest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/syncbuf"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// Require skips the test when binary is missing, except under CI
// (CI=true), where the test must run: .ci/run installs pkg.
func Require(t testing.TB, binary, pkg string) {
	t.Helper()
	if _, err := os.Stat(binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install -y %s): %v", binary, pkg, err)
		}
		t.Skipf("%s not installed (apt-get install -y %s)", binary, pkg)
	}
}

// Run starts binary with args(addr), addr a loopback host:port that was
// free a moment ago, and returns its base URL ("http://addr") once GET
// readyPath answers 200 within timeout. The process is killed when the
// test ends; a test that fails while it runs, or after, gets its output.
func Run(t testing.TB, binary string, args func(addr string) []string, readyPath string, timeout time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	name := filepath.Base(binary)
	out := &syncbuf.Buffer{}
	cmd := exec.Command(binary, args(addr)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-exited // "killed", unless it had died before
		if t.Failed() {
			t.Logf("%s (%v) output:\n%s", name, err, out)
		}
	})

	base := "http://" + addr
	await.Until(t, timeout, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited: %v\n%s", name, err, out)
		default:
		}
		resp, err := http.Get(base + readyPath)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%s: %d %s", readyPath, resp.StatusCode, body)
	})
	return base
}
