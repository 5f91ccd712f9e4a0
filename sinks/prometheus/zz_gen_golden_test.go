package prometheus

import (
	"os"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func TestGenGolden(t *testing.T) {
	var req prompb.WriteRequest
	for _, c := range goldenCases {
		var ls []prompb.Label
		for i := 0; i < len(c.labels); i += 2 {
			ls = append(ls, prompb.Label{Name: c.labels[i], Value: c.labels[i+1]})
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: c.value, Timestamp: c.ms}}})
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("testdata/write_request.pb", b, 0o644); err != nil {
		t.Fatal(err)
	}
}
