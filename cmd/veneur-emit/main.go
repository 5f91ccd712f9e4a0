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
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
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

Names may not contain '|', ':', ',', '#' or control characters; tags may not
contain '|' or ','; a set's member may not contain '|'. Such input is
refused (exit 2), never rewritten. Line breaks in -e_title, -e_text and
-sc_msg are sent as the two characters \n, as the Datadog clients send them;
the server turns them back into line breaks in events.

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
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up sending after this `duration`: connecting, writing and, over tcp, the server confirming by closing")
	fs.BoolVar(&o.command, "command", false, "run the command given after the flags, stream its output, send its duration as a timer tagged exit_status:N and exit with its status")

	fs.BoolVar(&o.tls.enabled, "tls", false, "use TLS over tcp:// (implied by any other -tls_* flag)")
	fs.StringVar(&o.tls.caFile, "tls_ca_file", "", "PEM `file` of the CA that signed the server's certificate (default: the system roots)")
	fs.StringVar(&o.tls.certFile, "tls_cert_file", "", "PEM `file` of the client certificate, for servers that require one (mTLS); needs -tls_key_file")
	fs.StringVar(&o.tls.keyFile, "tls_key_file", "", "PEM `file` of the client certificate's private key")
	fs.StringVar(&o.tls.serverName, "tls_server_name", "", "`name` the server's certificate must carry (default: the host of -hostport)")

	fs.StringVar(&o.name, "name", "", "`name` of the metric, e.g. daemontools.service.starts")
	fs.Float64Var(&o.count, "count", 0, "send a counter with this `value` (fractions are kept)")
	fs.Float64Var(&o.gauge, "gauge", 0, "send a gauge with this `value`")
	fs.DurationVar(&o.timing, "timing", 0, "send a timer of this `duration` (e.g. 250ms, 1.5s), in milliseconds")
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

// request is what one run sends.
type request struct {
	dest    destination
	tlsCfg  *tls.Config // nil: no TLS
	payload []byte      // the lines known before any command runs

	commandArgv []string
	timer       Metric        // -command's timer, its value and exit tag still to come
	check       *ServiceCheck // -command's check, its status still to come
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

// do runs the command, if any, and sends the lines.
func (r *request) do(debug bool, timeout time.Duration, stdout, stderr io.Writer) int {
	payload := r.payload
	status := exitOK
	if r.commandArgv != nil {
		var elapsed time.Duration
		status, elapsed = runCommand(r.commandArgv, stdout, stderr)
		var err error
		if payload, err = appendLine(payload, r.commandTimer(status, elapsed)); err == nil && r.check != nil {
			payload, err = appendLine(payload, r.commandCheck(status))
		}
		if err != nil { // plan checked both lines; only a bug gets here
			fmt.Fprintf(stderr, "veneur-emit: %v\n", err)
			return status
		}
	}
	if debug {
		_, _ = stderr.Write(payload)
	}
	if err := send(r.dest, r.tlsCfg, payload, timeout); err != nil {
		fmt.Fprintf(stderr, "veneur-emit: send to %s: %v\n", r.dest, err)
		if r.commandArgv == nil {
			return exitSendError
		}
	}
	return status
}

// plan checks the flags and builds every line that does not depend on a
// command's outcome. Any error is the invocation's fault.
func (o *options) plan(set map[string]bool, args []string) (*request, error) {
	dest, err := parseHostport(o.hostport)
	if err != nil {
		return nil, err
	}
	o.tls.enabled = o.tls.enabled || o.tls.caFile != "" || o.tls.certFile != "" || o.tls.keyFile != "" || o.tls.serverName != ""
	if o.tls.enabled && dest.network != "tcp" {
		return nil, fmt.Errorf("TLS needs a tcp:// -hostport, not %s", dest)
	}
	if (o.tls.certFile == "") != (o.tls.keyFile == "") {
		return nil, errors.New("-tls_cert_file and -tls_key_file go together")
	}
	req := &request{dest: dest}
	if o.tls.enabled {
		if req.tlsCfg, err = o.tls.config(); err != nil {
			return nil, err
		}
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("-timeout %s: want a positive duration", o.timeout)
	}
	if len(args) > 0 && !o.command {
		return nil, fmt.Errorf("unexpected argument %q (a command to time needs -command)", args[0])
	}
	if o.command && len(args) == 0 {
		return nil, errors.New("-command needs a command after the flags, e.g. -command -- sleep 1")
	}

	values := []string{"count", "gauge", "timing", "histogram", "distribution", "set"}
	kinds := map[string]bool{}
	for f := range set {
		switch {
		case strings.HasPrefix(f, "e_"):
			kinds["event"] = true
		case strings.HasPrefix(f, "sc_"):
			kinds["sc"] = true
		case f == "name" || f == "tag" || f == "command" || slices.Contains(values, f):
			kinds["metric"] = true
		}
	}
	switch o.mode {
	case "":
	case "metric", "event", "sc":
		for k := range kinds {
			// -command may send a service check besides its timer.
			commandCheck := o.mode == "metric" && k == "sc" && o.command
			if k != o.mode && !commandCheck {
				return nil, fmt.Errorf("-mode %s: flags for a %s were given too", o.mode, kindName(k))
			}
		}
		kinds[o.mode] = true
	default:
		return nil, fmt.Errorf("-mode %q: want metric, event or sc", o.mode)
	}
	if len(kinds) == 0 {
		return nil, errors.New("nothing to send: give a metric (-name and a value), an event (-e_title) or a service check (-sc_name, -sc_status)")
	}

	var lines []byte
	if kinds["metric"] {
		var metrics []Metric
		add := func(flagName, typ, value string) {
			if set[flagName] {
				metrics = append(metrics, Metric{Name: o.name, Value: value, Type: typ, Tags: o.tags})
			}
		}
		for _, f := range []struct {
			flag string
			v    float64
		}{{"count", o.count}, {"gauge", o.gauge}, {"histogram", o.histogram}, {"distribution", o.distribution}} {
			if set[f.flag] && (math.IsNaN(f.v) || math.IsInf(f.v, 0)) {
				return nil, fmt.Errorf("-%s %v: want a finite number", f.flag, f.v)
			}
		}
		if o.timing < 0 {
			return nil, fmt.Errorf("-timing %s: want a duration of zero or more", o.timing)
		}
		add("count", "c", formatNumber(o.count))
		add("gauge", "g", formatNumber(o.gauge))
		add("timing", "ms", formatMillis(o.timing))
		add("histogram", "h", formatNumber(o.histogram))
		add("distribution", "d", formatNumber(o.distribution))
		add("set", "s", o.set)
		if o.command {
			if len(metrics) > 0 {
				return nil, errors.New("-command sends its own timer; leave out -count, -gauge, -timing, -histogram, -distribution and -set")
			}
			req.commandArgv = args
			req.timer = Metric{Name: o.name, Type: "ms", Tags: o.tags}
			// Check the name and tags now, before the command runs.
			if _, err := req.commandTimer(0, 0).AppendTo(nil); err != nil {
				return nil, err
			}
		} else if len(metrics) == 0 {
			return nil, errors.New("a metric needs -name and a value: -count, -gauge, -timing, -histogram, -distribution or -set (or -command)")
		}
		for _, m := range metrics {
			if lines, err = appendLine(lines, m); err != nil {
				return nil, err
			}
		}
	}
	if kinds["event"] {
		if !set["e_title"] {
			return nil, errors.New("an event needs -e_title")
		}
		e := Event{
			Title: o.eTitle, Text: o.eText, Timestamp: o.eTime, Hostname: o.eHostname,
			AggregationKey: o.eAggrKey, Priority: o.ePriority, SourceType: o.eSourceType,
			AlertType: o.eAlertType, Tags: o.eTags,
		}
		if lines, err = appendLine(lines, e); err != nil {
			return nil, err
		}
	}
	if kinds["sc"] {
		sc := ServiceCheck{Name: o.scName, Timestamp: o.scTime, Hostname: o.scHostname, Tags: o.scTags, Message: o.scMsg}
		if !set["sc_name"] {
			return nil, errors.New("a service check needs -sc_name")
		}
		switch {
		case o.command && set["sc_status"]:
			return nil, errors.New("with -command the check's status is the command's outcome; leave out -sc_status")
		case o.command:
			req.check = &sc
			if _, err := req.commandCheck(0).AppendTo(nil); err != nil {
				return nil, err
			}
		case !set["sc_status"]:
			return nil, errors.New("a service check needs -sc_status")
		default:
			if sc.Status, err = parseStatus(o.scStatus); err != nil {
				return nil, err
			}
			if lines, err = appendLine(lines, sc); err != nil {
				return nil, err
			}
		}
	}
	req.payload = lines
	return req, nil
}

func kindName(k string) string {
	switch k {
	case "sc":
		return "service check"
	default:
		return k
	}
}

type appender interface{ AppendTo([]byte) ([]byte, error) }

// appendLine appends l and its newline.
func appendLine(dst []byte, l appender) ([]byte, error) {
	dst, err := l.AppendTo(dst)
	if err != nil {
		return dst, err
	}
	return append(dst, '\n'), nil
}

// commandTimer is -command's timer for a command that exited with status
// after running for elapsed.
func (r *request) commandTimer(status int, elapsed time.Duration) Metric {
	m := r.timer
	m.Value = formatMillis(elapsed)
	m.Tags = append(m.Tags[:len(m.Tags):len(m.Tags)], "exit_status:"+strconv.Itoa(status))
	return m
}

// commandCheck is -command's service check for a command that exited with
// status.
func (r *request) commandCheck(status int) ServiceCheck {
	sc := *r.check
	sc.Status = StatusOK
	if status != 0 {
		sc.Status = StatusCritical
	}
	if sc.Message == "" {
		sc.Message = "exit status " + strconv.Itoa(status)
	}
	return sc
}

// formatMillis writes d in milliseconds, the unit of a DogStatsD timer.
func formatMillis(d time.Duration) string {
	return formatNumber(float64(d) / float64(time.Millisecond))
}
