package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Exit statuses for a command that did not run, as a POSIX shell reports
// them.
const (
	statusCannotExecute = 126
	statusNotFound      = 127
)

// runCommand runs argv with the standard input and both outputs passed
// through, and returns its exit status and how long it ran: the status it
// exited with, 128+N when signal N killed it, 126 or 127 when it could not
// start (not executable, not found), as a shell reports them.
//
// While it runs, SIGTERM and SIGHUP sent to veneur-emit are passed on, so
// that a supervisor stopping us stops the command and its duration is still
// reported. SIGINT and SIGQUIT are not: a terminal sends them to the whole
// process group, the command included, and veneur-emit waits for it.
func runCommand(argv []string, stdout, stderr io.Writer) (status int, elapsed time.Duration) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "veneur-emit: %v\n", err)
		if errors.Is(err, fs.ErrPermission) {
			return statusCannotExecute, time.Since(start)
		}
		return statusNotFound, time.Since(start)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGTERM || s == syscall.SIGHUP {
					_ = cmd.Process.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	elapsed = time.Since(start)
	close(done)

	ps := cmd.ProcessState
	if ps == nil {
		fmt.Fprintf(stderr, "veneur-emit: %v\n", err)
		return statusNotFound, elapsed
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), elapsed
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		// It ran and exited, but copying its output failed.
		fmt.Fprintf(stderr, "veneur-emit: %v\n", err)
	}
	return ps.ExitCode(), elapsed
}
