package config

import (
	"encoding"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrUnknownKey is the reason of a KeyError for a key the configuration has
// no place for.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is an unknown key, or a key whose value is not valid.
type KeyError struct {
	// Key is the key's path in the configuration tree: "num_workers",
	// "percentiles[1]", "metric_sinks[0].config.api_key".
	Key string
	// File and Line locate the value in the config file. Line is 0 when
	// the value is not from the file (a default, or the environment).
	File string
	Line int
	// Env is the VENEUR_* variable the value came from, if it did.
	Env string
	// Err is the reason.
	Err error
}

// Error reads "<file>:<line>: <key>: <reason>", or starts with
// "environment VENEUR_<KEY>" for a value from the environment.
func (e *KeyError) Error() string {
	var b strings.Builder
	switch {
	case e.Env != "":
		b.WriteString("environment " + e.Env + ": ")
	case e.Line > 0 && e.File != "":
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

// origin is where a key's value came from.
type origin struct {
	file string
	line int    // 0 unless from the file
	env  string // the VENEUR_* variable, when from the environment
}

// decoder decodes a yaml.v3 node tree into a typed value the way yaml.v3
// does, with three differences. It finds unknown keys by walking each
// mapping against the target struct's yaml tags, and reports every unknown
// key and bad value as a KeyError that names the key's path and the line of
// the node (so a sink's config block is reported at its lines in the file).
// It takes a scalar where a list is wanted, as a comma-separated list. And
// it records where each key's value came from, for Validate's errors.
type decoder struct {
	src     origin            // file or environment variable being decoded
	origins map[string]origin // key path → origin; nil records nothing
	errs    []error
	failed  map[string]bool // key paths in errs
	// veneur takes the root keys of Stripe Veneur's config that are not
	// veneur-lite's (nil: none are taken); notices are what it says about
	// those it accepts.
	veneur  *veneurFile
	notices []string
}

// notice records a one-line notice about key k, located as errors are.
func (d *decoder) notice(k *yaml.Node, msg string) {
	o := d.at(k)
	d.notices = append(d.notices, (&KeyError{Key: k.Value, File: o.file, Line: o.line, Env: o.env, Err: errors.New(msg)}).Error())
}

var (
	nodeType            = reflect.TypeFor[yaml.Node]()
	durationType        = reflect.TypeFor[time.Duration]()
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// at is the origin of node n in what is being decoded. Lines inside an
// environment variable's YAML mean nothing to the reader; they are dropped.
func (d *decoder) at(n *yaml.Node) origin {
	o := d.src
	if o.env == "" {
		o.line = n.Line
	}
	return o
}

func (d *decoder) fail(path string, n *yaml.Node, err error) {
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[path] = true
	o := d.at(n)
	d.errs = append(d.errs, &KeyError{Key: path, File: o.file, Line: o.line, Env: o.env, Err: err})
}

// decode sets v, which must be addressable, from n. path is v's key path
// ("" for the root), and pos the node whose line reports it: the key's own
// node in a mapping, so that a block value is reported at its key.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, pos *yaml.Node) {
	for n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
			continue
		}
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == 0 {
		return // an empty document, or an absent yaml.Node field
	}
	if path != "" && d.origins != nil {
		d.origins[path] = d.at(pos)
	}
	t := v.Type()
	if t == nodeType {
		// Kept undecoded (a sink's config block) with its file lines.
		v.Set(reflect.ValueOf(*n))
		return
	}
	if hasUnmarshaler(t) {
		d.leaf(n, v, path, pos)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path, pos)
	case reflect.Slice:
		d.list(n, v, path, pos)
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path, pos)
	default:
		d.leaf(n, v, path, pos)
	}
}

func hasUnmarshaler(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(unmarshalerType) || pt.Implements(textUnmarshalerType)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// mapping decodes a mapping node into the struct v, key by key. A key that
// is not set keeps the value v already holds: its default.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, pos *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, pos, fmt.Errorf("want a mapping of keys to values, not %s", describeNode(n)))
		return
	}
	fields, names := yamlFields(v.Type())
	// Merge keys (<<: *anchor) first: the mapping's own keys override them
	// wherever they are written, as YAML specifies.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, fmt.Errorf("a key must be a name, not %s", describeNode(k)))
			continue
		}
		key := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			if d.src.env == "" {
				d.fail(key, k, fmt.Errorf("set twice (first on line %d)", first))
			} else {
				d.fail(key, k, errors.New("set twice"))
			}
			continue
		}
		seen[k.Value] = k.Line
		index, ok := fields[k.Value]
		if !ok && path == "" && d.veneur != nil && d.veneur.take(d, k, val) {
			continue
		}
		if !ok {
			d.fail(key, k, unknownKey(k.Value, names))
			continue
		}
		field := v.FieldByIndex(index)
		d.decode(val, field, key, k)
		if isPath(v.Type().FieldByIndex(index)) && field.Kind() == reflect.String {
			field.SetString(d.resolve(field.String()))
		}
	}
}

// isPath reports whether a field holds a file path: tagged config:"path".
func isPath(f reflect.StructField) bool { return f.Tag.Get("config") == "path" }

// resolve makes a relative path from the config file relative to the
// file's directory, as Prometheus does, so that a config and the
// certificates beside it work from any working directory. A path from the
// environment stays relative to the working directory.
func (d *decoder) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || d.src.file == "" || d.src.env != "" {
		return path
	}
	return filepath.Join(filepath.Dir(d.src.file), path)
}

// merge decodes the mapping (or list of mappings) of a merge key into v.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode {
		// Earlier mappings win over later ones.
		for _, m := range slices.Backward(n.Content) {
			d.merge(m, v, path)
		}
		return
	}
	d.mapping(n, v, path, n)
}

// unknownKey is the reason for an unknown key, suggesting the closest
// known one when it is close enough to be a typo.
func unknownKey(key string, known []string) error {
	if s := closest(key, known); s != "" {
		return fmt.Errorf("%w (did you mean %s?)", ErrUnknownKey, s)
	}
	return ErrUnknownKey
}

// list decodes a sequence into the slice v, or a scalar as a
// comma-separated list ("env:prod" is [env:prod]; "" and null are []). An
// empty item ("- " alone on its line) is an error, not a zero value.
func (d *decoder) list(n *yaml.Node, v reflect.Value, path string, pos *yaml.Node) {
	switch {
	case isNull(n):
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return
	case n.Kind == yaml.ScalarNode:
		n = splitScalar(n, v.Type().Elem())
	case n.Kind != yaml.SequenceNode:
		d.fail(path, pos, fmt.Errorf("want a list, not %s", describeNode(n)))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, el := range n.Content {
		key := fmt.Sprintf("%s[%d]", path, i)
		if isNull(el) {
			d.fail(key, el, errors.New("empty list item"))
			continue
		}
		d.decode(el, s.Index(i), key, el)
	}
	v.Set(s)
}

// splitScalar turns "a, b" into the sequence [a, b] of scalars of type elem.
func splitScalar(n *yaml.Node, elem reflect.Type) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Line: n.Line, Column: n.Column}
	for part := range strings.SplitSeq(n.Value, ",") {
		if part = strings.TrimSpace(part); part != "" {
			seq.Content = append(seq.Content, scalarNode(part, elem, n.Line, n.Column))
		}
	}
	return seq
}

// scalarNode is a scalar holding text for a value of type t. A string
// stays a string ("null", "0722"); anything else is resolved as YAML
// resolves a plain scalar.
func scalarNode(text string, t reflect.Type, line, column int) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: text, Line: line, Column: column}
	if t.Kind() == reflect.String && !hasUnmarshaler(t) {
		n.Tag = "!!str"
	}
	return n
}

// leaf decodes a single value with yaml.v3, naming the expected type when
// yaml.v3 rejects it.
func (d *decoder) leaf(n *yaml.Node, v reflect.Value, path string, pos *yaml.Node) {
	takesNodes := reflect.PointerTo(v.Type()).Implements(unmarshalerType) ||
		v.Kind() == reflect.Map || v.Kind() == reflect.Interface
	if n.Kind != yaml.ScalarNode && !takesNodes {
		d.fail(path, pos, fmt.Errorf("want %s, not %s", describeType(v.Type()), describeNode(n)))
		return
	}
	err := n.Decode(v.Addr().Interface())
	if err == nil {
		return
	}
	if te := (*yaml.TypeError)(nil); errors.As(err, &te) {
		// yaml.v3's message ("line 3: cannot unmarshal !!str `abc` into
		// int") says neither the key nor what would do.
		err = fmt.Errorf("%s is not %s", describeNode(n), describeType(v.Type()))
	}
	d.fail(path, pos, err)
}

func describeType(t reflect.Type) string {
	if t == durationType {
		return "a duration like 10s"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys to values"
	case reflect.Slice:
		return "a list"
	}
	return "a " + t.String()
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// enclosing returns key's parent key: "a" for "a.b" and "a[0]", "" for "a".
func enclosing(key string) string {
	if i := strings.LastIndexAny(key, ".["); i > 0 {
		return key[:i]
	}
	return ""
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the yaml key of each of t's fields to its index, as
// yaml.v3 names them (the tag's name, else the lower-cased field name;
// inline structs contribute their fields), and lists the keys sorted.
func yamlFields(t reflect.Type) (map[string][]int, []string) {
	fields := map[string][]int{}
	var add func(t reflect.Type, prefix []int)
	add = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			index := append(slices.Clone(prefix), i)
			if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
				add(f.Type, index)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = index
		}
	}
	add(t, nil)
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	return fields, names
}

// closest returns the name in known nearest to s by edit distance, if it is
// near enough to be a typo of it, else "".
func closest(s string, known []string) string {
	best, bestDist := "", len(s)+1
	for _, k := range known {
		if d := editDistance(s, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist <= 2 || bestDist <= len(s)/4 {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
