package console

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

func TestConsoleLines(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole("console", &out, 10*time.Second)
	err := c.Flush(context.Background(), []metric.Point{
		{Name: "deploys", Type: metric.RatePoint, Value: 0.1, Interval: 10 * time.Second, Host: "box", Tags: []string{"env:dev"}, Timestamp: 1700000000},
		{Name: "req.99percentile", Value: 12.5, Tags: []string{"a", "b:c"}, Timestamp: 1700000000},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.FlushEvents(context.Background(),
		[]metric.Event{{Title: "deploy", Text: "a\nb", Hostname: "box", Priority: "low", AlertType: "info", Timestamp: 1700000000}},
		[]metric.ServiceCheck{{Name: "db.up", Status: metric.CheckCritical, Hostname: "db", Message: "down", Tags: []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--- flush " + time.Unix(1700000000, 0).Format(time.TimeOnly) + " interval=10s points=2",
		"deploys rate 0.1 host=box tags=env:dev interval=10s count=1",
		"req.99percentile gauge 12.5 host= tags=a,b:c",
		`event title="deploy" text="a\nb" host=box time=2023-11-14T22:13:20Z priority=low alert_type=info aggregation_key="" source_type="" tags=`,
		`service_check name=db.up status=critical host=db time=arrival message="down" tags=x`,
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("console output\n got %q\nwant %q", got, want)
	}
}

// TestConsoleGroupsEachFlush: each flush opens with a header line (its
// clock, interval and number of points), the user's points come first and
// the process's own veneur.* points after them, each sorted by name, host
// and tags; the slice the other sinks share is left as it was.
func TestConsoleGroupsEachFlush(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole("console", &out, 10*time.Second)
	const flushed = 1700000030
	points := []metric.Point{
		{Name: "veneur.flush.points", Type: metric.RatePoint, Value: 0.5, Interval: 10 * time.Second, Host: "h", Timestamp: flushed},
		{Name: "zeta", Value: 1, Host: "h", Timestamp: flushed},
		{Name: "veneur.aggregate.flush_duration_ms", Value: 2, Host: "h", Timestamp: flushed},
		{Name: "alpha", Value: 2, Host: "h", Tags: []string{"b"}, Timestamp: flushed},
		{Name: "alpha.50percentile", Value: 3, Tags: []string{"a"}, Timestamp: flushed - 10}, // a fleet series, of the interval before
		{Name: "alpha", Value: 4, Host: "h", Tags: []string{"a"}, Timestamp: flushed},
	}
	before := slices.Clone(points)
	if err := c.Flush(context.Background(), points); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(context.Background(), points[:1]); err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(flushed, 0).Format(time.TimeOnly)
	want := []string{
		"--- flush " + clock + " interval=10s points=6",
		"alpha gauge 4 host=h tags=a",
		"alpha gauge 2 host=h tags=b",
		"alpha.50percentile gauge 3 host= tags=a",
		"zeta gauge 1 host=h tags=",
		"veneur.aggregate.flush_duration_ms gauge 2 host=h tags=",
		"veneur.flush.points rate 0.5 host=h tags= interval=10s count=5",
		"--- flush " + clock + " interval=10s points=1",
		"veneur.flush.points rate 0.5 host=h tags= interval=10s count=5",
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("console output\n got %q\nwant %q", got, want)
	}
	for i := range points {
		if points[i].Name != before[i].Name || points[i].Value != before[i].Value {
			t.Fatalf("the shared points were reordered: %v", points)
		}
	}
}
