package listener

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Why a UDP listener checks who else holds its port.
//
// num_readers sockets share the port through SO_REUSEPORT, but the kernel
// lets any socket of the same user with SO_REUSEPORT join them: a second
// veneur-lite started on the same port would bind without error and take
// its share of every client's datagrams, silently splitting each series
// across two aggregators. So after binding, the listener lists every
// socket on its port (/proc/net/udp and udp6) and refuses to start if one
// whose address overlaps its own is not one of its own sockets.
//
// Checking after binding rather than probing before leaves no window
// between two instances: each binds first and checks second, so whichever
// checks last sees the other's sockets and refuses (if both check at once,
// both may refuse; neither runs with half the traffic). What it cannot
// catch is a different program, one that does not check, joining the port
// later; only the newcomer can see that.

// errPortShared is wrapped by the error for a port already served by
// another process; it matches unix.EADDRINUSE too.
var errPortShared = fmt.Errorf("refusing to share it, as SO_REUSEPORT would give each process part of the traffic: %w", unix.EADDRINUSE)

// checkPortNotShared returns an error wrapping errPortShared, naming the
// port and, when it can be found, the process holding it, if a socket
// other than conns is bound to an address that overlaps theirs. It returns
// a different error when the sockets cannot be listed (no /proc): the
// caller then proceeds, as the check is a safeguard, not a requirement.
func checkPortNotShared(conns []net.PacketConn) error {
	la, ok := conns[0].LocalAddr().(*net.UDPAddr)
	if !ok {
		return fmt.Errorf("local address %v is not UDP", conns[0].LocalAddr())
	}
	ours := make(map[uint64]bool, len(conns))
	for _, c := range conns {
		ino, err := socketInode(c)
		if err != nil {
			return err
		}
		ours[ino] = true
	}
	addr := la.AddrPort().Addr()
	port := uint16(la.Port)
	socks, err := readUDPTables()
	if err != nil {
		return err
	}
	for _, s := range socks {
		if s.port != port || s.inode == 0 || ours[s.inode] || !addrsOverlap(addr, s.addr) {
			continue
		}
		holder := "another process"
		if pid, cmd, ok := socketHolder(s.inode); ok {
			holder = fmt.Sprintf("pid %d (%s)", pid, cmd)
		}
		return fmt.Errorf("port %d is already served by %s on %s: %w", port, holder, netip.AddrPortFrom(s.addr, port), errPortShared)
	}
	return nil
}

// socketInode returns the inode number of c's socket, the number that
// /proc/net/udp and the /proc/<pid>/fd links show.
func socketInode(c net.PacketConn) (uint64, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("socket has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("socket inode: %w", err)
	}
	var st unix.Stat_t
	var statErr error
	if err := rc.Control(func(fd uintptr) { statErr = unix.Fstat(int(fd), &st) }); err != nil {
		return 0, fmt.Errorf("socket inode: %w", err)
	}
	if statErr != nil {
		return 0, fmt.Errorf("socket inode: fstat: %w", statErr)
	}
	return st.Ino, nil
}

// udpSocket is one row of /proc/net/udp or udp6.
type udpSocket struct {
	addr    netip.Addr // v4-mapped IPv6 addresses unmapped
	port    uint16
	inode   uint64
	rxQueue int64 // bytes waiting to be read
}

// Backlog returns the bytes waiting in the receive queues of the UDP
// sockets bound to port, as /proc/net/udp and udp6 show them: what the
// readers have yet to take. A test awaits zero before it stops a listener,
// so that what the kernel queued is counted rather than lost.
func Backlog(port int) (int64, error) {
	socks, err := readUDPTables()
	if err != nil {
		return 0, err
	}
	var queued int64
	for _, s := range socks {
		if int(s.port) == port {
			queued += s.rxQueue
		}
	}
	return queued, nil
}

// readUDPTables reads the IPv4 and IPv6 socket tables; a missing udp6 is
// a host without IPv6, but neither table is no /proc to read.
func readUDPTables() ([]udpSocket, error) {
	var all []udpSocket
	read := 0
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		socks, err := readUDPTable(table)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		read++
		all = append(all, socks...)
	}
	if read == 0 {
		return nil, errors.New("no /proc/net/udp to list the UDP sockets")
	}
	return all, nil
}

// readUDPTable parses /proc/net/udp or /proc/net/udp6: after a header
// line, one socket per line, whose second field is the local address as
// HEX:PORT, fifth the queues as TX:RX in hex, and tenth the inode.
func readUDPTable(path string) ([]udpSocket, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("list udp sockets: %w", err)
	}
	var socks []udpSocket
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		addr, ok := parseProcAddr(hexAddr)
		port, err1 := strconv.ParseUint(hexPort, 16, 16)
		inode, err2 := strconv.ParseUint(f[9], 10, 64)
		_, hexRx, _ := strings.Cut(f[4], ":")
		rx, err3 := strconv.ParseInt(hexRx, 16, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		socks = append(socks, udpSocket{addr: addr.Unmap(), port: uint16(port), inode: inode, rxQueue: rx})
	}
	return socks, nil
}

// parseProcAddr decodes an address as /proc/net/udp{,6} prints it: the
// network-order bytes read as 32-bit words in the host's byte order and
// printed word by word as %08X.
func parseProcAddr(h string) (netip.Addr, bool) {
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr, true
}

// addrsOverlap reports whether sockets bound to a and b on one port could
// both receive a datagram sent to that port: the same address, or a
// wildcard that covers the other. [::] counts as covering IPv4 too, since
// /proc does not show IPV6_V6ONLY; at worst that refuses to share a port
// with a v6-only socket, which an operator can fix by choosing addresses.
func addrsOverlap(a, b netip.Addr) bool {
	a, b = a.Unmap(), b.Unmap()
	covers := func(w, x netip.Addr) bool { return w.IsUnspecified() && (w.Is6() || x.Is4()) }
	return a == b || covers(a, b) || covers(b, a)
}

// socketHolder finds a process holding the socket with this inode, by the
// links in /proc/<pid>/fd, and returns its pid and command line. Best
// effort: processes it may not inspect are skipped.
func socketHolder(inode uint64) (pid int, cmd string, ok bool) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, "", false
	}
	target := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(dir + fd.Name()); err == nil && link == target {
				return pid, processCommand(p.Name()), true
			}
		}
	}
	return 0, "", false
}

// processCommand returns the command line of a process, cut to a length
// fit for an error message, or its name if the command line is hidden.
func processCommand(pid string) string {
	const maxLen = 200
	b, err := os.ReadFile("/proc/" + pid + "/cmdline")
	cmd := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	if err != nil || cmd == "" {
		b, _ = os.ReadFile("/proc/" + pid + "/comm")
		cmd = strings.TrimSpace(string(b))
	}
	if len(cmd) > maxLen {
		cmd = cmd[:maxLen] + "..."
	}
	if cmd == "" {
		cmd = "unknown command"
	}
	return cmd
}
