package config

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// veneurTable is the table of Veneur's keys as docs/configuration.md
// shows it, made from veneurKeys.
func veneurTable() string {
	var b strings.Builder
	b.WriteString("| Veneur key | in veneur-lite |\n|---|---|\n")
	for _, name := range slices.Sorted(maps.Keys(veneurKeys)) {
		row := veneurKeys[name]
		var here string
		switch row.policy {
		case veneurMapped:
			here = "read as `" + row.to + "`"
			if sinkKey, ok := strings.CutPrefix(row.to, "datadog."); ok {
				here = "read as `" + sinkKey + "` of a `datadog` sink added to `metric_sinks`"
			}
		case veneurIgnored:
			here = "ignored: " + row.why
		case veneurIgnoredIfOff:
			here = "ignored when empty, false or 0; otherwise an error: " + row.why
		case veneurRejected:
			here = "an error: " + row.why
		}
		b.WriteString("| `" + name + "` | " + here + " |\n")
	}
	return b.String()
}

// The table in docs/configuration.md is the one Load applies.
func TestVeneurTableInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := veneurTable(); !strings.Contains(string(doc), want) {
		t.Errorf("docs/configuration.md does not hold the table of Veneur's keys; it should read:\n%s", want)
	}
}
