package top

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"
)

// requestTimeout bounds one read of /debug/series: the endpoint walks
// every live series, which takes a while at millions of them.
const requestTimeout = 5 * time.Second

// minInterval keeps -interval from turning top into a load test.
const minInterval = 100 * time.Millisecond

// Options are top's flags.
type Options struct {
	Addr     string
	N        int
	Sort     string
	Interval time.Duration
	Once     bool
	JSON     bool
	TLS      TLS
}

// Main runs "veneur-lite top" with args (the ones after "top") and
// returns the exit code: 0, 1 when a one-shot read failed or the
// terminal could not be set up, 2 for a usage error. ctx ends the live
// view (SIGINT, SIGTERM).
//
// With stdout a terminal it runs the live view, reading keys from stdin
// (in raw mode when stdin is a terminal too). With stdout not a
// terminal and neither -once nor -json, it prints a plain snapshot
// every interval, a blank line after each, until ctx ends (like top -b).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, ok := parseFlags(args, stderr)
	if !ok {
		return 2
	}
	base, err := ParseAddr(o.Addr)
	if err == nil {
		var c *Client
		if c, err = NewClient(base, o.TLS, requestTimeout); err == nil {
			return o.run(ctx, c.Fetch, Display(base), stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "veneur-lite top: %v\n", err)
	return 2
}

func parseFlags(args []string, stderr io.Writer) (Options, bool) {
	var o Options
	fs := flag.NewFlagSet("veneur-lite top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8127", "the instance's http_address: host:port, or an http:// or https:// URL")
	fs.IntVar(&o.N, "n", 20, fmt.Sprintf("metric names to show, %d to %d (the live view also stops at the screen's height)", minN, maxN))
	fs.StringVar(&o.Sort, "sort", Sorts[0], "order of the names: "+strings.Join(Sorts, ", "))
	fs.DurationVar(&o.Interval, "interval", time.Second, "time between refreshes")
	fs.BoolVar(&o.Once, "once", false, "print one snapshot as plain text and exit (1 when the instance cannot be read)")
	fs.BoolVar(&o.JSON, "json", false, "print the endpoint's JSON once and exit")
	fs.StringVar(&o.TLS.CAFile, "ca-file", "", "https: the authority that signs the instance's certificate (default: the system's)")
	fs.StringVar(&o.TLS.CertFile, "cert-file", "", "https: a client certificate to present (with -key-file)")
	fs.StringVar(&o.TLS.KeyFile, "key-file", "", "https: the client certificate's key")
	fs.StringVar(&o.TLS.ServerName, "server-name", "", "https: the name to verify the instance's certificate under (default: the host of -addr)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: veneur-lite top [-addr host:port|URL] [-n 20] [-sort series|samples|shed] [-interval 1s] [-once|-json]")
		fmt.Fprintln(w, "Shows which metric names hold the most series, samples and shed samples in the")
		fmt.Fprintln(w, "interval under way, from the instance's GET /debug/series (which answers clients")
		fmt.Fprintln(w, "on its host only, unless its config sets enable_profiling: true).")
		fmt.Fprintln(w, "Keys: s cycles the sort, + and - change n, q or Ctrl-C quits.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, false
	}
	bad := func(format string, a ...any) (Options, bool) {
		fmt.Fprintf(stderr, "veneur-lite top: "+format+"\n", a...)
		fs.Usage()
		return o, false
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case o.N < minN || o.N > maxN:
		return bad("-n %d: want %d to %d", o.N, minN, maxN)
	case !slices.Contains(Sorts, o.Sort):
		return bad("-sort %q: want %s", o.Sort, strings.Join(Sorts, ", "))
	case o.Interval < minInterval:
		return bad("-interval %s: want %s or more", o.Interval, minInterval)
	}
	return o, true
}

// run picks the output: one snapshot (-once, -json), the live view, or
// plain snapshots in a loop when stdout is not a terminal.
func (o Options) run(ctx context.Context, fetch fetchFunc, display string, stdin io.Reader, stdout, stderr io.Writer) int {
	outFd, outTTY := terminalFd(stdout)
	if o.JSON || o.Once {
		fctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		st, body, err := fetch(fctx, o.N, o.Sort)
		if err != nil {
			fmt.Fprintf(stderr, "veneur-lite top: %v\n", err)
			return 1
		}
		if o.JSON {
			_, err = stdout.Write(body)
		} else {
			v := View{Addr: display, Sort: o.Sort, N: o.N}
			if outTTY {
				v.Width = max(screenSize(outFd)-1, 1)
			}
			err = writeLines(stdout, Render(st, v))
		}
		if err != nil {
			fmt.Fprintf(stderr, "veneur-lite top: write: %v\n", err)
			return 1
		}
		return 0
	}
	if !outTTY {
		return o.batch(ctx, fetch, display, stdout, stderr)
	}
	return o.runLive(ctx, fetch, display, stdin, stdout, outFd, stderr)
}

// batch prints a plain snapshot every interval until ctx ends; a failed
// read is reported on stderr and retried.
func (o Options) batch(ctx context.Context, fetch fetchFunc, display string, stdout, stderr io.Writer) int {
	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
	for {
		st, _, err := fetch(ctx, o.N, o.Sort)
		switch {
		case ctx.Err() != nil:
			return 0
		case err != nil:
			fmt.Fprintf(stderr, "veneur-lite top: %v (retrying every %s)\n", err, o.Interval)
		default:
			lines := append(Render(st, View{Addr: display, Sort: o.Sort, N: o.N}), "")
			if err := writeLines(stdout, lines); err != nil {
				fmt.Fprintf(stderr, "veneur-lite top: write: %v\n", err)
				return 1
			}
		}
		select {
		case <-ctx.Done():
			return 0
		case <-ticker.C:
		}
	}
}

// runLive sets the terminal up for the live view, runs it, and leaves the
// terminal as it found it: screen cleared, cursor shown, mode restored.
func (o Options) runLive(ctx context.Context, fetch fetchFunc, display string, stdin io.Reader, stdout io.Writer, outFd int, stderr io.Writer) int {
	inFd, inTTY := terminalFd(stdin)
	if inTTY {
		saved, err := term.MakeRaw(inFd)
		if err != nil {
			fmt.Fprintf(stderr, "veneur-lite top: set the terminal to raw mode: %v\n", err)
			return 1
		}
		defer func() { _ = term.Restore(inFd, saved) }() // after the screen is cleared below
	}
	if _, err := io.WriteString(stdout, hideCursor+clearAll); err != nil {
		return 1
	}
	defer func() { _, _ = io.WriteString(stdout, clearAll+showCursor) }()

	keys := make(chan byte, 64) // a burst of typing or a pasted line
	go readKeys(stdin, keys)
	resized, stop := notifyResize()
	defer stop()
	err := live(ctx, fetch, o, display, screen{
		out:       stdout,
		keys:      keys,
		quitOnEOF: inTTY,
		size: func() (int, int) {
			w, h, err := term.GetSize(outFd)
			if err != nil || w <= 0 || h <= 0 {
				return 80, 24
			}
			return w, h
		},
		resized: resized,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		// The terminal is gone or broken: nothing to tell it.
		return 1
	}
	return 0
}

// terminalFd returns f's descriptor and whether it is a terminal.
func terminalFd(f any) (int, bool) {
	if f, ok := f.(interface{ Fd() uintptr }); ok {
		fd := int(f.Fd())
		return fd, term.IsTerminal(fd)
	}
	return -1, false
}

// screenSize is the terminal's width, 80 when it does not say.
func screenSize(fd int) int {
	if w, _, err := term.GetSize(fd); err == nil && w > 0 {
		return w
	}
	return 80
}

func writeLines(w io.Writer, lines []string) error {
	_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}
