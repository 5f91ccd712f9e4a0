// Package proc starts and measures the child processes the bench commands
// run: the receivers of bench/cmd/compare, the global instances of
// bench/cmd/importbench. It holds what those commands share: starting a
// child that cannot outlive its harness, stopping it, reading its CPU time
// from /proc while it runs, picking loopback ports, waiting for a built
// veneur-lite to be healthy, and re-executing the harness in a private
// network namespace.
package proc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Child is a process the harness started.
type Child struct {
	cmd     *exec.Cmd
	lines   chan string // stdout lines, closed at EOF
	stderr  *TailBuffer
	done    chan struct{}
	waitErr error
}

// Start starts path with args. Its stdout is read line by line (Lines),
// its stderr kept in a TailBuffer (Stderr).
func Start(path string, args ...string) (*Child, error) {
	cmd := exec.Command(path, args...)
	// A receiver left behind by a crashed harness would hold the port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &Child{cmd: cmd, lines: make(chan string, 16), stderr: NewTailBuffer(4 << 10), done: make(chan struct{})}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(path), err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(path), err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads this many lines: drop, keep draining
			}
		}
		// A line too long for the scanner ends the loop above; the rest
		// is still read, so that a child writing to stdout (veneur-lite's
		// console sink) never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
		close(c.lines)
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Lines delivers the child's stdout lines as long as someone reads them
// (lines nobody takes are dropped); it is closed at EOF.
func (c *Child) Lines() <-chan string { return c.lines }

// Stderr is the end of the child's stderr.
func (c *Child) Stderr() *TailBuffer { return c.stderr }

// Done is closed once the child has exited and been waited for.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the child exited; valid once Done is closed.
func (c *Child) Err() error { return c.waitErr }

// Stop sends SIGTERM and waits for the exit; a receiver that does not exit
// within timeout is killed and the run fails.
func (c *Child) Stop(timeout time.Duration) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM: %s", filepath.Base(c.cmd.Path), timeout, c.stderr.String())
	}
	if c.waitErr != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(c.cmd.Path), c.waitErr, c.stderr.String())
	}
	return nil
}

// Kill kills the child and waits for it.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// CPU is the exited process's user + system time.
func (c *Child) CPU() float64 {
	ps := c.cmd.ProcessState
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// WaitHealthy waits until the veneur-lite child c answers /healthcheck on
// httpAddr (its statsd sockets are bound before HTTP serves), and kills it
// when it does not within timeout or exits first.
func WaitHealthy(ctx context.Context, c *Child, httpAddr string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + httpAddr + "/healthcheck")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("veneur-lite exited at start (%w): %s", c.waitErr, c.stderr.String())
		case <-ctx.Done():
			c.Kill()
			return fmt.Errorf("wait for veneur-lite to be healthy: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling another process
		}
	}
	c.Kill()
	return fmt.Errorf("veneur-lite not healthy within %v: %s", timeout, c.stderr.String())
}

// FreePort returns a loopback port that was free a moment ago. In the
// private namespace nothing else can take it in between.
func FreePort(network string) (int, error) {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a udp port: %w", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a tcp port: %w", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
}
