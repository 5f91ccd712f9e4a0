package top

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
)

// ANSI escapes of the live view: nothing beyond what every terminal
// since the VT100 knows, plus hiding the cursor.
const (
	home       = "\x1b[H"
	clearLine  = "\x1b[K" // to the end of the line
	clearBelow = "\x1b[J" // to the end of the screen
	clearAll   = "\x1b[H\x1b[2J"
	hideCursor = "\x1b[?25l"
	showCursor = "\x1b[?25h"
)

// Keys of the live view.
const (
	keySort  = 's'
	keyMore  = '+'
	keyMore2 = '=' // + without shift
	keyLess  = '-'
	keyLess2 = '_'
	keyQuit  = 'q'
	keyQuit2 = 'Q'
	ctrlC    = 0x03 // raw mode delivers it as a byte, not SIGINT
	ctrlD    = 0x04
)

// Bounds of -n and the step of + and -.
const (
	minN  = 1
	maxN  = 10_000 // the endpoint's own limit
	stepN = 5
)

// fetchFunc reads a snapshot: (*Client).Fetch, or a fake in tests.
type fetchFunc func(ctx context.Context, n int, order string) (aggregate.SeriesStats, []byte, error)

// screen is the live view's terminal.
type screen struct {
	out io.Writer
	// keys delivers the bytes typed; it is closed when the input ends,
	// which quits if quitOnEOF (a terminal hung up) and otherwise just
	// leaves the view without keys (input from /dev/null).
	keys      <-chan byte
	quitOnEOF bool
	// size returns the screen's width and height.
	size func() (width, height int)
	// resized ticks when the size changed (SIGWINCH); nil if never.
	resized <-chan struct{}
}

// draw paints lines from the top left, clearing what the previous frame
// left to their right and below them. The last line has no line end, so
// a full screen does not scroll.
func (s screen) draw(lines []string) error {
	var b strings.Builder
	b.WriteString(home)
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\r\n") // raw mode: no \n → \r\n translation
		}
		b.WriteString(l)
		b.WriteString(clearLine)
	}
	b.WriteString(clearBelow)
	_, err := io.WriteString(s.out, b.String())
	return err
}

// live runs the view until q, Ctrl-C, ctx's end or a write error. It
// fetches every interval, and at once after a key changes the order or
// n; one fetch is in flight at most, so a slow instance is never asked
// twice at a time, and keys are answered while it thinks.
func live(ctx context.Context, fetch fetchFunc, o Options, display string, scr screen) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		st    aggregate.SeriesStats
		err   error
		order string
	}
	results := make(chan result, 1) // the one fetch in flight never blocks on it
	var (
		inflight, stale bool
		snap            *aggregate.SeriesStats
		lastErr         error
	)
	fetchNow := func() {
		if inflight {
			stale = true // asked for with the old order or n: ask again after it
			return
		}
		inflight, stale = true, false
		n, order := o.N, o.Sort
		go func() {
			st, _, err := fetch(ctx, n, order)
			results <- result{st, err, order}
		}()
	}
	draw := func() error {
		w, h := scr.size()
		v := View{Addr: display, Sort: o.Sort, N: o.N, Width: max(w-1, 1), Keys: true}
		var lines []string
		switch {
		case lastErr != nil:
			lines = RenderError(lastErr, "retrying every "+o.Interval.String(), v)
		case snap == nil:
			lines = []string{Fit("veneur-lite top  "+display, v.Width), "", "reading " + display + " …"}
		default:
			v.Rows = max(h-Chrome(*snap), 1)
			lines = Render(*snap, v)
		}
		return scr.draw(lines[:min(len(lines), max(h, 1))])
	}

	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
	fetchNow()
	if err := draw(); err != nil {
		return err
	}
	keys := scr.keys
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			fetchNow()
			continue // drawn when the answer comes
		case r := <-results:
			inflight = false
			if r.err != nil {
				lastErr = r.err
			} else {
				lastErr, snap = nil, &r.st
				if r.order != o.Sort {
					sortNames(snap.Names, o.Sort)
				}
			}
			if stale {
				fetchNow()
			}
		case <-scr.resized:
		case k, ok := <-keys:
			if !ok {
				if scr.quitOnEOF {
					return nil
				}
				keys = nil
				continue
			}
			switch k {
			case keyQuit, keyQuit2, ctrlC, ctrlD:
				return nil
			case keySort:
				o.Sort = nextSort(o.Sort)
				if snap != nil {
					// Shown in the new order at once; the endpoint's
					// top names for it follow.
					re := *snap
					re.Names = slices.Clone(snap.Names)
					sortNames(re.Names, o.Sort)
					snap = &re
				}
			case keyMore, keyMore2:
				o.N = min(o.N+stepN, maxN)
			case keyLess, keyLess2:
				o.N = max(o.N-stepN, minN)
			default:
				continue
			}
			fetchNow()
		}
		if err := draw(); err != nil {
			return err
		}
	}
}

// readKeys sends the bytes read from in until it ends, then closes
// keys. It runs until in ends: a terminal's read cannot be interrupted,
// and the process exits after the view anyway.
func readKeys(in io.Reader, keys chan<- byte) {
	defer close(keys)
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			keys <- b
		}
		if err != nil {
			return
		}
	}
}
