package console

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

func TestConsoleLines(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole("console", &out)
	err := c.Flush(context.Background(), []metric.Point{
		{Name: "deploys", Type: metric.RatePoint, Value: 0.1, Interval: 10 * time.Second, Host: "box", Tags: []string{"env:dev"}},
		{Name: "req.99percentile", Value: 12.5, Tags: []string{"a", "b:c"}},
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
		"deploys rate 0.1 host=box tags=env:dev interval=10s count=1",
		"req.99percentile gauge 12.5 host= tags=a,b:c",
		`event title="deploy" text="a\nb" host=box time=2023-11-14T22:13:20Z priority=low alert_type=info aggregation_key="" source_type="" tags=`,
		`service_check name=db.up status=critical host=db time=arrival message="down" tags=x`,
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("console output\n got %q\nwant %q", got, want)
	}
}
