// Package promtest runs a real Prometheus (Debian's prometheus package) for
// end-to-end tests of the remote-write sink: a receiver whose stored
// samples can be read back through its HTTP query API.
package promtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/servertest"
)

// Binary is where Debian's prometheus package installs the server.
const Binary = "/usr/bin/prometheus"

// WritePath is the remote-write receiver's path under the base URL.
const WritePath = "/api/v1/write"

// Start runs Prometheus with its remote-write receiver on a free loopback
// port, a throwaway storage directory and no scrape targets, and returns
// its base URL once /-/ready answers. It skips when the binary is missing,
// except under CI (CI=true), where the test must run: .ci/run installs
// the package.
func Start(t testing.TB) string {
	t.Helper()
	servertest.Require(t, Binary, "prometheus")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	// Nothing to scrape: everything stored arrives by remote write. The
	// long interval keeps its own rule and scrape loops quiet.
	if err := os.WriteFile(cfgPath, []byte("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return servertest.Run(t, Binary, func(addr string) []string {
		return []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--web.enable-remote-write-receiver",
		}
	}, "/-/ready", 30*time.Second)
}

// Series is one series of a range-vector query: its labels (__name__
// included) and its stored samples, oldest first.
type Series struct {
	Metric     map[string]string
	Values     []float64
	Timestamps []int64 // milliseconds
}

// Raw returns every sample stored in the window before at of the series
// matching selector (such as `{__name__=~"x_.*"}`), sorted by name and
// then labels. It runs the instant query selector[window] at the given
// time, which Prometheus answers with the raw samples.
func Raw(base, selector string, window time.Duration, at time.Time) ([]Series, error) {
	q := fmt.Sprintf("%s[%ds]", selector, int(window.Seconds()))
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := query(base, q, at, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("query %s: result type %q, want matrix", q, data.ResultType)
	}
	out := make([]Series, 0, len(data.Result))
	for _, r := range data.Result {
		s := Series{Metric: r.Metric}
		for _, pair := range r.Values {
			ts, v, err := samplePair(pair)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", q, err)
			}
			s.Timestamps = append(s.Timestamps, ts)
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Series) int {
		return strings.Compare(labelString(a.Metric), labelString(b.Metric))
	})
	return out, nil
}

// samplePair decodes [<unix seconds>, "<value>"].
func samplePair(pair [2]any) (ms int64, v float64, err error) {
	sec, ok := pair[0].(float64)
	str, ok2 := pair[1].(string)
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("sample %v", pair)
	}
	// Prometheus prints values with strconv 'f' -1 or as NaN/+Inf/-Inf,
	// which ParseFloat reads back exactly.
	v, err = strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("sample value %q: %w", str, err)
	}
	return int64(sec*1000 + 0.5), v, nil
}

// labelString renders labels sorted by name, __name__ first.
func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(m["__name__"])
	for _, k := range keys {
		fmt.Fprintf(&b, ",%s=%q", k, m[k])
	}
	return b.String()
}

func query(base, q string, at time.Time, data any) error {
	params := url.Values{
		"query": {q},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}
	resp, err := http.Get(base + "/api/v1/query?" + params.Encode())
	if err != nil {
		return fmt.Errorf("query %s: %w", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("query %s: read answer: %w", q, err)
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("query %s: %d %s: %w", q, resp.StatusCode, body, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("query %s: %s: %s", q, env.Status, env.Error)
	}
	// Samples arrive as [seconds, "value"] pairs: the seconds decode as a
	// float64, which holds milliseconds exactly enough to round back.
	return json.Unmarshal(env.Data, data)
}
