package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// veneurPolicy is what Load does with a key of Stripe Veneur's config that
// veneur-lite has no key of that name for.
type veneurPolicy uint8

const (
	// veneurMapped: the value goes to veneur-lite's equivalent (to), with
	// a notice naming it.
	veneurMapped veneurPolicy = iota
	// veneurIgnored: the key only tunes something veneur-lite does not
	// have; accepted whatever its value, with a notice.
	veneurIgnored
	// veneurIgnoredIfOff: an empty, false or 0 value asks for nothing
	// veneur-lite lacks and is accepted with a notice; any other value is
	// an error, as the feature it asks for does not exist here.
	veneurIgnoredIfOff
	// veneurRejected: any value is an error (the behaviour is fixed here).
	veneurRejected
)

// veneurKey is one row of the table of Veneur's keys (docs/configuration.md
// "Coming from Veneur").
type veneurKey struct {
	policy veneurPolicy
	// to is, for a mapped key, where its value goes: a top-level key, or
	// "datadog.<key>" for the config of a datadog sink made for it.
	to string
	// why says what veneur-lite does instead and, for an error, what to do.
	why string
}

// Reasons shared by several of Veneur's keys.
const (
	whyTraces = "veneur-lite takes no traces (SSF spans)"
	whyS3     = "veneur-lite has no S3 archive"
	whyGRPC   = "veneur-lite has no gRPC: imports arrive over HTTP at http_address"
	whyInflux = "veneur-lite has no InfluxDB sink (prometheus_remote_write reaches InfluxDB and VictoriaMetrics)"
)

// veneurKeys are the keys of Veneur's config (its example.yaml and
// example_host.yaml among them) that are not veneur-lite keys. Keys both
// share (interval, percentiles, forward_address, tls_*, ...) are not here.
var veneurKeys = map[string]veneurKey{
	"tags":                       {policy: veneurMapped, to: "extend_tags"},
	"datadog_api_key":            {policy: veneurMapped, to: "datadog.api_key"},
	"key":                        {policy: veneurMapped, to: "datadog.api_key"},
	"datadog_api_hostname":       {policy: veneurMapped, to: "datadog.api_hostname"},
	"api_hostname":               {policy: veneurMapped, to: "datadog.api_hostname"},
	"flush_max_per_body":         {policy: veneurMapped, to: "datadog.flush_max_per_body"},
	"datadog_flush_max_per_body": {policy: veneurMapped, to: "datadog.flush_max_per_body"},

	"synchronize_with_interval": {policy: veneurRejected, why: "veneur-lite always flushes at multiples of interval; remove it"},
	"forward_use_grpc":          {policy: veneurIgnoredIfOff, why: "veneur-lite forwards over HTTP only (forward_address takes http:// or https://); remove it"},
	"stats_address":             {policy: veneurIgnoredIfOff, why: "veneur-lite sends its own veneur.* metrics through its sinks with the others, and serves them at /metrics; remove it"},
	"debug":                     {policy: veneurIgnoredIfOff, why: "veneur-lite has no debug log level; remove it"},
	"sentry_dsn":                {policy: veneurIgnoredIfOff, why: "veneur-lite reports errors to its log only; remove it"},
	"omit_empty_hostname":       {policy: veneurIgnoredIfOff, why: "an empty hostname is the OS hostname here; remove it"},
	"udp_address":               {policy: veneurIgnoredIfOff, why: "list it in statsd_listen_addresses as udp://host:port instead"},
	"tcp_address":               {policy: veneurIgnoredIfOff, why: "list it in statsd_listen_addresses as tcp://host:port instead"},
	"http_quit":                 {policy: veneurIgnoredIfOff, why: "veneur-lite has no quit endpoint: stop it with SIGTERM; remove it"},
	"grpc_address":              {policy: veneurIgnoredIfOff, why: whyGRPC + "; remove it"},
	"grpc_listen_addresses":     {policy: veneurIgnoredIfOff, why: whyGRPC + "; remove it"},
	"block_profile_rate":        {policy: veneurIgnoredIfOff, why: "veneur-lite's /debug/pprof/ takes no block profile; remove it"},
	"mutex_profile_fraction":    {policy: veneurIgnoredIfOff, why: "veneur-lite's /debug/pprof/ takes no mutex profile; remove it"},
	"flush_file":                {policy: veneurIgnoredIfOff, why: "veneur-lite has no local-file archive (the console sink prints every point); remove it"},

	"ssf_listen_addresses":             {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"ssf_address":                      {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"trace_address":                    {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"trace_api_address":                {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"datadog_trace_api_address":        {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"trace_lightstep_access_token":     {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"trace_lightstep_collector_host":   {policy: veneurIgnoredIfOff, why: whyTraces + "; remove it"},
	"trace_max_length_bytes":           {policy: veneurIgnored, why: whyTraces},
	"ssf_buffer_size":                  {policy: veneurIgnored, why: whyTraces},
	"trace_lightstep_reconnect_period": {policy: veneurIgnored, why: whyTraces},
	"trace_lightstep_maximum_spans":    {policy: veneurIgnored, why: whyTraces},

	"influx_address":        {policy: veneurIgnoredIfOff, why: whyInflux + "; remove it"},
	"influx_consistency":    {policy: veneurIgnored, why: whyInflux},
	"influx_db_name":        {policy: veneurIgnored, why: whyInflux},
	"aws_access_key_id":     {policy: veneurIgnoredIfOff, why: whyS3 + "; remove it"},
	"aws_secret_access_key": {policy: veneurIgnoredIfOff, why: whyS3 + "; remove it"},
	"aws_region":            {policy: veneurIgnoredIfOff, why: whyS3 + "; remove it"},
	"aws_s3_bucket":         {policy: veneurIgnoredIfOff, why: whyS3 + "; remove it"},
}

// veneurFile is what the file's Veneur keys amount to, gathered while the
// root mapping is decoded and applied once it is (apply), when every
// veneur-lite key is known.
type veneurFile struct {
	tags *veneurValue
	// datadog is the config of the datadog sink Veneur's keys ask for, by
	// sink key.
	datadog map[string]*veneurValue
}

// veneurValue is one Veneur key and its value, as written.
type veneurValue struct {
	name     string
	key, val *yaml.Node
}

// take handles the root key k if it is one of Veneur's, reporting whether
// it did: a mapped value is kept for apply, an ignored one gets its
// notice, a rejected one its error.
func (v *veneurFile) take(d *decoder, k, val *yaml.Node) bool {
	row, ok := veneurKeys[k.Value]
	if !ok {
		return false
	}
	switch {
	case row.policy == veneurMapped && row.to == "extend_tags":
		v.tags = &veneurValue{name: k.Value, key: k, val: val}
	case row.policy == veneurMapped && isOff(val):
		// Veneur's example sets its deprecated aliases empty.
		d.notice(k, "a Veneur key, ignored: empty (it would be "+row.to+")")
	case row.policy == veneurMapped:
		sinkKey := strings.TrimPrefix(row.to, "datadog.")
		if prev := v.datadog[sinkKey]; prev != nil {
			d.fail(k.Value, k, fmt.Errorf("a Veneur key for the datadog sink's %s, which %s on line %d sets too: keep one", sinkKey, prev.name, prev.key.Line))
			return true
		}
		if v.datadog == nil {
			v.datadog = map[string]*veneurValue{}
		}
		v.datadog[sinkKey] = &veneurValue{name: k.Value, key: k, val: val}
	case row.policy == veneurIgnored || (row.policy == veneurIgnoredIfOff && isOff(val)):
		d.notice(k, "a Veneur key, ignored: "+strings.TrimSuffix(row.why, "; remove it"))
	default:
		d.fail(k.Value, k, fmt.Errorf("a Veneur key with no equivalent here: %s", row.why))
	}
	return true
}

// isOff reports whether a value asks for nothing: empty, null, false, 0,
// or a list of such values.
func isOff(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "", "~", "null", "false", "0", "0s":
			return true
		}
		return false
	case yaml.SequenceNode:
		return !slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return !isOff(c) })
	}
	return false
}

// apply puts the mapped values into cfg: tags into extend_tags, and the
// Datadog keys into a datadog sink appended to metric_sinks (Veneur sent
// to Datadog whenever it had an API key).
func (v *veneurFile) apply(d *decoder, cfg *Config) {
	if t := v.tags; t != nil {
		if _, set := cfg.origins["extend_tags"]; set {
			d.fail(t.name, t.key, errors.New("the Veneur name of extend_tags, which is set too: keep extend_tags"))
		} else {
			field := reflect.ValueOf(cfg).Elem().FieldByName("ExtendTags")
			d.decode(t.val, field, "extend_tags", t.key)
			d.notice(t.key, "a Veneur key, read as extend_tags")
		}
	}
	if len(v.datadog) == 0 {
		return
	}
	apiKey := v.datadog["api_key"]
	if apiKey == nil || isOff(apiKey.val) {
		for _, name := range slices.Sorted(maps.Keys(v.datadog)) {
			dv := v.datadog[name]
			d.notice(dv.key, "a Veneur key, ignored: no Datadog API key is set, so no datadog sink is made")
		}
		return
	}
	for i, s := range cfg.MetricSinks {
		if s.Kind == "datadog" {
			d.fail(apiKey.name, apiKey.key, fmt.Errorf("a Veneur key for a datadog sink, but metric_sinks[%d] is one: set api_key in its config and remove %s", i, apiKey.name))
			return
		}
	}
	i := len(cfg.MetricSinks)
	block := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: apiKey.key.Line, Column: apiKey.key.Column}
	for _, name := range slices.Sorted(maps.Keys(v.datadog)) {
		dv := v.datadog[name]
		block.Content = append(block.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, Line: dv.key.Line, Column: dv.key.Column}, dv.val)
		d.notice(dv.key, fmt.Sprintf("a Veneur key, read as metric_sinks[%d].config.%s (a datadog sink)", i, name))
	}
	cfg.MetricSinks = append(cfg.MetricSinks, SinkConfig{Kind: "datadog", Config: *block})
	if d.origins != nil {
		d.origins[fmt.Sprintf("metric_sinks[%d]", i)] = d.at(apiKey.key)
	}
}
