// Package vmtest runs a real VictoriaMetrics (Debian's victoria-metrics
// package) for end-to-end tests of the Datadog sink: a Datadog-compatible
// receiver whose stored values can be read back.
package vmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// Binary is where Debian's victoria-metrics package installs the
// single-node server.
const Binary = "/usr/bin/victoria-metrics"

// Start runs VictoriaMetrics on a free loopback port with a throwaway
// storage directory and returns its base URL once /health answers. It
// skips when the binary is missing, except under CI (CI=true), where the
// test must run: .ci/run installs the package.
func Start(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install -y victoria-metrics): %v", Binary, err)
		}
		t.Skipf("%s not installed (apt-get install -y victoria-metrics)", Binary)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	out := &lockedBuffer{}
	cmd := exec.Command(Binary, "-httpListenAddr", addr, "-storageDataPath", t.TempDir())
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
			t.Logf("victoria-metrics (%v) output:\n%s", err, out)
		}
	})

	base := "http://" + addr
	await.Until(t, 20*time.Second, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("victoria-metrics exited: %v\n%s", err, out)
		default:
		}
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("/health: %d %s", resp.StatusCode, body)
	})
	return base
}

// Series is one line of /api/v1/export: a series and its raw samples,
// oldest first.
type Series struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// Export returns the stored samples of the series matching selector,
// sorted by metric name.
func Export(base, selector string) ([]Series, error) {
	// Make freshly ingested samples searchable now rather than within a
	// second or so.
	if resp, err := http.Get(base + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/api/v1/export?" + url.Values{"match[]": {selector}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export: %d %s", resp.StatusCode, b)
	}
	var out []Series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s Series
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("export line %q: %w", sc.Text(), err)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Series) int { return strings.Compare(a.Metric["__name__"], b.Metric["__name__"]) })
	return out, sc.Err()
}

// lockedBuffer collects a child process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
