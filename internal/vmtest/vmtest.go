// Package vmtest runs a real VictoriaMetrics (Debian's victoria-metrics
// package) for end-to-end tests of the Datadog sink: a Datadog-compatible
// receiver whose stored values can be read back.
package vmtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/servertest"
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
	servertest.Require(t, Binary, "victoria-metrics")
	dataDir := t.TempDir()
	return servertest.Run(t, Binary, func(addr string) []string {
		return []string{"-httpListenAddr", addr, "-storageDataPath", dataDir}
	}, "/health", 20*time.Second)
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
