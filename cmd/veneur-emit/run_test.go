package main

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Each invocation sends exactly these bytes, and -debug prints exactly
// them to stderr.
func TestRunSendsExactLines(t *testing.T) {
	sink := newUDPSink(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-name", "deploys", "-count", "1"}, "deploys:1|c\n"},
		{[]string{"-name", "deploys", "-count", "0.25", "-tag", "env:dev,team:web", "-tag", "canary"}, "deploys:0.25|c|#env:dev,team:web,canary\n"},
		{[]string{"-name", "queue", "-gauge", "-4.5"}, "queue:-4.5|g\n"},
		{[]string{"-name", "job", "-timing", "1.5s"}, "job:1500|ms\n"},
		{[]string{"-name", "size", "-histogram", "512"}, "size:512|h\n"},
		{[]string{"-name", "lat", "-distribution", "0.003"}, "lat:0.003|d\n"},
		{[]string{"-name", "users", "-set", "user:42"}, "users:user:42|s\n"},
		// Empty tag pieces are dropped; a tag may hold ':' and '#'.
		{[]string{"-name", "x", "-count", "2", "-tag", "a,,b:c:d,", "-tag", "issue:#1"}, "x:2|c|#a,b:c:d,issue:#1\n"},
		// Several values of one metric, in a fixed order, in one datagram.
		{[]string{"-name", "m", "-set", "s1", "-gauge", "2", "-count", "1", "-tag", "t"}, "m:1|c|#t\nm:2|g|#t\nm:s1|s|#t\n"},
		{[]string{"-e_title", "Deployed web", "-e_text", "v1.2\nto prod"}, "_e{12,13}:Deployed web|v1.2\\nto prod\n"},
		{[]string{
			"-mode", "event", "-e_title", "t", "-e_text", "x", "-e_time", "1700000000", "-e_hostname", "box",
			"-e_aggr_key", "k", "-e_priority", "low", "-e_source_type", "cron", "-e_alert_type", "error", "-e_event_tags", "a:1,b",
		}, "_e{1,1}:t|x|d:1700000000|h:box|k:k|p:low|s:cron|t:error|#a:1,b\n"},
		{[]string{"-sc_name", "db.up", "-sc_status", "OK"}, "_sc|db.up|0\n"},
		{[]string{
			"-mode", "sc", "-sc_name", "db.up", "-sc_status", "critical", "-sc_time", "1700000000",
			"-sc_hostname", "db1", "-sc_tags", "env:prod", "-sc_msg", "lag 30s\nreplica 2",
		}, "_sc|db.up|2|d:1700000000|h:db1|#env:prod|m:lag 30s\\nreplica 2\n"},
		// Kinds combine: metrics, then the event, then the check.
		{[]string{"-sc_name", "c", "-sc_status", "1", "-e_title", "e", "-name", "n", "-count", "3"}, "n:3|c\n_e{1,0}:e|\n_sc|c|1\n"},
	}
	for _, c := range cases {
		code, stdout, stderr := emit(t, append([]string{"-debug", "-hostport", sink.url}, c.args...)...)
		if code != 0 {
			t.Errorf("%q: exit %d, stderr %q", c.args, code, stderr)
			continue
		}
		if got := sink.recv(t); got != c.want {
			t.Errorf("%q sent\n %q\nwant %q", c.args, got, c.want)
		}
		if stderr != c.want || stdout != "" {
			t.Errorf("%q: -debug printed %q (stdout %q), want exactly %q", c.args, stderr, stdout, c.want)
		}
	}
	// Without -debug nothing is printed.
	if code, stdout, stderr := emit(t, "-hostport", sink.url, "-name", "q", "-count", "1"); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("quiet run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := sink.recv(t); got != "q:1|c\n" {
		t.Errorf("quiet run sent %q", got)
	}
}

// The same bytes over every transport; a bare host:port is UDP.
func TestRunTransports(t *testing.T) {
	const want = "deploys:1|c|#env:dev\n"
	args := []string{"-name", "deploys", "-count", "1", "-tag", "env:dev"}

	udp := newUDPSink(t)
	if code, _, stderr := emit(t, append([]string{"-hostport", strings.TrimPrefix(udp.url, "udp://")}, args...)...); code != 0 {
		t.Fatalf("bare host:port: exit %d: %s", code, stderr)
	}
	if got := udp.recv(t); got != want {
		t.Errorf("bare host:port sent %q", got)
	}

	ux := newUnixgramSink(t)
	if code, _, stderr := emit(t, append([]string{"-hostport", ux.url}, args...)...); code != 0 {
		t.Fatalf("unixgram: exit %d: %s", code, stderr)
	}
	if got := ux.recv(t); got != want {
		t.Errorf("unixgram sent %q", got)
	}

	ln := listenTCP(t)
	tcp := newTCPSink(t, ln)
	if code, _, stderr := emit(t, append([]string{"-hostport", tcp.url}, args...)...); code != 0 {
		t.Fatalf("tcp: exit %d: %s", code, stderr)
	}
	if got := tcp.recv(t); got != want {
		t.Errorf("tcp sent %q", got)
	}
}

// A wrong invocation exits 2 with a clear error and the synopsis, and
// neither runs the command nor sends anything (a send to the missing socket
// would exit 1).
func TestRunRejects(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	nowhere := "unixgram://" + filepath.Join(dir, "missing.sock")
	cases := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-name", "x", "-count", "one"}, `invalid value "one" for flag -count`},
		{[]string{"-name", "x", "-timing", "250"}, `invalid value "250" for flag -timing`},
		{[]string{"-name", "x", "-timing", "250"}, `for flag -timing: want a duration with a unit, such as 250ms or 1.5s`},
		{[]string{"-name", "x", "-count", "1", "-timeout", "3"}, `for flag -timeout: want a duration with a unit, such as 3s or 500ms`},
		{[]string{"-e_title", "t", "-e_time", "yesterday"}, `invalid value "yesterday" for flag -e_time`},
		{[]string{}, "nothing to send"},
		{[]string{"-name", "x"}, "a metric needs -name and a value"},
		{[]string{"-count", "1"}, "empty metric name"},
		{[]string{"-tag", "a:b"}, "a metric needs -name and a value"},
		{[]string{"-name", "x", "-count", "NaN"}, "-count NaN: want a finite number"},
		{[]string{"-name", "x", "-gauge", "+Inf"}, "-gauge +Inf: want a finite number"},
		{[]string{"-name", "x", "-timing", "-1s"}, "-timing -1s"},
		{[]string{"-name", "a|b", "-count", "1"}, `metric name "a|b": '|' is not allowed`},
		{[]string{"-name", "a:b", "-count", "1"}, `metric name "a:b": ':' is not allowed`},
		{[]string{"-name", "a,b", "-count", "1"}, `metric name "a,b": ',' is not allowed`},
		{[]string{"-name", "a#b", "-count", "1"}, `metric name "a#b": '#' is not allowed`},
		{[]string{"-name", "a\nb", "-count", "1"}, `control character '\n'`},
		{[]string{"-name", "x", "-count", "1", "-tag", "a|b"}, `tag "a|b": '|' is not allowed`},
		{[]string{"-name", "x", "-count", "1", "-tag", "a\nb"}, `tag "a\nb": control character`},
		{[]string{"-name", "x", "-set", "a|b"}, `value "a|b": '|' is not allowed`},
		{[]string{"-name", "x", "-count", "1", "extra"}, `unexpected argument "extra"`},
		{[]string{"-e_text", "no title"}, "an event needs -e_title"},
		{[]string{"-e_title", "t", "-e_priority", "urgent"}, `event priority "urgent"`},
		{[]string{"-e_title", "t", "-e_alert_type", "fatal"}, `event alert type "fatal"`},
		{[]string{"-e_title", "t", "-e_hostname", "a|b"}, `event hostname "a|b"`},
		{[]string{"-e_title", "t", "-e_event_tags", "x|y"}, `tag "x|y"`},
		{[]string{"-sc_status", "0"}, "a service check needs -sc_name"},
		{[]string{"-sc_name", "c"}, "a service check needs -sc_status"},
		{[]string{"-sc_name", "c", "-sc_status", "5"}, `service check status "5"`},
		{[]string{"-sc_name", "c|d", "-sc_status", "0"}, `service check name "c|d"`},
		{[]string{"-sc_name", "c", "-sc_status", "0", "-sc_msg", "a|b"}, `service check message "a|b"`},
		{[]string{"-mode", "event", "-name", "x", "-count", "1"}, "-mode event: flags for a metric were given too"},
		{[]string{"-mode", "metric", "-sc_name", "c", "-sc_status", "0"}, "-mode metric: flags for a service check were given too"},
		{[]string{"-mode", "sc"}, "a service check needs -sc_name"},
		{[]string{"-mode", "trace", "-name", "x", "-count", "1"}, `-mode "trace"`},
		{[]string{"-hostport", "http://x:1", "-name", "x", "-count", "1"}, "want udp://host:port, tcp://host:port or unixgram:///path"},
		{[]string{"-hostport", "udp://nohost", "-name", "x", "-count", "1"}, "missing port"},
		{[]string{"-hostport", "unixgram://", "-name", "x", "-count", "1"}, "no socket path"},
		{[]string{"-hostport", "udp://127.0.0.1:8125", "-tls", "-name", "x", "-count", "1"}, "TLS needs a tcp:// -hostport"},
		{[]string{"-hostport", "tcp://127.0.0.1:8125", "-tls_cert_file", "c.pem", "-name", "x", "-count", "1"}, "-tls_cert_file and -tls_key_file go together"},
		{[]string{"-hostport", "tcp://127.0.0.1:8125", "-tls_ca_file", filepath.Join(dir, "none.pem"), "-name", "x", "-count", "1"}, "-tls_ca_file: open"},
		{[]string{"-timeout", "0s", "-name", "x", "-count", "1"}, "-timeout 0s"},
		// -command: nothing runs when the invocation is wrong.
		{[]string{"-name", "x", "-command"}, "-command needs a command"},
		{[]string{"-command", "--", "touch", marker}, "empty metric name"},
		{[]string{"-name", "a|b", "-command", "--", "touch", marker}, `metric name "a|b"`},
		{[]string{"-name", "x", "-tag", "a,b|c", "-command", "--", "touch", marker}, `tag "b|c"`},
		{[]string{"-name", "x", "-count", "1", "-command", "--", "touch", marker}, "-command sends its own timer"},
		{[]string{"-name", "x", "-sc_name", "c", "-sc_status", "0", "-command", "--", "touch", marker}, "leave out -sc_status"},
		{[]string{"-name", "x", "-sc_name", "c|d", "-command", "--", "touch", marker}, `service check name "c|d"`},
	}
	for _, c := range cases {
		code, stdout, stderr := emit(t, append([]string{"-hostport", nowhere}, c.args...)...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", c.args, code, stderr)
		}
		mustContain(t, "stderr", stderr, c.wantErr)
		mustContain(t, "stderr", stderr, "usage: veneur-emit")
		if stdout != "" {
			t.Errorf("%q: stdout %q", c.args, stdout)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command ran despite a wrong invocation")
	}
}

// -help documents every flag, on stdout, and exits 0.
func TestRunHelp(t *testing.T) {
	code, stdout, stderr := emit(t, "-help")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	newFlagSet(&options{}, nil).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(stdout, "\n  -"+f.Name+" ") && !strings.Contains(stdout, "\n  -"+f.Name+"\n") {
			t.Errorf("-help does not list -%s", f.Name)
		}
	})
	for _, want := range []string{"Exit status: 0 sent; 1 could not send", "exit_status:N", "usage: veneur-emit"} {
		mustContain(t, "-help", stdout, want)
	}
}

// A send that fails exits 1 and says where and why.
func TestRunSendFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.sock")
	code, _, stderr := emit(t, "-hostport", "unixgram://"+missing, "-name", "x", "-count", "1")
	if code != 1 {
		t.Errorf("missing socket: exit %d, want 1", code)
	}
	mustContain(t, "stderr", stderr, "veneur-emit: send to unixgram://"+missing+": ")
	mustContain(t, "stderr", stderr, "no such file or directory")

	addr := closedPort(t)
	code, _, stderr = emit(t, "-hostport", "tcp://"+addr, "-name", "x", "-count", "1")
	if code != 1 {
		t.Errorf("closed port: exit %d, want 1", code)
	}
	mustContain(t, "stderr", stderr, "veneur-emit: send to tcp://"+addr+": ")
	mustContain(t, "stderr", stderr, "connection refused")
}

var timerLine = regexp.MustCompile(`^job:([0-9.]+)\|ms\|#team:ops,exit_status:(\d+)\n`)

// sentMillis checks that payload starts with -command's timer for the
// given status and returns its value.
func sentMillis(t *testing.T, payload string, status int) float64 {
	t.Helper()
	m := timerLine.FindStringSubmatch(payload)
	if m == nil || m[2] != strconv.Itoa(status) {
		t.Fatalf("sent %q, want the timer tagged exit_status:%d", payload, status)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// -command passes the command's output through, sends its duration and
// status, and exits with its status.
func TestRunCommand(t *testing.T) {
	sink := newUDPSink(t)
	base := []string{"-debug", "-hostport", sink.url, "-name", "job", "-tag", "team:ops"}

	start := time.Now()
	code, stdout, stderr := emit(t, append(base, "-sc_name", "job.ok", "-command", "--", "sh", "-c", "echo out; echo err >&2; sleep 0.1; exit 3")...)
	wall := time.Since(start)
	if code != 3 {
		t.Errorf("exit %d, want the command's 3", code)
	}
	if stdout != "out\n" {
		t.Errorf("stdout %q, want the command's", stdout)
	}
	sent := sink.recv(t)
	if stderr != "err\n"+sent {
		t.Errorf("stderr %q, want the command's, then the -debug lines %q", stderr, sent)
	}
	ms := sentMillis(t, sent, 3)
	if ms < 100 || ms > float64(wall.Milliseconds())+1 {
		t.Errorf("timer %vms, want between the command's 100ms sleep and the %s the run took", ms, wall)
	}
	if want := "_sc|job.ok|2|m:exit status 3\n"; !strings.HasSuffix(sent, want) {
		t.Errorf("sent %q, want it to end with the check %q", sent, want)
	}

	// Success: an OK check with the given message; '--' is optional.
	code, _, _ = emit(t, append(base, "-sc_name", "job.ok", "-sc_msg", "nightly", "-command", "true")...)
	sent = sink.recv(t)
	sentMillis(t, sent, 0)
	if code != 0 || !strings.HasSuffix(sent, "\n_sc|job.ok|0|m:nightly\n") {
		t.Errorf("exit %d, sent %q", code, sent)
	}

	// Not found: 127, as a shell says, and the failure is still reported.
	code, _, stderr = emit(t, append(base, "-command", "--", "/nonexistent/job")...)
	if code != 127 {
		t.Errorf("missing command: exit %d, want 127", code)
	}
	mustContain(t, "stderr", stderr, "/nonexistent/job")
	sentMillis(t, sink.recv(t), 127)

	// Killed by a signal: 128+N.
	code, _, _ = emit(t, append(base, "-command", "--", "sh", "-c", "kill -KILL $$")...)
	if code != 128+9 {
		t.Errorf("killed command: exit %d, want 137", code)
	}
	sentMillis(t, sink.recv(t), 137)

	// A send failure does not hide the command's status.
	missing := "unixgram://" + filepath.Join(t.TempDir(), "missing.sock")
	code, _, stderr = emit(t, "-hostport", missing, "-name", "job", "-command", "--", "sh", "-c", "exit 4")
	if code != 4 {
		t.Errorf("send failure: exit %d, want the command's 4", code)
	}
	mustContain(t, "stderr", stderr, "veneur-emit: send to "+missing)
	code, _, stderr = emit(t, "-hostport", missing, "-name", "job", "-command", "true")
	if code != 0 {
		t.Errorf("send failure after success: exit %d, want the command's 0", code)
	}
	mustContain(t, "stderr", stderr, "veneur-emit: send to "+missing)
}

// SIGTERM sent to veneur-emit reaches the command, whose end is still
// reported. This needs its own process: the signal would hit the test.
func TestCommandForwardsSIGTERM(t *testing.T) {
	t.Parallel() // mostly go build
	bin := filepath.Join(t.TempDir(), "veneur-emit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sink := newUDPSink(t)
	cmd := exec.Command(bin, "-hostport", sink.url, "-name", "job", "-tag", "team:ops",
		"-command", "--", "sh", "-c", "echo ready; exec sleep 30")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// "ready" means the command runs, so the signal handler is in place.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit %d (%v), want 143: the command ended by SIGTERM", code, err)
	}
	sentMillis(t, sink.recv(t), 143)
}
