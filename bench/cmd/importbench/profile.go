package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"time"
)

// profileRun replays the largest N once more, outside the results, while
// global 0 profiles itself for about as long as that replay took in the
// sweep: the profile shows what bounds the import, and taking it costs the
// global CPU that must not be in the figures.
func (h *harness) profileRun(ctx context.Context, points []point) error {
	n := slices.Max(h.opts.locals)
	seconds := 10
	for _, p := range points {
		if p.Locals == n && p.Runs > 0 {
			seconds = int(min(max(math.Ceil(p.ReplaySeconds.Median), 1), 60))
		}
	}
	h.profile = &profileRequest{path: h.opts.profile, seconds: seconds}
	defer func() { h.profile = nil }()
	h.log.Info("profile run", "locals", n, "profile_seconds", seconds, "to", h.opts.profile)
	r := h.runOne(ctx, n, 0)
	logRun(h.log, &r)
	if !r.ok() {
		return fmt.Errorf("profile run: %s", r.Err)
	}
	return nil
}

// profileRequest asks measure to profile global 0 during the replay.
type profileRequest struct {
	path    string
	seconds int
}

// fetch takes a CPU profile of the global at baseURL (loopback clients may
// use /debug/pprof/) and writes it to the file.
func (p *profileRequest) fetch(ctx context.Context, baseURL string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.seconds)*time.Second+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", baseURL, p.seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile: GET %s: %s: %s", url, resp.Status, msg)
	}
	f, err := os.Create(p.path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile: write %s: %w", p.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile: write %s: %w", p.path, err)
	}
	return nil
}
