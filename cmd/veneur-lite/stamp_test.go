package main

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// TestBinaryFleetSeriesCarryTheirIntervalsTimestamp: a local and a global,
// both built binaries with a Datadog sink, one intake. The local's
// dd.h2.count and the global's dd.h2.50percentile come from the same
// samples, so they carry the same timestamp (the end of the interval the
// samples were in), although the global flushes one interval later.
func TestBinaryFleetSeriesCarryTheirIntervalsTimestamp(t *testing.T) {
	intake := &recordingIntake{}
	srv := httptest.NewServer(intake)
	t.Cleanup(srv.Close)
	start := func(hostname, forward string) (udp, httpAddr string) {
		udp, httpAddr = freePort(t, "udp"), freePort(t, "tcp")
		cfg := fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 2s
hostname: %s
metric_sinks:
  - kind: datadog
    config:
      api_key: not-a-key
      api_hostname: %s
`, udp, httpAddr, hostname, srv.URL)
		if forward != "" {
			cfg += "forward_address: http://" + forward + "\n"
		}
		startBinary(t, cfg)
		waitHealthy(t, httpAddr)
		return udp, httpAddr
	}
	_, globalHTTP := start("global-1", "")
	localUDP, _ := start("local-1", globalHTTP)

	c, err := net.Dial("udp", localUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("dd.h2:5|h\ndd.h2:7|h\n")); err != nil {
		t.Fatal(err)
	}

	type point struct {
		host string
		ts   float64
	}
	find := func() map[string][]point {
		found := map[string][]point{}
		for _, body := range intake.snapshot() {
			zr, err := zlib.NewReader(bytes.NewReader(body.data))
			if err != nil {
				t.Fatal(err)
			}
			var payload struct {
				Series []struct {
					Metric string       `json:"metric"`
					Host   string       `json:"host"`
					Points [][2]float64 `json:"points"`
				} `json:"series"`
			}
			if err := json.NewDecoder(zr).Decode(&payload); err != nil {
				t.Fatal(err)
			}
			for _, s := range payload.Series {
				for _, p := range s.Points {
					found[s.Metric] = append(found[s.Metric], point{s.Host, p[0]})
				}
			}
		}
		return found
	}
	var found map[string][]point
	await.Until(t, 20*time.Second, func() (bool, string) {
		found = find()
		return len(found["dd.h2.count"]) > 0 && len(found["dd.h2.50percentile"]) > 0, fmt.Sprintf("intake holds dd.h2.count %v, dd.h2.50percentile %v", found["dd.h2.count"], found["dd.h2.50percentile"])
	})
	count, p50 := found["dd.h2.count"], found["dd.h2.50percentile"]
	if len(count) != 1 || len(p50) != 1 || count[0].host != "local-1" || p50[0].host != "" {
		t.Fatalf("want one local count and one fleet p50: count %v, p50 %v", count, p50)
	}
	if count[0].ts != p50[0].ts {
		t.Errorf("dd.h2.count (local) at %v, dd.h2.50percentile (global, same samples) at %v: want the same timestamp", count[0].ts, p50[0].ts)
	}
}
