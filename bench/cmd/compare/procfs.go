package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Kernel counters the harness reads around each run. In the private
// network namespace /proc/net/* shows the harness's sockets only; /proc/stat
// is machine-wide on purpose: it shows what else was running.

// udpSocketDrops sums the drops column of /proc/net/udp over the sockets
// bound to port: datagrams the kernel dropped because a socket's receive
// buffer was full. Read after the sender has finished and before the
// receiver exits (its sockets vanish with it).
func udpSocketDrops(port int) (drops uint64, sockets int, err error) {
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/net/udp: %w", err)
	}
	defer f.Close()
	return parseUDPDrops(f, port)
}

// parseUDPDrops reads /proc/net/udp's table: "sl local_address rem_address
// st tx_queue:rx_queue tr tm->when retrnsmt uid timeout inode ref pointer
// drops", with addresses as hex IP:port.
func parseUDPDrops(r io.Reader, port int) (drops uint64, sockets int, err error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 13 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		d, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/net/udp drops %q: %w", f[len(f)-1], err)
		}
		drops += d
		sockets++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read /proc/net/udp: %w", err)
	}
	return drops, sockets, nil
}

// udpRcvbufErrors is /proc/net/snmp's Udp RcvbufErrors: every datagram the
// namespace dropped for want of receive buffer, whatever the socket.
func udpRcvbufErrors() (uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, fmt.Errorf("read /proc/net/snmp: %w", err)
	}
	return parseSnmpField(b, "Udp:", "RcvbufErrors")
}

// parseSnmpField finds field in /proc/net/snmp's pair of lines for proto:
// a header line of names, then a line of values.
func parseSnmpField(b []byte, proto, field string) (uint64, error) {
	var names []string
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := strings.Fields(string(line))
		if len(f) == 0 || f[0] != proto {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == field && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("/proc/net/snmp %s %s: %w", proto, field, err)
				}
				return v, nil
			}
		}
		break
	}
	return 0, fmt.Errorf("/proc/net/snmp: no %s %s", proto, field)
}

// cpuTimes is the machine-wide first line of /proc/stat, in seconds.
type cpuTimes struct {
	Busy, Steal, Total float64
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseCPUTimes(b)
}

// parseCPUTimes reads "cpu user nice system idle iowait irq softirq steal
// guest guest_nice". Guest time is already inside user and nice.
func parseCPUTimes(b []byte) (cpuTimes, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]float64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		v[i] = float64(n) / clockTick
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	busy := user + nice + system + irq + softirq
	return cpuTimes{Busy: busy, Steal: steal, Total: busy + idle + iowait + steal}, nil
}

// tailBuffer keeps the last max bytes written to it and counts the lines
// that look like slog warnings or errors. It is an io.Writer for a child's
// stderr.
type tailBuffer struct {
	mu       sync.Mutex
	max      int
	buf      []byte
	partial  []byte // an unfinished line, for the level count
	warnings int
	errors   int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	rest := append(t.partial, p...)
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		switch {
		case bytes.Contains(line, []byte("level=WARN")):
			t.warnings++
		case bytes.Contains(line, []byte("level=ERROR")):
			t.errors++
		}
		rest = rest[i+1:]
	}
	t.partial = append(t.partial[:0], rest[:min(len(rest), 4096)]...)
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

func (t *tailBuffer) counts() (warnings, errors int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.warnings, t.errors
}

// taskCPU is the CPU time a running process has used so far: the sum over
// its threads of the first field of /proc/<pid>/task/<tid>/schedstat
// (nanoseconds on CPU). It is the same clock the kernel splits into utime
// and stime, at nanosecond rather than /proc/<pid>/stat's 10 ms
// resolution, so it can be subtracted from the rusage taken at exit.
func taskCPU(pid int) (float64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dir, err)
	}
	var ns uint64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		ns += v
	}
	return float64(ns) / 1e9, nil
}
