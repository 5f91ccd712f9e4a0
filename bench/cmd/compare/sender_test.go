package main

import (
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"
)

// The sender child builds the load once and sends it on request; what it
// reports sending is what a socket receives.
func TestSenderChild(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.(*net.UDPConn).SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	received := make(chan int64)
	go func() {
		var lines int64
		buf := make([]byte, 65536)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				received <- lines
				return
			}
			lines += int64(countNewlines(buf[:n]))
		}
	}()

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runSenderChild(inR, outW); outW.Close() }()
	enc, dec := json.NewEncoder(inW), json.NewDecoder(outR)

	l := defaultLoads(true)[2] // one metric per datagram
	if err := enc.Encode(senderSetup{Gen: l.Gen, Packets: 256}); err != nil {
		t.Fatal(err)
	}
	var info poolInfo
	if err := dec.Decode(&info); err != nil || info.Error != "" {
		t.Fatalf("pool info %+v, %v", info, err)
	}
	if info.Packets != 256 || info.MinLines != 1 || info.MaxLines != 1 || info.Lines != 256 || info.CountableShare != 1 || info.Series < 100 {
		t.Errorf("pool %+v: want 256 one-line datagrams of counters", info)
	}
	if err := enc.Encode(sendRequest{Addr: pc.LocalAddr().String(), Rate: 5000, Duration: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var rep sendReply
	if err := dec.Decode(&rep); err != nil || rep.Error != "" {
		t.Fatalf("reply %+v, %v", rep, err)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := <-received; rep.Result.Metrics < 500 || got != rep.Result.Metrics || rep.Result.Countable() != got {
		t.Errorf("sender reports %d metrics (%d countable), socket got %d", rep.Result.Metrics, rep.Result.Countable(), got)
	}
}

// Every default load is one the generator accepts, and the declared series
// counts hold: names × tag values ^ tags.
func TestDefaultLoadsAreValid(t *testing.T) {
	for _, l := range defaultLoads(false) {
		cfg := l.Gen
		cfg.Addr, cfg.Rate = "127.0.0.1:8125", l.Rates[0]
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", l.Name, err)
		}
		series := cfg.Names
		for range cfg.TagsPerMetric {
			series *= cfg.TagValues
		}
		if want := map[string]int{"100k-series": 100_000}[l.Name]; want != 0 && series != want {
			t.Errorf("%s: %d series, want %d", l.Name, series, want)
		} else if want == 0 && series != 1000 {
			t.Errorf("%s: %d series, want 1,000", l.Name, series)
		}
		if l.Packets < 1 || l.Packets > 1<<16 {
			t.Errorf("%s: %d packets", l.Name, l.Packets)
		}
	}
}

func countNewlines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
