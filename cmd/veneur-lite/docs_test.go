package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/listener"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/sinks/console"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// The docs' examples of console output are golden: each is marked with
// an HTML comment before its input and before its output block,
//
//	<!-- golden NAME input [hostname=H] [flushes=N] -->
//	    echo "deploys:1|c|#env:dev" | nc -u -w0 127.0.0.1 8125
//	<!-- golden NAME output -->
//	    --- flush 00:00:10 interval=10s points=N
//	    deploys rate 0.1 host=H tags=env:dev interval=10s count=1
//
// and TestDocsExamples runs the input through the real pipeline (the
// daemon as newDaemon builds it from the default config: parser,
// aggregator, fleet windows, flusher, console sink) on synctest's clock,
// for N intervals, and compares what the console printed with the output
// block. `go test ./cmd/veneur-lite -run TestDocsExamples -update`
// rewrites the output blocks.
//
// An input block holds DogStatsD lines, or `echo "…" | nc …` and
// `printf '…' | nc …` commands whose argument is the packet. The output
// leaves out the veneur.* lines (the docs say to grep them away), and each
// flush header shows `points=N`: the harness checks that N is the number
// of lines the flush printed, self-metrics included, but the docs do not
// pin how many self-metrics there are.
//
// An example of the command line instead has file blocks and no input,
//
//	<!-- golden NAME file name=bad.yaml -->
//	(a block: the file's content)
//	<!-- golden NAME output -->
//	$ VENEUR_KEY='value' veneur-lite -validate-config -f bad.yaml
//	(what it prints, stdout and stderr as they come)
//
// and is run by the built binary in a directory holding the files, with
// the environment the command line sets.

// docFiles are the documents whose examples are golden, from this
// package's directory.
var docFiles = []string{"../../README.md", "../../docs/*.md"}

// goldenMarker matches a golden marker line.
var goldenMarker = regexp.MustCompile(`^<!-- golden (\S+) (input|output|file)((?: \S+=\S+)*) -->$`)

// docBlock is a code block of a document: lines [start, end) of the file,
// and its content (indentation removed).
type docBlock struct {
	start, end int
	fenced     bool
	lines      []string
}

type docExample struct {
	file     string
	name     string
	attrs    map[string]string
	input    *docBlock
	output   *docBlock
	files    map[string]*docBlock // by file name, for a command example
	markLine int
}

// blockAfter returns the code block that follows line i (blank lines
// skipped): a fenced one, or lines indented by four spaces.
func blockAfter(lines []string, i int) (*docBlock, error) {
	j := i + 1
	for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
		j++
	}
	if j == len(lines) {
		return nil, fmt.Errorf("line %d: no code block after the marker", i+1)
	}
	if strings.HasPrefix(lines[j], "```") {
		b := &docBlock{start: j, fenced: true}
		k := j + 1
		for ; k < len(lines) && !strings.HasPrefix(lines[k], "```"); k++ {
			b.lines = append(b.lines, lines[k])
		}
		if k == len(lines) {
			return nil, fmt.Errorf("line %d: unterminated fenced block", j+1)
		}
		b.end = k + 1
		return b, nil
	}
	if !strings.HasPrefix(lines[j], "    ") {
		return nil, fmt.Errorf("line %d: no code block after the marker", i+1)
	}
	b := &docBlock{start: j}
	k := j
	for ; k < len(lines) && strings.HasPrefix(lines[k], "    "); k++ {
		b.lines = append(b.lines, lines[k][4:])
	}
	b.end = k
	return b, nil
}

// readExamples returns the golden examples of one document.
func readExamples(t *testing.T, file string, lines []string) []*docExample {
	t.Helper()
	byName := map[string]*docExample{}
	var out []*docExample
	for i, l := range lines {
		m := goldenMarker.FindStringSubmatch(l)
		if m == nil {
			if strings.HasPrefix(l, "<!-- golden") {
				t.Errorf("%s:%d: malformed golden marker %q", file, i+1, l)
			}
			continue
		}
		b, err := blockAfter(lines, i)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		ex := byName[m[1]]
		if ex == nil {
			ex = &docExample{file: file, name: m[1], attrs: map[string]string{}, files: map[string]*docBlock{}, markLine: i + 1}
			byName[m[1]] = ex
			out = append(out, ex)
		}
		attrs := map[string]string{}
		for _, kv := range strings.Fields(m[3]) {
			k, v, _ := strings.Cut(kv, "=")
			attrs[k] = v
		}
		switch m[2] {
		case "input":
			ex.input, ex.attrs = b, attrs
		case "file":
			ex.files[attrs["name"]] = b
		default:
			ex.output = b
		}
	}
	for _, ex := range out {
		if (ex.input == nil) == (len(ex.files) == 0) || ex.output == nil {
			t.Errorf("%s:%d: golden example %q needs an input block or file blocks, and an output block", file, ex.markLine, ex.name)
		}
	}
	return out
}

// packets returns the datagrams an input block sends.
func packets(t *testing.T, block []string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range block {
		switch {
		case strings.TrimSpace(l) == "":
		case strings.HasPrefix(l, "echo "), strings.HasPrefix(l, "printf "):
			arg := strings.TrimSpace(l[strings.IndexByte(l, ' '):])
			q := arg[0]
			end := strings.IndexByte(arg[1:], q)
			if (q != '"' && q != '\'') || end < 0 {
				t.Fatalf("input %q: want a quoted argument", l)
			}
			p := arg[1 : 1+end]
			if strings.HasPrefix(l, "printf ") {
				p = strings.ReplaceAll(p, `\n`, "\n")
			} else {
				p += "\n"
			}
			out = append(out, []byte(p))
		default:
			out = append(out, []byte(l+"\n"))
		}
	}
	return out
}

var (
	flushHeader = regexp.MustCompile(`^--- flush \d\d:\d\d:\d\d (interval=\S+) points=(\d+)$`)
	// consoleOutput is what a console line of a point looks like: any
	// such line in a code block of the docs must be a golden one.
	consoleOutput = regexp.MustCompile(`^\S+ (rate|gauge) \S+ host=\S* tags=`)
	// consoleEvent is a console line of an event or a service check.
	consoleEvent = regexp.MustCompile(`^(event title=|service_check name=)`)
	// commandOutput is what the command line prints about a config.
	commandOutput = regexp.MustCompile(`^(veneur-lite: |config ok$)`)
)

// runExample runs ex's input through the pipeline on synctest's clock and
// returns the console's output, normalized as the docs show it.
func runExample(t *testing.T, ex *docExample) []string {
	var printed bytes.Buffer
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.StatsdListenAddresses = []config.ListenAddress{{Network: "udp", Address: "127.0.0.1:0"}}
		cfg.HTTPAddress = "127.0.0.1:0"
		if h, ok := ex.attrs["hostname"]; ok {
			cfg.Hostname = h
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		flushes := 1
		if n, ok := ex.attrs["flushes"]; ok {
			var err error
			if flushes, err = strconv.Atoi(n); err != nil {
				t.Fatalf("flushes=%q: %v", n, err)
			}
		}
		reg := telemetry.NewRegistry()
		sink := console.NewConsole("console", &printed, cfg.Interval.D())
		d, err := newDaemon(cfg, []sinks.Sink{sink}, reg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		d.release() // the input goes to the parser directly: no sockets in a bubble
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.flusher.Run(ctx) }()

		parser := listener.NewParser(cfg.MetricMaxLength, reg)
		w := d.agg.NewWriter()
		for _, p := range packets(t, ex.input.lines) {
			var b metric.Batch
			if rejected := parser.Parse(p, &b); rejected > 0 {
				t.Fatalf("input %q: %d lines rejected", p, rejected)
			}
			w.Push(b.Samples)
			w.PushEvents(b.Events, b.Checks)
		}
		time.Sleep(time.Duration(flushes)*cfg.Interval.D() + time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		d.flusher.Wait(context.Background())
	})
	return normalizeConsole(t, strings.Split(strings.TrimSuffix(printed.String(), "\n"), "\n"))
}

// runCommand runs the command line of ex's output block, the built binary
// for veneur-lite, in a directory holding ex's files, and returns the
// command line and what it printed.
func runCommand(t *testing.T, ex *docExample) []string {
	if len(ex.output.lines) == 0 || !strings.HasPrefix(ex.output.lines[0], "$ ") {
		t.Fatalf("example %q: the output block must start with the command line, \"$ …\"", ex.name)
	}
	words := shellWords(t, strings.TrimPrefix(ex.output.lines[0], "$ "))
	env := []string{}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		env = append(env, words[0])
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "veneur-lite" {
		t.Fatalf("example %q: runs %q, want veneur-lite", ex.name, words)
	}
	dir := t.TempDir()
	for name, b := range ex.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(b.lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(binary(t), words[1:]...)
	cmd.Dir = dir
	// Only the environment the command line sets: a VENEUR_* variable of
	// the test's own environment must not change the example.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // the exit status is the docs' prose, not the block's
	return append([]string{ex.output.lines[0]}, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")...)
}

// shellWords splits a command line as a POSIX shell would for the simple
// quoting the docs use: words, '…' and "…".
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case ' ':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case '\'', '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				t.Fatalf("unterminated quote in %q", line)
			}
			word.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// normalizeConsole leaves out the veneur.* lines and puts the doc's
// placeholder in each header, after checking that its count is right.
func normalizeConsole(t *testing.T, lines []string) []string {
	t.Helper()
	var out []string
	header, count := -1, 0
	check := func() {
		if header < 0 {
			return
		}
		if m := flushHeader.FindStringSubmatch(lines[header]); m[2] != strconv.Itoa(count) {
			t.Errorf("header %q: %d points followed", lines[header], count)
		}
	}
	flush := 0
	for i, l := range lines {
		if m := flushHeader.FindStringSubmatch(l); m != nil {
			check()
			header, count = i, 0
			flush++
			// synctest's clock starts at midnight UTC, 1 January 2000; the
			// console prints local time.
			clock := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(flush) * 10 * time.Second)
			out = append(out, fmt.Sprintf("--- flush %s %s points=N", clock.Format(time.TimeOnly), m[1]))
			continue
		}
		if consoleOutput.MatchString(l) {
			count++
		}
		if !strings.HasPrefix(l, "veneur.") {
			out = append(out, l)
		}
	}
	check()
	return out
}

// TestDocsExamples runs every golden example of the docs and compares
// the console's output with the doc's; with -update it rewrites the
// output blocks. It also fails on a block that looks like console output
// but is not a golden example's, so that no example escapes it.
func TestDocsExamples(t *testing.T) {
	var files []string
	for _, pattern := range docFiles {
		m, err := filepath.Glob(pattern)
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: no documents (%v)", pattern, err)
		}
		files = append(files, m...)
	}
	total := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		examples := readExamples(t, file, lines)
		golden := map[int]bool{}
		for _, ex := range examples {
			if ex.output == nil {
				continue
			}
			for i := ex.output.start; i < ex.output.end; i++ {
				golden[i] = true
			}
		}
		for i, l := range lines {
			code := strings.TrimPrefix(l, "    ")
			if !golden[i] && (consoleOutput.MatchString(code) || consoleEvent.MatchString(code) || flushHeader.MatchString(code) || commandOutput.MatchString(code)) {
				t.Errorf("%s:%d: console output that no golden example produces: %q", file, i+1, l)
			}
		}
		var edits []*docExample
		for _, ex := range examples {
			if ex.output == nil || (ex.input == nil) == (len(ex.files) == 0) {
				continue
			}
			total++
			t.Run(filepath.Base(file)+"/"+ex.name, func(t *testing.T) {
				var got []string
				if ex.input != nil {
					got = runExample(t, ex)
				} else {
					got = runCommand(t, ex)
				}
				if strings.Join(got, "\n") == strings.Join(ex.output.lines, "\n") {
					return
				}
				if *update {
					ex.output.lines = got
					edits = append(edits, ex)
					return
				}
				t.Errorf("%s:%d: example %q: the docs show\n\t%s\nthe pipeline prints\n\t%s\n(go test ./cmd/veneur-lite -run TestDocsExamples -update rewrites the docs)",
					file, ex.output.start+1, ex.name, strings.Join(ex.output.lines, "\n\t"), strings.Join(got, "\n\t"))
			})
		}
		if len(edits) > 0 {
			// From the bottom up, so that earlier blocks keep their lines.
			for i := len(edits) - 1; i >= 0; i-- {
				b := edits[i].output
				var repl []string
				if b.fenced {
					repl = append(append([]string{lines[b.start]}, b.lines...), "```")
				} else {
					for _, l := range b.lines {
						repl = append(repl, "    "+l)
					}
				}
				lines = append(lines[:b.start], append(repl, lines[b.end:]...)...)
			}
			if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if total == 0 {
		t.Error("no golden examples found in the docs")
	}
}
