package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fleet "github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/importsrv"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// The templates hold what a real Forwarder sent, split by member the same
// way for every template; replayed to real import handlers (in process
// here; the smoke test runs the binary), every batch is merged once, under
// its own key, and a replayed local counts as many digests as it forwarded.
func TestTemplatesReplayIntoImportHandlers(t *testing.T) {
	o := options{templates: 3, series: 200, samples: 50, globals: 2, interval: 10 * time.Second, seed: 7, concurrency: 4}
	quiet := slog.New(slog.DiscardHandler)
	start := time.Now().Truncate(o.interval).Add(-o.interval)
	templates, st, err := buildTemplates(context.Background(), o, start, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(templates) != 3 || st.MemberShares[0]+st.MemberShares[1] != 200 || st.MemberShares[0] == 0 || st.MemberShares[1] == 0 {
		t.Fatalf("templates %d, shares %v", len(templates), st.MemberShares)
	}
	if st.Encoding != "zstd" || st.BytesPerDigest < 50 {
		t.Errorf("encoding %q, %.0f B per digest", st.Encoding, st.BytesPerDigest)
	}
	for _, tp := range templates {
		for m, reqs := range tp.Members {
			for _, r := range reqs {
				if r.header.Get("Content-Type") == "" || r.header.Get("Content-Encoding") != "zstd" || r.header.Get("Idempotency-Key") != "" {
					t.Errorf("template %d member %d: headers %v", tp.Index, m, r.header)
				}
			}
		}
	}

	var gs []*global
	var regs []*telemetry.Registry
	for i := range o.globals {
		reg := telemetry.NewRegistry()
		windows, err := fleet.New(fleet.Config{Interval: o.interval, Stats: reg})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle(importsrv.Path, importsrv.New(importsrv.Config{Importer: windows, Stats: reg, Log: quiet}))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		gs = append(gs, &global{index: i, httpAddr: strings.TrimPrefix(srv.URL, "http://")})
		regs = append(regs, reg)
	}
	rp := newReplayer(templates, o.concurrency)
	const locals = 7 // more than the templates: some are replayed twice
	rs, err := rp.replay(context.Background(), gs, 0, locals)
	if err != nil || rs.Non200 != 0 {
		t.Fatalf("replay: %v, %d not 200 (%s)", err, rs.Non200, rs.FirstFailure)
	}
	for i, reg := range regs {
		want := int64(locals * st.MemberShares[i])
		if rs.Posted[i] != want || rs.OK[i] != want {
			t.Errorf("global %d: posted %d, acknowledged %d, want %d", i, rs.Posted[i], rs.OK[i], want)
		}
		if got := reg.Counter("import.series").Load(); got != uint64(want) {
			t.Errorf("global %d: import.series %d, want %d", i, got, want)
		}
		if d := reg.Counter("import.duplicates").Load(); d != 0 {
			t.Errorf("global %d: %d duplicates", i, d)
		}
	}

	// One global alone (-in-turn) gets its share, under new keys.
	one, err := rp.replay(context.Background(), gs[1:], 0, 2)
	if err != nil || one.Non200 != 0 || one.Posted[0] != 0 || one.Posted[1] != int64(2*st.MemberShares[1]) {
		t.Fatalf("global 1 alone: %+v, %v", one, err)
	}
	if got, want := regs[1].Counter("import.series").Load(), uint64((locals+2)*st.MemberShares[1]); got != want {
		t.Errorf("global 1: import.series %d, want %d", got, want)
	}
	rs.add(one)
	if rs.Posted[1] != int64((locals+2)*st.MemberShares[1]) || rs.Requests != one.Requests+int64(locals*len(templates[0].Members[0])+locals*len(templates[0].Members[1])) {
		t.Errorf("added: %+v", rs)
	}
}
