package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/internal/await"
)

// update rewrites the golden files: the docs' examples (docs_test.go) and
// testdata/top-pane.txt, the live view as tmux captured it (a sample for
// the docs, not compared).
var update = flag.Bool("update", false, "rewrite the docs' golden examples and testdata/top-pane.txt")

// topInstance is a running binary that has received a known set of
// lines, with max_series_per_name 100:
//
//	top.one       1 series, 600 samples
//	top.ten      10 series,  50 samples (5 each)
//	top.hundred 100 series, 200 samples (2 each), and 30 samples of 30
//	            more series shed by max_series_per_name
type topInstance struct {
	httpAddr string
}

func startTopInstance(t *testing.T) topInstance {
	t.Helper()
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	// A day-long interval: no flush resets the counts while the test reads them.
	startBinary(t, fmt.Sprintf("statsd_listen_addresses: [udp://%s]\nhttp_address: %s\ninterval: 24h\nhostname: box\nmax_series_per_name: 100\n", udp, httpAddr))
	waitHealthy(t, httpAddr)
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(lines []string) {
		t.Helper()
		for chunk := range slices.Chunk(lines, 20) { // 20 lines a datagram
			if _, err := conn.Write([]byte(strings.Join(chunk, "\n"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	var lines []string
	for range 600 {
		lines = append(lines, "top.one:1|c|#env:test")
	}
	for i := range 50 {
		lines = append(lines, fmt.Sprintf("top.ten:1|c|#env:test,shard:%d", i%10))
	}
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("top.hundred:1|c|#env:test,user_id:%d", i%100))
	}
	send(lines)
	// The 30 series past the limit go once the first 100 are in, so
	// which ones are shed does not depend on the readers' order.
	awaitStats(t, httpAddr, func(st aggregate.SeriesStats) bool { return st.Samples == 850 })
	lines = lines[:0]
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("top.hundred:1|c|#env:test,user_id:over-%d", i))
	}
	send(lines)
	awaitStats(t, httpAddr, func(st aggregate.SeriesStats) bool { return st.ShedSamples["max_series_per_name"] == 30 })
	return topInstance{httpAddr: httpAddr}
}

// awaitStats polls /debug/series until ok holds.
func awaitStats(t *testing.T, httpAddr string, ok func(aggregate.SeriesStats) bool) {
	t.Helper()
	await.Until(t, 10*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/debug/series")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var st aggregate.SeriesStats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false, err.Error()
		}
		return ok(st), fmt.Sprintf("%+v", st)
	})
}

// TestBinaryTopOnce: veneur-lite top -once, the built binary, lists the
// names sent with exactly their series, samples and shed samples, in
// the order of each -sort.
func TestBinaryTopOnce(t *testing.T) {
	inst := startTopInstance(t)
	type row struct {
		name                  string
		series, samples, shed string
		tags                  string
	}
	one := row{"top.one", "1", "600", "0", "env:1"}
	ten := row{"top.ten", "10", "50", "0", "shard:10 env:1"}
	hundred := row{"top.hundred", "100", "200", "30", "user_id:100 env:1"}
	for _, tc := range []struct {
		sort string
		want []row
	}{
		{"series", []row{hundred, ten, one}},
		{"samples", []row{one, hundred, ten}},
		{"shed", []row{hundred, one, ten}}, // ties by name
	} {
		code, stdout, stderr := runBinary(t, nil, "top", "-once", "-addr", inst.httpAddr, "-sort", tc.sort)
		if code != 0 || stderr != "" {
			t.Fatalf("-sort %s: exit %d, stderr %q", tc.sort, code, stderr)
		}
		t.Logf("veneur-lite top -once -sort %s:\n%s", tc.sort, stdout)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		head := []string{
			"veneur-lite top  " + inst.httpAddr + "  interval ",
			"series: 111 of ",
			"shed: 30 (max_series_per_name 30)",
			"",
			fmt.Sprintf("top 3 of 3 names by %s (-n 20)", tc.sort),
			"NAME         SERIES  SAMPLES  SAMPLES/S    SHED  TAG KEYS:VALUES",
		}
		if len(lines) != len(head)+3 {
			t.Fatalf("-sort %s: %d lines, want %d", tc.sort, len(lines), len(head)+3)
		}
		for i, h := range head {
			if !strings.HasPrefix(lines[i], h) || (h == "" && lines[i] != "") {
				t.Errorf("-sort %s: line %d %q, want %q…", tc.sort, i, lines[i], h)
			}
		}
		if !strings.Contains(lines[1], "  samples: 850 (") {
			t.Errorf("-sort %s: %q, want 850 samples", tc.sort, lines[1])
		}
		for i, w := range tc.want {
			f := strings.Fields(lines[len(head)+i])
			got := row{f[0], f[1], f[2], f[4], strings.Join(f[5:], " ")}
			if got != w {
				t.Errorf("-sort %s: row %d %q, want %+v", tc.sort, i, lines[len(head)+i], w)
			}
		}
	}

	// -json is the endpoint's answer; -n cuts it.
	code, stdout, _ := runBinary(t, nil, "top", "-json", "-n", "1", "-sort", "samples", "-addr", "http://"+inst.httpAddr)
	var st aggregate.SeriesStats
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || len(st.Names) != 1 || st.Names[0].Name != "top.one" || st.TotalNames != 3 {
		t.Errorf("-json: exit %d, %v, %+v", code, err, st)
	}
	// Nothing listening: one line, exit 1.
	closed := freePort(t, "tcp")
	code, stdout, stderr := runBinary(t, nil, "top", "-once", "-addr", closed)
	if code != 1 || stdout != "" || stderr != "veneur-lite top: "+closed+" unreachable: dial tcp "+closed+": connect: connection refused\n" {
		t.Errorf("instance down: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// tmuxSession is a detached tmux of a fixed size on its own server, so
// that neither a user's tmux nor their config is touched.
type tmuxSession struct {
	tmux, sock string
}

func (s tmuxSession) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(s.tmux, append([]string{"-f", "/dev/null", "-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// capture is the pane's text, its trailing blank lines dropped.
func (s tmuxSession) capture(t *testing.T) string {
	t.Helper()
	return strings.TrimRight(s.run(t, "capture-pane", "-p", "-t", "top"), "\n ")
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestBinaryTopLiveInTmux drives the live view in a real terminal: it
// shows the names, s changes the order, + changes n, q quits, and the
// terminal is left cleared, its mode and cursor as they were.
func TestBinaryTopLiveInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not found: apt-get install -y tmux (.ci/run does) to run the live view in a terminal")
	}
	inst := startTopInstance(t)
	dir := t.TempDir()
	s := tmuxSession{tmux: tmux, sock: filepath.Join(dir, "tmux.sock")}
	before, after := filepath.Join(dir, "stty.before"), filepath.Join(dir, "stty.after")
	// The pane's shell records the terminal's mode around top, says how
	// top exited, and stays (the pane would close with it).
	script := fmt.Sprintf("stty -g > %s; %s top -addr %s; echo \"top exited $?\"; stty -g > %s; exec sleep 60",
		shellQuote(before), shellQuote(binary(t)), shellQuote(inst.httpAddr), shellQuote(after))
	s.run(t, "new-session", "-d", "-s", "top", "-x", "100", "-y", "16", "sh -c "+shellQuote(script))
	t.Cleanup(func() { _ = exec.Command(tmux, "-f", "/dev/null", "-S", s.sock, "kill-server").Run() })

	var pane string
	awaitPane := func(what string, ok func(pane string) bool) {
		t.Helper()
		await.Until(t, 10*time.Second, func() (bool, string) {
			pane = s.capture(t)
			return ok(pane), what + "; pane:\n" + pane
		})
		t.Logf("pane, %s:\n%s", what, pane)
	}
	rowsIn := func(pane string) []string {
		var names []string
		for _, l := range strings.Split(pane, "\n") {
			if strings.HasPrefix(l, "top.") {
				names = append(names, strings.Fields(l)[0])
			}
		}
		return names
	}
	awaitPane("the names by series", func(p string) bool {
		return strings.Contains(p, "top 3 of 3 names by series (-n 20)") && slices.Equal(rowsIn(p), []string{"top.hundred", "top.ten", "top.one"})
	})
	for _, want := range []string{"series: 111 of ", "shed: 30 (max_series_per_name 30)", "[s] sort  [+/-] n  [q] quit"} {
		if !strings.Contains(pane, want) {
			t.Errorf("pane lacks %q", want)
		}
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "top-pane.txt"), []byte(pane+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	s.run(t, "send-keys", "-t", "top", "s")
	awaitPane("after s: by samples", func(p string) bool {
		return strings.Contains(p, "top 3 of 3 names by samples (-n 20)") && slices.Equal(rowsIn(p), []string{"top.one", "top.hundred", "top.ten"})
	})
	s.run(t, "send-keys", "-t", "top", "+")
	awaitPane("after +: n 25", func(p string) bool { return strings.Contains(p, "top 3 of 3 names by samples (-n 25)") })

	s.run(t, "send-keys", "-t", "top", "q")
	awaitPane("after q", func(p string) bool { return strings.Contains(p, "top exited") })
	if pane != "top exited 0" {
		t.Errorf("pane after q:\n%s\nwant only \"top exited 0\": top's screen cleared", pane)
	}
	if got := strings.TrimSpace(s.run(t, "display-message", "-p", "-t", "top", "#{cursor_flag}")); got != "1" {
		t.Errorf("cursor_flag %q after q, want 1: the cursor shown again", got)
	}
	var a []byte
	await.Until(t, 5*time.Second, func() (bool, string) {
		a, _ = os.ReadFile(after)
		return len(a) > 0, "nothing in " + after
	})
	if b, err := os.ReadFile(before); err != nil || string(a) != string(b) {
		t.Errorf("terminal mode before top %q (%v), after %q: want it restored", b, err, a)
	}
}

// veneur-lite top on the instance's own host works when http_address is
// a non-loopback address of that host: the client then connects from
// that address, which is this host's, not from loopback. The host is a
// network namespace of the test's own, with a veth pair whose one end holds a
// documentation address, so nothing leaves this machine.
func TestBinaryTopOnOwnNonLoopbackAddress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a network namespace needs root")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (util-linux, iproute2): %v", tool, err)
		}
	}
	const ip = "198.51.100.7" // TEST-NET-2, on the namespace's veth only
	httpAddr := ip + ":8127"
	path := filepath.Join(t.TempDir(), "veneur.yaml")
	config := "statsd_listen_addresses: [udp://127.0.0.1:8125]\nhttp_address: " + httpAddr + "\ninterval: 1s\nimport_token: t0ken\n"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	setup := "ip link set lo up && ip link add v0 type veth peer name v1 && ip addr add " + ip + "/24 dev v0 && ip link set v0 up && ip link set v1 up && exec \"$0\" \"$@\""
	p := startProc(t, exec.Command("unshare", "--net", "sh", "-c", setup, binary(t), "-f", path))
	p.waitErrLine(t, 10*time.Second, "veneur-lite started")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	top := exec.CommandContext(ctx, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", p.cmd.Process.Pid), binary(t), "top", "-once", "-addr", httpAddr)
	var stdout, stderr strings.Builder
	top.Stdout, top.Stderr = &stdout, &stderr
	err := top.Run()
	if err != nil || !strings.HasPrefix(stdout.String(), "veneur-lite top  "+httpAddr) {
		t.Errorf("top -addr %s on the instance's host: %v, stdout %q, stderr %q", httpAddr, err, stdout.String(), stderr.String())
	}
}
