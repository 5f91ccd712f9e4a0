package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// request is what one run sends.
type request struct {
	dest    destination
	tlsCfg  *tls.Config // nil: no TLS
	payload []byte      // the lines known before any command runs

	commandArgv []string
	timer       Metric        // -command's timer, its value and exit tag still to come
	check       *ServiceCheck // -command's check, its status still to come
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

// The kinds of line one run may send.
const (
	kindMetric = "metric"
	kindEvent  = "event"
	kindCheck  = "sc" // as Veneur's -mode names it
)

// valueFlags are the flags that each send one metric line, in the order
// their lines go out.
var valueFlags = []struct{ flag, typ string }{
	{"count", "c"}, {"gauge", "g"}, {"timing", "ms"}, {"histogram", "h"}, {"distribution", "d"}, {"set", "s"},
}

// plan checks the flags and builds every line that does not depend on a
// command's outcome; set holds the flags given. Any error is the
// invocation's fault.
func (o *options) plan(set map[string]bool, args []string) (*request, error) {
	req, err := o.destination()
	if err != nil {
		return nil, err
	}
	if len(args) > 0 && !o.command {
		return nil, fmt.Errorf("unexpected argument %q (a command to time needs -command)", args[0])
	}
	if o.command && len(args) == 0 {
		return nil, errors.New("-command needs a command after the flags, e.g. -command -- sleep 1")
	}
	kinds, err := o.kinds(set)
	if err != nil {
		return nil, err
	}
	var lines []byte
	if kinds[kindMetric] {
		if lines, err = o.planMetrics(req, set, args, lines); err != nil {
			return nil, err
		}
	}
	if kinds[kindEvent] {
		if lines, err = o.planEvent(set, lines); err != nil {
			return nil, err
		}
	}
	if kinds[kindCheck] {
		if lines, err = o.planCheck(req, set, lines); err != nil {
			return nil, err
		}
	}
	req.payload = lines
	return req, nil
}

// destination reads -hostport, -timeout and the TLS flags, loading the
// certificates.
func (o *options) destination() (*request, error) {
	dest, err := parseHostport(o.hostport)
	if err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("-timeout %s: want a positive duration", o.timeout)
	}
	req := &request{dest: dest}
	t := o.tls
	if !t.enabled && t.caFile == "" && t.certFile == "" && t.keyFile == "" && t.serverName == "" {
		return req, nil
	}
	if dest.network != "tcp" {
		return nil, fmt.Errorf("TLS needs a tcp:// -hostport, not %s", dest)
	}
	if (t.certFile == "") != (t.keyFile == "") {
		return nil, errors.New("-tls_cert_file and -tls_key_file go together")
	}
	if req.tlsCfg, err = t.config(); err != nil {
		return nil, err
	}
	return req, nil
}

// kinds tells which kinds of line the flags ask for, and checks them
// against -mode.
func (o *options) kinds(set map[string]bool) (map[string]bool, error) {
	kinds := map[string]bool{}
	for f := range set {
		switch {
		case strings.HasPrefix(f, "e_"):
			kinds[kindEvent] = true
		case strings.HasPrefix(f, "sc_"):
			kinds[kindCheck] = true
		case f == "name" || f == "tag" || f == "command":
			kinds[kindMetric] = true
		}
	}
	for _, v := range valueFlags {
		if set[v.flag] {
			kinds[kindMetric] = true
		}
	}
	switch o.mode {
	case "":
	case kindMetric, kindEvent, kindCheck:
		for k := range kinds {
			// -command may send a service check besides its timer.
			commandCheck := o.mode == kindMetric && k == kindCheck && o.command
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
	return kinds, nil
}

func kindName(k string) string {
	if k == kindCheck {
		return "service check"
	}
	return k
}

// planMetrics appends a line per value flag given, or, with -command,
// prepares its timer.
func (o *options) planMetrics(req *request, set map[string]bool, args []string, lines []byte) ([]byte, error) {
	values := map[string]string{"timing": formatMillis(o.timing), "set": o.set}
	for f, v := range map[string]float64{"count": o.count, "gauge": o.gauge, "histogram": o.histogram, "distribution": o.distribution} {
		if set[f] && (math.IsNaN(v) || math.IsInf(v, 0)) {
			return nil, fmt.Errorf("-%s %v: want a finite number", f, v)
		}
		values[f] = formatNumber(v)
	}
	if set["timing"] && o.timing < 0 {
		return nil, fmt.Errorf("-timing %s: want a duration of zero or more", o.timing)
	}
	n := 0
	for _, v := range valueFlags {
		if !set[v.flag] {
			continue
		}
		n++
		var err error
		if lines, err = appendLine(lines, Metric{Name: o.name, Value: values[v.flag], Type: v.typ, Tags: o.tags}); err != nil {
			return nil, err
		}
	}
	switch {
	case o.command && n > 0:
		return nil, errors.New("-command sends its own timer; leave out -count, -gauge, -timing, -histogram, -distribution and -set")
	case o.command:
		req.commandArgv = args
		req.timer = Metric{Name: o.name, Type: "ms", Tags: o.tags}
		// Check the name and tags now, before the command runs.
		if _, err := req.commandTimer(0, 0).AppendTo(nil); err != nil {
			return nil, err
		}
	case n == 0:
		return nil, errors.New("a metric needs -name and a value: -count, -gauge, -timing, -histogram, -distribution or -set (or -command)")
	}
	return lines, nil
}

// planEvent appends the event line.
func (o *options) planEvent(set map[string]bool, lines []byte) ([]byte, error) {
	if !set["e_title"] {
		return nil, errors.New("an event needs -e_title")
	}
	return appendLine(lines, Event{
		Title: o.eTitle, Text: o.eText, Timestamp: o.eTime, Hostname: o.eHostname,
		AggregationKey: o.eAggrKey, Priority: o.ePriority, SourceType: o.eSourceType,
		AlertType: o.eAlertType, Tags: o.eTags,
	})
}

// planCheck appends the service check line, or, with -command, prepares
// the check whose status the command decides.
func (o *options) planCheck(req *request, set map[string]bool, lines []byte) ([]byte, error) {
	if !set["sc_name"] {
		return nil, errors.New("a service check needs -sc_name")
	}
	sc := ServiceCheck{Name: o.scName, Timestamp: o.scTime, Hostname: o.scHostname, Tags: o.scTags, Message: o.scMsg}
	switch {
	case o.command && set["sc_status"]:
		return nil, errors.New("with -command the check's status is the command's outcome; leave out -sc_status")
	case o.command:
		req.check = &sc
		_, err := req.commandCheck(0).AppendTo(nil)
		return lines, err
	case !set["sc_status"]:
		return nil, errors.New("a service check needs -sc_status")
	}
	var err error
	if sc.Status, err = parseStatus(o.scStatus); err != nil {
		return nil, err
	}
	return appendLine(lines, sc)
}
