package top

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// runMain runs Main with stdout and stderr captured (not terminals).
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func serveSnapshot(t *testing.T) (addr string, body []byte) {
	t.Helper()
	body, err := json.Marshal(snapshot())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/series" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), body
}

// TestMainOnce: -once prints one plain snapshot, nothing cut, and exits
// 0; -json prints the body as it came.
func TestMainOnce(t *testing.T) {
	addr, body := serveSnapshot(t)
	code, stdout, stderr := runMain(t, "-once", "-addr", addr, "-sort", "samples", "-n", "3")
	want := strings.Join(Render(snapshot(), View{Addr: addr, Sort: "samples", N: 3}), "\n") + "\n"
	if code != 0 || stderr != "" || stdout != want {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, stderr, stdout, want)
	}
	if !strings.Contains(stdout, "\ncheckout.payment.provider.latency.by_region.histogram     100     234k") {
		t.Errorf("a long name was cut in plain output:\n%s", stdout)
	}
	code, stdout, stderr = runMain(t, "-json", "-addr", "http://"+addr)
	if code != 0 || stderr != "" || stdout != string(body) {
		t.Errorf("-json: exit %d, stderr %q, stdout %q", code, stderr, stdout)
	}
}

// TestMainOnceFails: an instance that cannot be read is one line on
// stderr and exit 1.
func TestMainOnceFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the /debug/ endpoints answer clients on this host only", http.StatusForbidden)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, args := range [][]string{{"-once"}, {"-json"}} {
		code, stdout, stderr := runMain(t, append(args, "-addr", addr)...)
		want := "veneur-lite top: " + addr + " refused /debug/series (403): it answers clients on its own host only, and this one is not on it; run veneur-lite top on that host (against any of its addresses), or set enable_profiling: true in its config\n"
		if code != 1 || stdout != "" || stderr != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	srv.Close()
	code, _, stderr := runMain(t, "-once", "-addr", addr)
	if code != 1 || !strings.HasPrefix(stderr, "veneur-lite top: "+addr+" unreachable: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("down: exit %d, stderr %q", code, stderr)
	}
}

func TestMainUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "-n 0: want 1 to 10000"},
		{[]string{"-n", "10001"}, "-n 10001: want 1 to 10000"},
		{[]string{"-sort", "memory"}, `-sort "memory": want series, samples, shed`},
		{[]string{"-interval", "10ms"}, "-interval 10ms: want 100ms or more"},
		{[]string{"127.0.0.1:8127"}, `unexpected argument "127.0.0.1:8127"`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-addr", "veneur-1"}, `address "veneur-1": want host:port`},
		{[]string{"-addr", "127.0.0.1:8127", "-ca-file", "ca.pem"}, "is not https://, but TLS files are given"},
	} {
		code, stdout, stderr := runMain(t, tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	if _, _, stderr := runMain(t, "-h"); !strings.Contains(stderr, "usage: veneur-lite top") || !strings.Contains(stderr, "enable_profiling: true") {
		t.Errorf("-h: %q", stderr)
	}
}

// TestBatch: with stdout not a terminal, a plain snapshot every interval,
// failures on stderr and retried, until the context ends.
func TestBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &fakeInstance{names: threeNames()}
		var out, errOut lockedBuffer
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan int, 1)
		o := Options{N: 2, Sort: "samples", Interval: time.Second}
		go func() { done <- o.run(ctx, inst.fetch, "127.0.0.1:8127", strings.NewReader(""), &out, &errOut) }()
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		inst.set(func(f *fakeInstance) { f.err = errors.New("127.0.0.1:8127 unreachable: connection refused") })
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d", code)
		}
		stdout := out.String()
		snapshots := strings.SplitAfter(stdout, "\n\n"+"veneur-lite top ")
		if len(snapshots) != 2 || !strings.HasSuffix(stdout, "\n\n") || strings.Contains(stdout, "\x1b") {
			t.Fatalf("stdout, want 2 plain snapshots, a blank line after each:\n%s", stdout)
		}
		for _, s := range snapshots {
			lines := strings.Split(s, "\n")
			if !strings.Contains(s, "\ntop 2 of 3 names by samples (-n 2)\nNAME ") {
				t.Errorf("snapshot:\n%s", s)
			}
			if got := names(lines); !slices.Equal(got, []string{"top.one", "top.hundred"}) {
				t.Errorf("names %v", got)
			}
		}
		if want := "veneur-lite top: 127.0.0.1:8127 unreachable: connection refused (retrying every 1s)\n"; errOut.String() != want {
			t.Errorf("stderr %q, want %q", errOut.String(), want)
		}
	})
}
