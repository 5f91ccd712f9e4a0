package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// CPUTimes is the machine-wide first line of /proc/stat, in seconds.
type CPUTimes struct {
	Busy, Steal, Total float64
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100

// ReadCPUTimes reads the machine's CPU times: /proc/stat is machine-wide
// even in a private network namespace, on purpose, as it shows what else
// was running.
func ReadCPUTimes() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseCPUTimes(b)
}

// parseCPUTimes reads "cpu user nice system idle iowait irq softirq steal
// guest guest_nice". Guest time is already inside user and nice.
func parseCPUTimes(b []byte) (CPUTimes, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return CPUTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]float64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		v[i] = float64(n) / clockTick
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	busy := user + nice + system + irq + softirq
	return CPUTimes{Busy: busy, Steal: steal, Total: busy + idle + iowait + steal}, nil
}

// TailBuffer keeps the last max bytes written to it and counts the lines
// that look like slog warnings or errors. It is an io.Writer for a child's
// stderr.
type TailBuffer struct {
	mu       sync.Mutex
	max      int
	buf      []byte
	partial  []byte // an unfinished line, for the level count
	warnings int
	errors   int
}

// NewTailBuffer returns a TailBuffer that keeps max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

func (t *TailBuffer) Write(p []byte) (int, error) {
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

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Counts is the lines logged at WARN and at ERROR so far.
func (t *TailBuffer) Counts() (warnings, errors int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.warnings, t.errors
}

// TaskCPU is the CPU time a running process has used so far: the sum over
// its threads of the first field of /proc/<pid>/task/<tid>/schedstat
// (nanoseconds on CPU). It is the same clock the kernel splits into utime
// and stime, at nanosecond rather than /proc/<pid>/stat's 10 ms
// resolution, so it can be subtracted from the rusage taken at exit.
func TaskCPU(pid int) (float64, error) {
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

// StatCPU is a process's user + system time so far from /proc/<pid>/stat
// (utime + stime), which, unlike TaskCPU, includes threads that have
// exited, at the kernel's 10 ms clock-tick resolution.
func StatCPU(pid int) (float64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of "pid (comm)
// state ppid …". comm may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/<pid>/stat: no command name in %q", b)
	}
	f := strings.Fields(string(b[i+1:])) // from field 3, state
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("/proc/<pid>/stat: %d fields after the command name, want more than %d", len(f), stime)
	}
	var ticks uint64
	for _, s := range f[utime : stime+1] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/<pid>/stat utime/stime %q: %w", s, err)
		}
		ticks += v
	}
	return float64(ticks) / clockTick, nil
}

// PeakRSS is a running process's peak resident set size in bytes, VmHWM
// of /proc/<pid>/status.
func PeakRSS(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return parsePeakRSS(b)
}

// parsePeakRSS finds "VmHWM:   1234 kB".
func parsePeakRSS(b []byte) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/<pid>/status: VmHWM %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/<pid>/status: VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/<pid>/status: no VmHWM")
}
