package main

import (
	"strings"
	"testing"
)

func TestParseUDPDrops(t *testing.T) {
	// Two SO_REUSEPORT sockets on port 8125 (0x1FBD), one on another port.
	const table = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1001 2 0000000000000000 17
  124: 0100007F:1FBD 00000000:0000 07 00000000:00003000 00:00000000 00000000     0        0 1002 2 0000000000000000 5
  125: 0100007F:1FBE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1003 2 0000000000000000 99
`
	drops, sockets, err := parseUDPDrops(strings.NewReader(table), 8125)
	if err != nil || drops != 22 || sockets != 2 {
		t.Errorf("drops %d on %d sockets (%v), want 22 on 2", drops, sockets, err)
	}
	if drops, sockets, _ := parseUDPDrops(strings.NewReader(table), 9); drops != 0 || sockets != 0 {
		t.Errorf("port 9: %d drops on %d sockets", drops, sockets)
	}
}

func TestParseSnmpField(t *testing.T) {
	const snmp = `Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 10 0 3 12 3 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 77 0 0 0 0
`
	if v, err := parseSnmpField([]byte(snmp), "Udp:", "RcvbufErrors"); err != nil || v != 3 {
		t.Errorf("RcvbufErrors = %d, %v; want 3", v, err)
	}
	if _, err := parseSnmpField([]byte(snmp), "Udp:", "Nope"); err == nil {
		t.Error("a missing field was found")
	}
}

// The live readers work on this machine: the kernel counters are there.
func TestProcReaders(t *testing.T) {
	if _, err := udpRcvbufErrors(); err != nil {
		t.Error(err)
	}
	if _, _, err := udpSocketDrops(1); err != nil {
		t.Error(err)
	}
}
