// Package console is the sink that prints each flush as readable lines on
// a writer, stdout in the daemon.
package console

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
)

// Console writes one human-readable line per flushed point, event and
// service check. It is the sink used when none is configured, so that
// `echo "deploys:1|c" | nc -u -w0 127.0.0.1 8125` is visible on stdout.
//
// Each flush starts with a header line, and its points are sorted: the
// user's first, then the process's own veneur.* ones, each by name, host
// and tags, so that one interval reads as a block.
type Console struct {
	name     string
	interval time.Duration
	mu       sync.Mutex // one flush's lines stay together
	out      io.Writer
	order    []int // scratch for sorting, guarded by mu
}

var (
	_ sinks.Sink      = (*Console)(nil)
	_ sinks.EventSink = (*Console)(nil)
)

// NewConsole returns a console sink writing to out, for flushes every
// interval (shown in each flush's header).
func NewConsole(name string, out io.Writer, interval time.Duration) *Console {
	return &Console{name: name, out: out, interval: interval}
}

// Name returns the configured sink name.
func (c *Console) Name() string { return c.name }

// Flush prints a header and then each point:
//
//	--- flush 22:36:30 interval=10s points=<number of points>
//	<name> <type> <value> host=<host> tags=<t1,t2> [interval=10s count=<n>]
//
// The header's clock is the flush time (the latest point's timestamp) in
// local time. A rate also shows the count it came from, since that is
// what was sent. The points slice is shared with the other sinks: it is
// sorted through an index, never in place.
func (c *Console) Flush(_ context.Context, points []metric.Point) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := bufio.NewWriter(c.out)
	var latest int64
	c.order = c.order[:0]
	for i := range points {
		latest = max(latest, points[i].Timestamp)
		c.order = append(c.order, i)
	}
	flushed := time.Now()
	if latest > 0 {
		flushed = time.Unix(latest, 0)
	}
	line := fmt.Appendf(nil, "--- flush %s interval=%s points=%d\n", flushed.Format(time.TimeOnly), c.interval, len(points))
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("console sink: %w", err)
	}
	slices.SortStableFunc(c.order, func(i, j int) int { return comparePoints(&points[i], &points[j]) })
	for _, i := range c.order {
		line = appendConsoleLine(line[:0], &points[i])
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("console sink: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("console sink: %w", err)
	}
	return nil
}

// comparePoints orders the user's points before the process's own, then
// by name, host and tags.
func comparePoints(a, b *metric.Point) int {
	aSelf, bSelf := strings.HasPrefix(a.Name, "veneur."), strings.HasPrefix(b.Name, "veneur.")
	if aSelf != bSelf {
		if aSelf {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Host, b.Host), slices.Compare(a.Tags, b.Tags))
}

// appendConsoleLine appends the console rendering of p to dst.
func appendConsoleLine(dst []byte, p *metric.Point) []byte {
	dst = append(dst, p.Name...)
	dst = append(dst, ' ')
	dst = append(dst, p.Type.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendFloat(dst, p.Value, 'g', -1, 64)
	dst = append(dst, " host="...)
	dst = append(dst, p.Host...)
	dst = append(dst, " tags="...)
	for i, t := range p.Tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t...)
	}
	if p.Type == metric.RatePoint {
		dst = append(dst, " interval="...)
		dst = append(dst, p.Interval.String()...)
		dst = append(dst, " count="...)
		dst = strconv.AppendFloat(dst, p.Value*p.Interval.Seconds(), 'g', -1, 64)
	}
	return dst
}

// FlushEvents prints events and service checks, one line each.
func (c *Console) FlushEvents(_ context.Context, events []metric.Event, checks []metric.ServiceCheck) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := bufio.NewWriter(c.out)
	for _, e := range events {
		fmt.Fprintf(w, "event title=%q text=%q host=%s time=%s priority=%s alert_type=%s aggregation_key=%q source_type=%q tags=%s\n",
			e.Title, e.Text, e.Hostname, unixOrNow(e.Timestamp), e.Priority, e.AlertType, e.AggregationKey, e.SourceType, strings.Join(e.Tags, ","))
	}
	for _, sc := range checks {
		fmt.Fprintf(w, "service_check name=%s status=%s host=%s time=%s message=%q tags=%s\n",
			sc.Name, statusName(sc.Status), sc.Hostname, unixOrNow(sc.Timestamp), sc.Message, strings.Join(sc.Tags, ","))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("console sink: %w", err)
	}
	return nil
}

func unixOrNow(ts int64) string {
	if ts == 0 {
		return "arrival"
	}
	return time.Unix(ts, 0).UTC().Format(time.RFC3339)
}

func statusName(s metric.CheckStatus) string {
	switch s {
	case metric.CheckOK:
		return "ok"
	case metric.CheckWarning:
		return "warning"
	case metric.CheckCritical:
		return "critical"
	default:
		return "unknown"
	}
}
