package prometheus

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/veneur-lite/veneur-lite/internal/promname"
)

// timeSeries is one series of a remote-write request with its one sample.
type timeSeries struct {
	labels []promname.Label // sorted by name
	value  float64
	ms     int64 // sample timestamp, milliseconds since the epoch
}

// The few messages of remote write 1.0 this sink sends, with their field
// numbers from the protocol's types.proto:
//
//	message WriteRequest { repeated TimeSeries timeseries = 1; }
//	message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	message Label        { string name = 1; string value = 2; }
//	message Sample       { double value = 1; int64 timestamp = 2; }
//
// Written by hand because they are all the sink needs: the generated
// package (prompb) lives in the Prometheus server module. Fields holding
// their zero value are left out as proto3 encoders do, so the bytes equal
// those of the generated code (testdata/write_request.pb).
const (
	writeRequestTimeseries protowire.Number = 1
	timeSeriesLabels       protowire.Number = 1
	timeSeriesSamples      protowire.Number = 2
	labelName              protowire.Number = 1
	labelValue             protowire.Number = 2
	sampleValue            protowire.Number = 1
	sampleTimestamp        protowire.Number = 2
)

// appendWriteRequest appends the protobuf encoding of a WriteRequest
// holding series to b.
func appendWriteRequest(b []byte, series []timeSeries) []byte {
	for i := range series {
		ts := &series[i]
		b = protowire.AppendTag(b, writeRequestTimeseries, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(timeSeriesSize(ts)))
		for _, l := range ts.labels {
			b = protowire.AppendTag(b, timeSeriesLabels, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(labelSize(l)))
			b = appendString(b, labelName, l.Name)
			b = appendString(b, labelValue, l.Value)
		}
		b = protowire.AppendTag(b, timeSeriesSamples, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sampleSize(ts)))
		// -0 compares equal to 0 and is left out like it, as the
		// generated code does: the receiver reads 0.
		if ts.value != 0 {
			b = protowire.AppendTag(b, sampleValue, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(ts.value))
		}
		if ts.ms != 0 {
			b = protowire.AppendTag(b, sampleTimestamp, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(ts.ms))
		}
	}
	return b
}

// writeRequestSize is the length of appendWriteRequest's output.
func writeRequestSize(series []timeSeries) int {
	n := 0
	for i := range series {
		n += fieldSize(writeRequestTimeseries, timeSeriesSize(&series[i]))
	}
	return n
}

func timeSeriesSize(ts *timeSeries) int {
	n := fieldSize(timeSeriesSamples, sampleSize(ts))
	for _, l := range ts.labels {
		n += fieldSize(timeSeriesLabels, labelSize(l))
	}
	return n
}

func labelSize(l promname.Label) int {
	return stringSize(labelName, l.Name) + stringSize(labelValue, l.Value)
}

func sampleSize(ts *timeSeries) int {
	n := 0
	if ts.value != 0 {
		n += protowire.SizeTag(sampleValue) + protowire.SizeFixed64()
	}
	if ts.ms != 0 {
		n += protowire.SizeTag(sampleTimestamp) + protowire.SizeVarint(uint64(ts.ms))
	}
	return n
}

// fieldSize is the size of a length-delimited field whose content is n
// bytes long.
func fieldSize(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func stringSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return fieldSize(num, len(s))
}
