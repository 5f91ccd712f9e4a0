package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestCountLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"a:1|c", 1},
		{"a:1|c\n", 1},
		{"a:1|c\nb:2|g", 2},
		{"a:1|c\nb:2|g\n", 2},
		{"\n\na:1|c\n\n\nb:1|c\n\n", 2},
		{"\n", 0},
	} {
		if got := countLines([]byte(c.in)); got != c.want {
			t.Errorf("countLines(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// The baseline is only a baseline while it reads as the listener does:
// the batch size, buffer size and drain bounds are read from the
// listener's own source and must equal ours.
func TestMirrorsListenerConstants(t *testing.T) {
	fset := token.NewFileSet()
	consts := map[string]constant.Value{}
	for _, file := range []string{"udp.go", "listener.go"} {
		f, err := parser.ParseFile(fset, filepath.Join("..", "..", "..", "listener", file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						consts[name.Name] = evalConst(vs.Values[i])
					}
				}
			}
		}
	}
	for name, ours := range map[string]int64{
		"readBatchSize":   readBatchSize,
		"maxDatagramSize": maxDatagramSize,
		"drainQuiet":      int64(drainQuiet),
		"drainTimeout":    int64(drainTimeout),
	} {
		v, ok := consts[name]
		if !ok {
			t.Errorf("listener has no constant %s any more: update nullrecv to read as it does", name)
			continue
		}
		if got, _ := constant.Int64Val(v); got != ours {
			t.Errorf("listener's %s = %d, nullrecv's = %d: the baseline must read as the listener does", name, got, ours)
		}
	}
}

// evalConst evaluates a constant expression such as 64 * 1024 or
// 50 * time.Millisecond (time units are the only identifiers allowed).
func evalConst(e ast.Expr) constant.Value {
	units := map[string]int64{"Nanosecond": 1, "Microsecond": 1e3, "Millisecond": 1e6, "Second": 1e9, "Minute": 60e9}
	switch e := e.(type) {
	case *ast.BasicLit:
		return constant.MakeFromLiteral(e.Value, e.Kind, 0)
	case *ast.ParenExpr:
		return evalConst(e.X)
	case *ast.BinaryExpr:
		return constant.BinaryOp(evalConst(e.X), e.Op, evalConst(e.Y))
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "time" {
			if u, ok := units[e.Sel.Name]; ok {
				return constant.MakeInt64(u)
			}
		}
	}
	// An expression this evaluator does not know reads as unknown, which
	// the caller reports as a mismatch.
	return constant.MakeUnknown()
}

// The receiver counts every datagram and line sent to it, and reports
// after its context ends.
func TestRunCountsWhatArrives(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-readers", "2"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no ready line: %v", sc.Err())
	}
	var ready readyLine
	if err := json.Unmarshal(sc.Bytes(), &ready); err != nil || ready.Event != "ready" || ready.Readers != 2 {
		t.Fatalf("ready line %q: %v", sc.Text(), err)
	}
	const datagrams = 400
	var bytesSent int
	for s := range 8 { // several source ports, so both readers get some
		c, err := net.Dial("udp", ready.Addr)
		if err != nil {
			t.Fatal(err)
		}
		for i := range datagrams / 8 {
			msg := fmt.Sprintf("a.%d:1|c\nb.%d:2|ms|#x:y\n\n", s, i)
			if _, err := io.WriteString(c, msg); err != nil {
				t.Fatal(err)
			}
			bytesSent += len(msg)
		}
		c.Close()
	}
	cancel()
	if !sc.Scan() {
		t.Fatalf("no done line: %v", sc.Err())
	}
	var got doneLine
	if err := json.Unmarshal(sc.Bytes(), &got); err != nil || got.Event != "done" {
		t.Fatalf("done line %q: %v", sc.Text(), err)
	}
	if got.Reads < 1 || got.Reads > datagrams {
		t.Errorf("%d reads for %d datagrams", got.Reads, datagrams)
	}
	got.Reads = 0
	want := Counts{Datagrams: datagrams, Lines: 2 * datagrams, Bytes: uint64(bytesSent)}
	if got.Counts != want {
		t.Errorf("counts %+v, want %+v", got.Counts, want)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return")
	}
}
