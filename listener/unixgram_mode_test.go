package listener

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The socket file gets Options.SocketMode, 0722 by default, whatever the
// umask; a mode with non-permission bits is refused.
func TestUnixgramSocketMode(t *testing.T) {
	for _, tc := range []struct {
		mode, want fs.FileMode
	}{
		{0, 0o722},
		{0o700, 0o700},
		{0o766, 0o766},
		{0o777, 0o777},
	} {
		path := filepath.Join(t.TempDir(), "dsd.sock")
		p := &countingPusher{sums: map[string]float64{}}
		_, cancel, done := startListener(t, "unixgram", path, Options{Pusher: p, SocketMode: tc.mode})
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("SocketMode %v: socket file mode %v, want %v", tc.mode, got, tc.want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	path := filepath.Join(t.TempDir(), "dsd.sock")
	_, err := New("unixgram", path, Options{Parser: NewParser(0, nil), SocketMode: fs.ModeSetuid | 0o700})
	if err == nil || !strings.Contains(err.Error(), "socket mode") {
		t.Errorf("SocketMode with setuid: %v, want an error about the socket mode", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused socket left a file: %v", err)
	}
}

// bind creates the socket file already restricted to the requested mode:
// there is no moment where it exists with more permissions, even with
// umask 0. (This test changes the process umask; nothing in this package
// runs in parallel with it.)
func TestUnixgramSocketNeverLooserThanMode(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, mode := range []fs.FileMode{0o700, 0o722, 0o600} {
		path := filepath.Join(dir, "s"+mode.String())
		conn, err := bindUnixgram(path, mode)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("under umask 0, bind created the socket file %v, want %v", got, mode)
		}
	}
}

// What the mode is for: a user other than the socket's owner can send to
// a 0722 socket, and gets EACCES from a 0755 one (the mode before). The
// sender runs on an OS thread whose filesystem uid and gid are nobody's,
// so the test needs root; that thread is discarded afterwards.
func TestUnixgramSocketOtherUserCanSend(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to send as another user")
	}
	dir := t.TempDir()
	// Other users must be able to reach the socket through its directories.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		mode    fs.FileMode
		wantErr error
	}{
		{0, nil},
		{0o755, unix.EACCES},
	} {
		path := filepath.Join(dir, "dsd"+tc.mode.String()+".sock")
		p := &countingPusher{sums: map[string]float64{}}
		_, cancel, done := startListener(t, "unixgram", path, Options{Pusher: p, SocketMode: tc.mode})
		err := sendAsNobody(t, path, []byte("other.user:1|c"))
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("SocketMode %v: send as nobody: %v, want %v", tc.mode, err, tc.wantErr)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if want := map[bool]float64{true: 1, false: 0}[tc.wantErr == nil]; p.sum("other.user") != want {
			t.Errorf("SocketMode %v: other.user = %v, want %v", tc.mode, p.sum("other.user"), want)
		}
	}
}

// sendAsNobody sends one datagram to the Unix socket at path with the
// filesystem credentials of nobody (65534), which is what the kernel checks
// against the socket file's mode. It changes only the credentials of a
// locked OS thread that the runtime then discards (the goroutine exits
// without unlocking it), so the rest of the process is untouched.
func sendAsNobody(t *testing.T, path string, payload []byte) error {
	t.Helper()
	type result struct {
		err  error
		skip string
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		const nobody = 65534
		// Raw syscalls act on this thread alone (unlike syscall.Setgroups).
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			ch <- result{skip: "setgroups: " + e.Error()}
			return
		}
		_, _ = unix.SetfsgidRetGid(nobody)
		_, _ = unix.SetfsuidRetUid(nobody)
		if uid, _ := unix.SetfsuidRetUid(nobody); uid != nobody {
			ch <- result{skip: "cannot take fsuid 65534 here"}
			return
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		ch <- result{err: unix.Sendto(fd, payload, 0, &unix.SockaddrUnix{Name: path})}
	}()
	r := <-ch
	if r.skip != "" {
		t.Skip(r.skip)
	}
	return r.err
}
