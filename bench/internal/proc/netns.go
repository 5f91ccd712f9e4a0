package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// A bench command runs in a network namespace of its own, so that its
// ports and the kernel's network counters (/proc/net/*) are the harness's
// alone, whatever else runs on the machine. The harness re-executes itself
// in a new namespace, which is what `unshare --net` does, and brings its
// loopback up, which is what `ip link set lo up` does, with the system
// calls themselves rather than the two tools. It needs CAP_SYS_ADMIN
// (root); without it the command runs in the current namespace, with a
// warning.

// netnsEnv marks the re-executed harness. It does not start with
// VENEUR_: the children inherit the environment, and veneur-lite warns
// about every VENEUR_ variable that is not one of its keys.
const netnsEnv = "BENCH_PRIVATE_NETNS"

// InPrivateNetns reports whether this process is the harness re-executed
// by ReexecInNetns.
func InPrivateNetns() bool { return os.Getenv(netnsEnv) == "1" }

// ReexecInNetns runs this executable with args in a new network namespace
// and returns its exit code. An error means it could not start there.
func ReexecInNetns(ctx context.Context, args []string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("re-exec in a network namespace: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start in a new network namespace (needs CAP_SYS_ADMIN): %w", err)
	}
	// An interrupt reaches the child from the terminal as well; a SIGTERM
	// sent to this process alone is passed on, so that the child still
	// writes what it measured.
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(syscall.SIGTERM) })
	defer stop()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("harness in the network namespace: %w", err)
	}
	return 0, nil
}

// BringLoopbackUp sets IFF_UP on lo: a new namespace's loopback is down.
func BringLoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: read flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: set flags: %w", err)
	}
	return nil
}

// NetnsID names the current network namespace, e.g. net:[4026532281].
func NetnsID() string {
	id, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ""
	}
	return id
}

// CanUnshareNet starts true(1) in a new network namespace, as
// ReexecInNetns starts the harness: tests that need a private namespace
// skip when it fails.
func CanUnshareNet() error {
	path, err := exec.LookPath("true")
	if err != nil {
		return err
	}
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	return cmd.Run()
}
