// Command veneur-emit sends one metric, event or service check to a
// DogStatsD server (veneur-lite, Veneur, the Datadog Agent) from the
// command line, or times a command and sends its duration and exit status.
// It keeps the flag names of Stripe Veneur's veneur-emit.
//
// Exit status: 0 when the lines were sent; 1 when sending failed; 2 when the
// invocation is wrong (nothing was run or sent); with -command, the
// command's own status.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses of veneur-emit itself.
const (
	exitOK        = 0
	exitSendError = 1
	exitUsage     = 2
)

const synopsis = `usage: veneur-emit [-hostport URL] -name NAME -count N|-gauge N|-timing D|-histogram N|-distribution N|-set V [-tag T]...
       veneur-emit [-hostport URL] -e_title TITLE [-e_text TEXT] [-e_* ...]
       veneur-emit [-hostport URL] -sc_name NAME -sc_status STATUS [-sc_* ...]
       veneur-emit [-hostport URL] -name NAME [-tag T]... [-sc_name NAME] -command [--] COMMAND [ARG]...
`

const helpFooter = `
Several kinds may go in one run (for example a counter and an event); they
are sent together, one line each, in one datagram or connection.

Names may not contain '|', ':', ',', '#' or control characters (nor start
with _e{, which starts an event); tags may not contain '|' or ','; a set's
member may not contain '|'. Such input is refused (exit 2), never
rewritten. Line breaks in -e_title, -e_text and -sc_msg are sent as the two
characters \n, as the Datadog clients send them; the server turns them back
into line breaks in events.

-command runs COMMAND (everything after the flags; '--' is optional) with
its input and output passed through, then sends its duration as a timer
(-name, in ms) tagged exit_status:N, and, when -sc_name is given, a service
check: OK when the command exited 0, else CRITICAL, with the message
"exit status N" unless -sc_msg is set. veneur-emit then exits with the
command's status (128+N if signal N killed it, 127 if it could not be
started), even when sending failed; the failure is reported on stderr.

Exit status: 0 sent; 1 could not send (the error says why); 2 the invocation
is wrong, and nothing was run or sent; with -command, the command's status.
`

// options holds every flag's value.
type options struct {
	help     bool
	hostport string
	mode     string
	debug    bool
	timeout  time.Duration
	command  bool
	tls      tlsOptions

	name         string
	count        float64
	gauge        float64
	timing       time.Duration
	histogram    float64
	distribution float64
	set          string
	tags         tagList

	eTitle, eText, eHostname, eAggrKey, ePriority, eSourceType, eAlertType string
	eTime                                                                  int64
	eTags                                                                  tagList

	scName, scStatus, scHostname, scMsg string
	scTime                              int64
	scTags                              tagList
}

// tagList is a tag flag: comma-separated, and it may be repeated. Empty
// pieces ("a,,b", a trailing comma) are dropped.
type tagList []string

func (l *tagList) String() string { return strings.Join(*l, ",") }

func (l *tagList) Set(s string) error {
	for t := range strings.SplitSeq(s, ",") {
		if t != "" {
			*l = append(*l, t)
		}
	}
	return nil
}

// durationFlag is a time.Duration flag whose error says what a duration
// looks like: the flag package's own says only "parse error", and "250"
// (a number of milliseconds, to a timer's sender) is the usual slip.
type durationFlag struct {
	d       *time.Duration
	example string // two valid values, for the error
}

func (f *durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0s"
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration with a unit, such as %s", f.example)
	}
	*f.d = v
	return nil
}

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("veneur-emit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// A flag error shows the synopsis, not every flag, so that the error
	// stays in view; -help shows everything.
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "%sRun veneur-emit -help for every flag.\n", synopsis) }

	fs.BoolVar(&o.help, "help", false, "print this help and exit")
	fs.StringVar(&o.hostport, "hostport", "udp://127.0.0.1:8125", "`URL` of the server: udp://host:port, tcp://host:port (newline-terminated lines) or unixgram:///path; a bare host:port is UDP")
	fs.StringVar(&o.mode, "mode", "", "Veneur's `mode`: metric, event or sc; when set, flags of the other kinds are refused (default: whatever the flags ask for)")
	fs.BoolVar(&o.debug, "debug", false, "print the exact bytes sent to stderr")
	o.timeout = 5 * time.Second
	fs.Var(&durationFlag{d: &o.timeout, example: "3s or 500ms"}, "timeout", "give up sending after this `duration`: connecting, writing and, over tcp, the server confirming by closing")
	fs.BoolVar(&o.command, "command", false, "run the command given after the flags, stream its output, send its duration as a timer tagged exit_status:N and exit with its status")

	fs.BoolVar(&o.tls.enabled, "tls", false, "use TLS over tcp:// (implied by any other -tls_* flag)")
	fs.StringVar(&o.tls.caFile, "tls_ca_file", "", "PEM `file` of the CA that signed the server's certificate (default: the system roots)")
	fs.StringVar(&o.tls.certFile, "tls_cert_file", "", "PEM `file` of the client certificate, for servers that require one (mTLS); needs -tls_key_file")
	fs.StringVar(&o.tls.keyFile, "tls_key_file", "", "PEM `file` of the client certificate's private key")
	fs.StringVar(&o.tls.serverName, "tls_server_name", "", "`name` the server's certificate must carry (default: the host of -hostport)")

	fs.StringVar(&o.name, "name", "", "`name` of the metric, e.g. daemontools.service.starts")
	fs.Float64Var(&o.count, "count", 0, "send a counter with this `value` (fractions are kept)")
	fs.Float64Var(&o.gauge, "gauge", 0, "send a gauge with this `value`")
	fs.Var(&durationFlag{d: &o.timing, example: "250ms or 1.5s"}, "timing", "send a timer of this `duration` (e.g. 250ms, 1.5s), in milliseconds")
	fs.Float64Var(&o.histogram, "histogram", 0, "send a histogram sample with this `value`")
	fs.Float64Var(&o.distribution, "distribution", 0, "send a distribution sample with this `value`")
	fs.StringVar(&o.set, "set", "", "send this `member` to a set (the server counts unique members)")
	fs.Var(&o.tags, "tag", "`tags` of the metric, comma-separated, e.g. env:prod,service:web; may be repeated; host:H sets the host")

	fs.StringVar(&o.eTitle, "e_title", "", "send an event with this `title`")
	fs.StringVar(&o.eText, "e_text", "", "`text` of the event; a line break or the two characters \\n make a new line")
	fs.Int64Var(&o.eTime, "e_time", 0, "time of the event, in Unix `seconds` (default: when the server receives it)")
	fs.StringVar(&o.eHostname, "e_hostname", "", "`host` of the event")
	fs.StringVar(&o.eAggrKey, "e_aggr_key", "", "aggregation `key` grouping the event with others")
	fs.StringVar(&o.ePriority, "e_priority", "", "`priority` of the event: normal or low (default: normal)")
	fs.StringVar(&o.eSourceType, "e_source_type", "", "source `type` of the event")
	fs.StringVar(&o.eAlertType, "e_alert_type", "", "alert `type` of the event: info, warning, error or success (default: info)")
	fs.Var(&o.eTags, "e_event_tags", "`tags` of the event, comma-separated; may be repeated")

	fs.StringVar(&o.scName, "sc_name", "", "send a service check with this `name`")
	fs.StringVar(&o.scStatus, "sc_status", "", "`status` of the check: 0 or OK, 1 or WARNING, 2 or CRITICAL, 3 or UNKNOWN")
	fs.Int64Var(&o.scTime, "sc_time", 0, "time of the check, in Unix `seconds` (default: when the server receives it)")
	fs.StringVar(&o.scHostname, "sc_hostname", "", "`host` of the check")
	fs.StringVar(&o.scMsg, "sc_msg", "", "`message` of the check")
	fs.Var(&o.scTags, "sc_tags", "`tags` of the check, comma-separated; may be repeated")
	return fs
}

func printUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, synopsis)
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
	fmt.Fprint(w, helpFooter)
}

// run is main with its arguments and outputs passed in, so that tests can
// call it; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet(&o, stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage // the flag package has printed the error and usage
	}
	if o.help {
		fs.SetOutput(stdout)
		printUsage(fs)
		return exitOK
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	req, err := o.plan(set, fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "veneur-emit: %v\n", err)
		fs.Usage()
		return exitUsage
	}
	return req.do(o.debug, o.timeout, stdout, stderr)
}
