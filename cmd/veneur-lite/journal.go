package main

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/importsrv"
	"github.com/veneur-lite/veneur-lite/journal"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// openJournal opens the import journal in dir and replays it through
// imports, which must not serve yet; appends then go to the journal that
// returns.
func openJournal(dir string, maxBytes int64, imports *importsrv.Handler, ref *journalRef, reg *telemetry.Registry, log *slog.Logger) (*journal.Journal, error) {
	began := time.Now()
	j, err := journal.Open(journal.Options{Dir: dir, MaxBytes: maxBytes, Stats: reg, Log: log}, imports.Replay)
	if err != nil {
		return nil, fmt.Errorf("import_journal_dir: %w", err)
	}
	ref.j = j
	r := j.Replayed()
	log.Info("import journal replayed", "dir", dir, "segments", r.Segments, "records", r.Records,
		"bytes", r.Bytes, "corrupt", r.Corrupt, "failed", r.Failed, "seconds", time.Since(began).Seconds())
	return j, nil
}

// journalRef lets the import handler be built before the journal it
// appends to, which its Replay fills at open.
type journalRef struct{ j *journal.Journal }

func (r *journalRef) Append(window time.Time, rec *journal.Record) error {
	return r.j.Append(window, rec)
}

// journaledFleet is the global windows with a journal: the windows a flush
// took are forgotten in the journal once every output is done with them
// (flusher.Settler), in the order of the flushes, so that a flush whose
// outputs finish early never forgets an earlier one still being sent.
type journaledFleet struct {
	*global.Windows
	journal *journal.Journal
	log     *slog.Logger

	mu      sync.Mutex
	pending []*pendingFlush // oldest first
}

type pendingFlush struct {
	through time.Time // the start of the last window the flush took
	done    bool
}

// FlushSettle flushes the due windows (Windows.FlushWindows).
func (f *journaledFleet) FlushSettle(now time.Time, interval time.Duration) ([]metric.Point, []metric.Series, func()) {
	points, forward, starts := f.FlushWindows(now, interval)
	if len(starts) == 0 {
		return points, forward, nil
	}
	p := &pendingFlush{through: starts[len(starts)-1]}
	f.mu.Lock()
	f.pending = append(f.pending, p)
	f.mu.Unlock()
	return points, forward, func() { f.settle(p) }
}

func (f *journaledFleet) settle(p *pendingFlush) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.done = true
	var through time.Time
	for len(f.pending) > 0 && f.pending[0].done {
		through = f.pending[0].through
		f.pending = f.pending[1:]
	}
	if through.IsZero() {
		return
	}
	if err := f.journal.Forget(through); err != nil {
		// Its windows stay on disk: a restart would replay (and flush)
		// them again. Appends go on.
		f.log.Error("import journal: flushed windows not forgotten", "through", through, "error", err)
	}
}
