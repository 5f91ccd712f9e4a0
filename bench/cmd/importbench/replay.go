package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/wire"
)

// replayer posts the templates' captured batches to the globals, as the
// locals of a fleet would at the end of an interval.
type replayer struct {
	templates   []*template
	concurrency int
	client      *http.Client
}

func newReplayer(templates []*template, concurrency int) *replayer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every worker keeps its connection from one request to the next, as
	// a local's forwarder keeps its connections across intervals.
	tr.MaxIdleConnsPerHost = concurrency
	tr.DisableCompression = true
	return &replayer{
		templates:   templates,
		concurrency: concurrency,
		client:      &http.Client{Transport: tr, Timeout: requestTimeout},
	}
}

// requestTimeout bounds one POST: a batch of 5,000 digests takes a global
// tens of milliseconds, and a global that takes this long has failed.
const requestTimeout = time.Minute

// replayStats is what one replay sent and what came back, per global.
type replayStats struct {
	Posted   []int64 // digests in the batches posted, by global index
	OK       []int64 // digests in the batches answered 200, by global index
	Requests int64
	Non200   int64
	// FirstFailure describes the first answer that was not 200.
	FirstFailure string
	Wall         time.Duration
}

// replay posts the batches of locals first..first+n-1 to gs: local j sends
// template j mod K's requests for member g to the global of index g, each
// with a fresh idempotency key and the captured headers, at most
// r.concurrency requests at a time over all of gs. gs may be some of the
// globals only. It returns an error only when a request could not be made
// at all; an answer other than 200 is counted.
func (r *replayer) replay(ctx context.Context, gs []*global, first, n int) (replayStats, error) {
	members := len(r.templates[0].Members)
	st := replayStats{Posted: make([]int64, members), OK: make([]int64, members)}
	var okDigests = make([]atomic.Int64, members)
	var requests, non200 atomic.Int64
	var failOnce sync.Once
	run, err := newRunID()
	if err != nil {
		return st, err
	}
	began := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.concurrency)
	// Locals in turn, each to every global: what all the locals' forwards
	// at the end of an interval look like to the tier.
	for j := first; j < first+n && gctx.Err() == nil; j++ {
		t := r.templates[j%len(r.templates)]
		for _, gl := range gs {
			gi := gl.index
			for b, req := range t.Members[gi] {
				st.Posted[gi] += int64(req.series)
				key := fmt.Sprintf("ib-%s-l%d-g%d-b%d", run, j, gi, b)
				g.Go(func() error {
					requests.Add(1)
					code, msg, err := r.post(gctx, gl.URL(), key, req)
					if err != nil {
						return fmt.Errorf("local %d to global %d: %w", j, gi, err)
					}
					if code != http.StatusOK {
						non200.Add(1)
						failOnce.Do(func() {
							st.FirstFailure = fmt.Sprintf("local %d to global %d: %d %s", j, gi, code, msg)
						})
						return nil
					}
					okDigests[gi].Add(int64(req.series))
					return nil
				})
			}
		}
	}
	err = g.Wait()
	st.Wall = time.Since(began)
	st.Requests, st.Non200 = requests.Load(), non200.Load()
	for i := range okDigests {
		st.OK[i] = okDigests[i].Load()
	}
	if err == nil {
		err = ctx.Err() // the loop above stops early when ctx ends
	}
	return st, err
}

// post sends one captured batch and returns the status and, for a
// failure, the start of the answer.
func (r *replayer) post(ctx context.Context, url, key string, req request) (int, string, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/import", bytes.NewReader(req.body))
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	for name, vs := range req.header {
		hr.Header[name] = vs
	}
	hr.Header.Set(wire.HeaderIdempotencyKey, key)
	resp, err := r.client.Do(hr)
	if err != nil {
		return 0, "", fmt.Errorf("post %s/import: %w", url, err)
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return 0, "", fmt.Errorf("post %s/import: read answer: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, "", nil
	}
	return resp.StatusCode, string(bytes.TrimSpace(msg)), nil
}

// add accumulates o, a replay of other globals, into st.
func (st *replayStats) add(o replayStats) {
	for i := range o.Posted {
		st.Posted[i] += o.Posted[i]
		st.OK[i] += o.OK[i]
	}
	st.Requests += o.Requests
	st.Non200 += o.Non200
	if st.FirstFailure == "" {
		st.FirstFailure = o.FirstFailure
	}
	st.Wall += o.Wall
}

// newRunID names one replay in its idempotency keys, so that no two
// replays, warm-up included, ever share a key.
func newRunID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
