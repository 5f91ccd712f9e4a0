package telemetry

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docRow is one self-metric as docs/output.md's tables describe it.
type docRow struct {
	kind, help string
	tags       []string
	line       int
}

// backticked finds `code` spans in a table cell.
var backticked = regexp.MustCompile("`([^`]*)`")

// docSelfMetrics reads the tables of the "## Self-metrics" section of
// docs/output.md: every row whose first cell names veneur.* metrics, with
// the type, the tag keys (each `key` or `key:values` span of the tags cell)
// and the "meaning" cell.
func docSelfMetrics(t *testing.T) map[string]docRow {
	t.Helper()
	b, err := os.ReadFile("../docs/output.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]docRow{}
	in := false
	var header []string
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Self-metrics"
			continue
		case !in || !strings.HasPrefix(line, "|"):
			header = nil
			continue
		}
		cells := splitRow(line)
		if header == nil {
			header = cells
			continue
		}
		col := func(name string) string {
			if j := slices.Index(header, name); j >= 0 && j < len(cells) {
				return cells[j]
			}
			t.Fatalf("docs/output.md:%d: table has no %q column", i+1, name)
			return ""
		}
		if !strings.HasPrefix(cells[0], "`veneur.") {
			continue // the |---| line
		}
		row := docRow{kind: col("type"), help: col("meaning"), line: i + 1}
		for _, m := range backticked.FindAllStringSubmatch(col("tags"), -1) {
			k, _, _ := strings.Cut(m[1], ":")
			row.tags = append(row.tags, k)
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			name := strings.TrimPrefix(m[1], "veneur.")
			if _, dup := rows[name]; dup {
				t.Errorf("docs/output.md:%d: veneur.%s documented twice", i+1, name)
			}
			rows[name] = row
		}
	}
	if len(rows) == 0 {
		t.Fatal("no self-metric rows found in docs/output.md")
	}
	return rows
}

// splitRow splits a markdown table row on the pipes that are not escaped,
// and unescapes the rest.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// docs/output.md documents exactly the catalog: every self-metric has its
// row, with the same type, tag keys and help sentence, and every row names
// a self-metric that exists.
func TestCatalogMatchesDocs(t *testing.T) {
	rows := docSelfMetrics(t)
	for _, s := range Catalog {
		row, ok := rows[s.Name]
		if !ok {
			t.Errorf("veneur.%s is undocumented: add its row to docs/output.md's self-metric tables", s.Name)
			continue
		}
		delete(rows, s.Name)
		if row.kind != s.Kind.String() {
			t.Errorf("docs/output.md:%d: veneur.%s is a %q there, a %v in the catalog", row.line, s.Name, row.kind, s.Kind)
		}
		if !slices.Equal(sorted(row.tags), sorted(s.Tags)) {
			t.Errorf("docs/output.md:%d: veneur.%s has tag keys %v there, %v in the catalog", row.line, s.Name, row.tags, s.Tags)
		}
		if row.help != s.Help {
			t.Errorf("docs/output.md:%d: veneur.%s means\n  %q there,\n  %q in the catalog", row.line, s.Name, row.help, s.Help)
		}
	}
	for name, row := range rows {
		t.Errorf("docs/output.md:%d: veneur.%s is documented but not in the catalog", row.line, name)
	}
}

// docs/output.md states the histograms' buckets as Buckets has them.
func TestDocsStateTheBuckets(t *testing.T) {
	b, err := os.ReadFile("../docs/output.md")
	if err != nil {
		t.Fatal(err)
	}
	var ms, s []string
	for _, v := range Buckets {
		if v < 1 {
			ms = append(ms, strconv.FormatFloat(v*1000, 'g', -1, 64))
		} else {
			s = append(s, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	list := func(l []string) string { return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1] }
	want := "over fixed buckets: " + list(ms) + " ms, " + list(s) + " s, and `+Inf`"
	if doc := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(doc, want) {
		t.Errorf("docs/output.md does not say %q", want)
	}
}

// Help texts are what /metrics prints after # HELP: one line each.
func TestCatalogHelpIsOneSentence(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Catalog {
		if seen[s.Name] {
			t.Errorf("veneur.%s declared twice", s.Name)
		}
		seen[s.Name] = true
		if s.Help == "" || strings.ContainsAny(s.Help, "\n\\") || !strings.HasSuffix(s.Help, ".") {
			t.Errorf("veneur.%s: help %q is not one plain sentence ending in a period", s.Name, s.Help)
		}
		if s.Kind < KindCounter || s.Kind > KindHistogram {
			t.Errorf("veneur.%s: kind %d", s.Name, s.Kind)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
