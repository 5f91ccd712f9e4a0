package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
