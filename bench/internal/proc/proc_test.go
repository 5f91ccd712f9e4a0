package proc

import (
	"os"
	"strings"
	"testing"
)

func TestParseCPUTimes(t *testing.T) {
	c, err := parseCPUTimes([]byte("cpu  100 0 50 800 10 0 40 200 0 0\ncpu0 1 2 3\n"))
	if err != nil || c.Busy != 1.9 || c.Steal != 2 || c.Total != 12 {
		t.Errorf("cpu times %+v, %v", c, err)
	}
	if _, err := parseCPUTimes([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a bad first line was accepted")
	}
}

// The live readers work on this machine: the test process's own CPU time
// is positive and the machine's counters are there.
func TestProcReaders(t *testing.T) {
	if cpu, err := TaskCPU(os.Getpid()); err != nil || cpu <= 0 {
		t.Errorf("TaskCPU = %v, %v", cpu, err)
	}
	if _, err := ReadCPUTimes(); err != nil {
		t.Error(err)
	}
	if _, err := StatCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if rss, err := PeakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}
}

func TestParsePeakRSS(t *testing.T) {
	const status = "Name:\tveneur-lite\nVmPeak:\t 1300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
	if rss, err := parsePeakRSS([]byte(status)); err != nil || rss != 50<<20 {
		t.Errorf("parsePeakRSS = %d, %v; want %d", rss, err, 50<<20)
	}
	if _, err := parsePeakRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("a status without VmHWM was accepted")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis; utime 250, stime 130.
	const stat = "4242 (veneur (lite) x) S 1 4242 4242 0 -1 4194560 2191 0 0 0 250 130 0 0 20 0 9 0 12345 1407840256 5171 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	if cpu, err := parseStatCPU([]byte(stat)); err != nil || cpu != 3.8 {
		t.Errorf("parseStatCPU = %v, %v; want 3.8", cpu, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2\n")); err == nil {
		t.Error("a short line was accepted")
	}
}

func TestTailBuffer(t *testing.T) {
	b := NewTailBuffer(32)
	for _, s := range []string{"time=1 level=INFO msg=a\n", "time=2 level=WA", "RN msg=b\ntime=3 level=ERROR msg=c\n"} {
		_, _ = b.Write([]byte(s))
	}
	w, e := b.Counts()
	if w != 1 || e != 1 {
		t.Errorf("warnings %d errors %d, want 1 and 1", w, e)
	}
	if got := b.String(); len(got) > 32 || !strings.HasSuffix(got, "level=ERROR msg=c") {
		t.Errorf("tail %q", got)
	}
}
