package prometheus

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The test receivers decode with the protobuf library's own decoder,
// driven by a schema restated here from remote write 1.0's types.proto,
// not with the sink's encoder: a wrong field number, wire type or length
// on either side fails the decode or the comparison. The parts the sink
// never sends (metadata, exemplars, histograms) are declared so that
// sending one is seen and counted, with their contents left opaque.

// wireRequest is a decoded prometheus.WriteRequest.
type wireRequest struct {
	Timeseries []wireSeries
	Metadata   int
}

type wireSeries struct {
	Labels                []wireLabel
	Samples               []wireSample
	Exemplars, Histograms int
}

type wireLabel struct{ Name, Value string }

type wireSample struct {
	Value     float64
	Timestamp int64
}

var writeRequestType = func() protoreflect.MessageType {
	repeated := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	optional := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	message := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	field := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ.Enum(), JsonName: proto.String(name)}
		if msg != "" {
			f.TypeName = proto.String(".prometheus." + msg)
		}
		return f
	}
	msg := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("veneur_lite_test/remote_write.proto"),
		Package: proto.String("prometheus"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			msg("WriteRequest",
				field("timeseries", 1, repeated, *message, "TimeSeries"),
				field("metadata", 3, repeated, *message, "MetricMetadata")),
			msg("TimeSeries",
				field("labels", 1, repeated, *message, "Label"),
				field("samples", 2, repeated, *message, "Sample"),
				field("exemplars", 3, repeated, *message, "Exemplar"),
				field("histograms", 4, repeated, *message, "Histogram")),
			msg("Label",
				field("name", 1, optional, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
				field("value", 2, optional, descriptorpb.FieldDescriptorProto_TYPE_STRING, "")),
			msg("Sample",
				field("value", 1, optional, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, ""),
				field("timestamp", 2, optional, descriptorpb.FieldDescriptorProto_TYPE_INT64, "")),
			msg("MetricMetadata"),
			msg("Exemplar"),
			msg("Histogram"),
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessageType(fd.Messages().ByName("WriteRequest"))
}()

// decodeWriteRequest decodes raw strictly: malformed protobuf, strings
// that are not UTF-8 (proto3 requires it) and fields the schema does not
// know are errors.
func decodeWriteRequest(raw []byte) (wireRequest, error) {
	m := writeRequestType.New().Interface()
	if err := proto.Unmarshal(raw, m); err != nil {
		return wireRequest{}, err
	}
	req := m.ProtoReflect()
	if err := noUnknown(req); err != nil {
		return wireRequest{}, err
	}
	out := wireRequest{Metadata: field(req, "metadata").List().Len()}
	tss, err := messages(field(req, "timeseries"))
	if err != nil {
		return wireRequest{}, err
	}
	for _, ts := range tss {
		s := wireSeries{
			Exemplars:  field(ts, "exemplars").List().Len(),
			Histograms: field(ts, "histograms").List().Len(),
		}
		labels, err := messages(field(ts, "labels"))
		if err != nil {
			return wireRequest{}, err
		}
		for _, l := range labels {
			s.Labels = append(s.Labels, wireLabel{Name: field(l, "name").String(), Value: field(l, "value").String()})
		}
		samples, err := messages(field(ts, "samples"))
		if err != nil {
			return wireRequest{}, err
		}
		for _, sm := range samples {
			s.Samples = append(s.Samples, wireSample{Value: field(sm, "value").Float(), Timestamp: field(sm, "timestamp").Int()})
		}
		out.Timeseries = append(out.Timeseries, s)
	}
	return out, nil
}

func field(m protoreflect.Message, name protoreflect.Name) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(name))
}

// messages returns the messages of a repeated field, refusing any that
// carries a field the schema does not know.
func messages(v protoreflect.Value) ([]protoreflect.Message, error) {
	list := v.List()
	out := make([]protoreflect.Message, list.Len())
	for i := range out {
		out[i] = list.Get(i).Message()
		if err := noUnknown(out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func noUnknown(m protoreflect.Message) error {
	if u := m.GetUnknown(); len(u) > 0 {
		return fmt.Errorf("%s: %d bytes of unknown fields", m.Descriptor().Name(), len(u))
	}
	return nil
}
