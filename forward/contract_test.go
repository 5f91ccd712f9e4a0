package forward

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/importsrv"
	"github.com/veneur-lite/veneur-lite/metric"
)

// recordingImporter stands in for a global's aggregator behind the real
// import handler.
type recordingImporter struct {
	mu       sync.Mutex
	imports  int
	counters map[string]float64
	digests  map[string]uint64
}

func (r *recordingImporter) Import(_ time.Time, _ time.Duration, series []metric.Series) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.imports++
	for _, s := range series {
		switch {
		case s.Kind == metric.Counter:
			r.counters[s.Key] += s.Value
		case s.Kind.IsHistogram():
			r.digests[s.Key] += uint64(s.Digest.Count())
		}
	}
}

// TestAgainstImportEndpoint runs the forwarder against the real importsrv
// handler, whose first answer is lost after it merged: the retry must be
// acknowledged as a duplicate, not merged again.
func TestAgainstImportEndpoint(t *testing.T) {
	if importPath != importsrv.Path {
		t.Fatalf("forward posts to %q, importsrv serves %q", importPath, importsrv.Path)
	}
	imp := &recordingImporter{counters: map[string]float64{}, digests: map[string]uint64{}}
	h := importsrv.New(importsrv.Config{Importer: imp, Log: testLogger(t)})
	var toLose atomic.Int32
	toLose.Store(1)
	mux := http.NewServeMux()
	mux.HandleFunc(importsrv.Path, func(w http.ResponseWriter, r *http.Request) {
		if toLose.Add(-1) >= 0 {
			h.ServeHTTP(httptest.NewRecorder(), r) // merged; the answer goes nowhere
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	forwardWithin(t, f, 5*time.Second, interval(0), []metric.Series{counterSeries("hits", 4), timerSeries("lat", 1, 2, 3)})

	imp.mu.Lock()
	defer imp.mu.Unlock()
	if imp.imports != 1 || imp.counters["counter|hits|"] != 4 || imp.digests["histogram|lat|"] != 3 {
		t.Errorf("%d imports, hits=%v, lat count=%d; want one import of 4 and 3",
			imp.imports, imp.counters["counter|hits|"], imp.digests["histogram|lat|"])
	}
	if s, a := heldCounts(f); s != 0 || a != 0 {
		t.Errorf("held %d series, %d ambiguous after delivery", s, a)
	}
}
