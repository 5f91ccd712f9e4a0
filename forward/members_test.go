package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in      string
		kind    entryKind
		members []string // for static entries
	}{
		{"http://10.0.0.1:8127", entryStatic, []string{"http://10.0.0.1:8127"}},
		{"http://10.0.0.1:8127/", entryStatic, []string{"http://10.0.0.1:8127"}},
		{"http://[::1]:8127/veneur/", entryStatic, []string{"http://[::1]:8127/veneur"}},
		{"https://global.example.com:8127", entryStatic, []string{"https://global.example.com:8127"}},
		{"https://global.example.com", entryStatic, []string{"https://global.example.com"}},
		{"http://globals.internal:8127", entryHost, nil},
		{" srv://_veneur._tcp.globals.service.consul ", entrySRV, nil},
	} {
		e, err := parseAddress(tc.in)
		if err != nil {
			t.Errorf("parseAddress(%q): %v", tc.in, err)
			continue
		}
		if e.kind != tc.kind || !slices.Equal(e.members, tc.members) {
			t.Errorf("parseAddress(%q) = kind %d members %v, want kind %d members %v", tc.in, e.kind, e.members, tc.kind, tc.members)
		}
	}
	for _, bad := range []string{
		"", "10.0.0.1:8127", "udp://10.0.0.1:8127", "http://", "http://user:pw@10.0.0.1:8127",
		"http://10.0.0.1:8127/?x=1", "srv://name:53", "srv://", "srv:name", "://x",
	} {
		if _, err := parseAddress(bad); err == nil {
			t.Errorf("parseAddress(%q) accepted it", bad)
		}
	}
}

// ParseAddress is what config validates forward_address with: it returns
// the parts New resolves, and rejects exactly what parseAddress rejects.
func TestParseAddressExported(t *testing.T) {
	for in, want := range map[string]Address{
		"http://10.0.0.1:8127/":              {Scheme: "http", Host: "10.0.0.1", Port: "8127"},
		"https://g.example.com/veneur/":      {Scheme: "https", Host: "g.example.com", Path: "/veneur"},
		"http://[::1]:8127":                  {Scheme: "http", Host: "::1", Port: "8127"},
		" srv://_veneur._tcp.globals.consul": {Scheme: "srv", Host: "_veneur._tcp.globals.consul"},
	} {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://g:8127/?x=1", "srv://name:53", "veneur-global:8127"} {
		if _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted it", bad)
		}
	}
}

// fakeResolver serves changeable DNS answers. Once served is set, every
// lookup reports on it which version of the answers it read, and waits
// until the test has taken the report: Run advances in lockstep with the
// test, so nothing needs to sleep.
type fakeResolver struct {
	mu      sync.Mutex
	version int
	hosts   map[string][]string
	srv     map[string][]*net.SRV
	failing map[string]bool
	served  chan lookup
}

type lookup struct {
	name    string
	version int
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{hosts: map[string][]string{}, srv: map[string][]*net.SRV{}, failing: map[string]bool{}}
}

// update changes the answers and returns their new version.
func (r *fakeResolver) update(change func(r *fakeResolver)) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(r)
	r.version++
	return r.version
}

func (r *fakeResolver) answer(ctx context.Context, name string, read func()) error {
	r.mu.Lock()
	read()
	failing, v, served := r.failing[name], r.version, r.served
	r.mu.Unlock()
	if served != nil {
		select {
		case served <- lookup{name, v}:
		case <-ctx.Done():
		}
	}
	if failing {
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return nil
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	var addrs []string
	err := r.answer(ctx, host, func() { addrs = slices.Clone(r.hosts[host]) })
	if err == nil && addrs == nil {
		err = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, err
}

func (r *fakeResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if service != "" || proto != "" {
		return "", nil, errors.New("fake resolver: want the name as is")
	}
	var recs []*net.SRV
	err := r.answer(ctx, name, func() { recs = slices.Clone(r.srv[name]) })
	return name, recs, err
}

// awaitRound returns once a resolution round that read answers of at least
// version v has completed. first is the name looked up first in a round:
// seeing it again means the previous round, swap included, is over.
func (r *fakeResolver) awaitRound(t *testing.T, first string, v int) {
	t.Helper()
	timeout := time.After(10 * time.Second) // a guard against a hang, not a synchronization
	sawNew := false
	for {
		select {
		case l := <-r.served:
			if l.name != first {
				continue
			}
			if sawNew {
				return
			}
			sawNew = l.version >= v
		case <-timeout:
			t.Fatalf("no resolution round read version %d", v)
		}
	}
}

func TestMembersFollowDNS(t *testing.T) {
	const aName, srvName = "globals.internal", "_veneur._tcp.globals.service.consul"
	r := newFakeResolver()
	r.update(func(r *fakeResolver) {
		// Dual stack: the IPv6 addresses name the same hosts and are not
		// members of their own.
		r.hosts[aName] = []string{"10.0.0.2", "10.0.0.1", "fd00::1"}
		r.srv[srvName] = []*net.SRV{{Target: "g1.node.consul.", Port: 9000}}
	})
	f, err := New(Config{
		Addresses:    []string{"http://" + aName + ":8127", "srv://" + srvName, "https://tls.example.com:443", "http://[fd00::9]:8127"},
		Interval:     10 * time.Second,
		ResolveEvery: time.Millisecond,
		Resolver:     r,
		Log:          testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := f.members(); !slices.Equal(got, want) {
			t.Fatalf("Members() = %v, want %v", got, want)
		}
	}
	static := []string{"https://tls.example.com:443", "http://[fd00::9]:8127"}
	check(append([]string{"http://10.0.0.1:8127", "http://10.0.0.2:8127", "http://g1.node.consul:9000"}, static...)...)

	r.served = make(chan lookup)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	v := r.update(func(r *fakeResolver) {
		r.hosts[aName] = []string{"10.0.0.2", "10.0.0.3"}
		r.srv[srvName] = []*net.SRV{{Target: "g1.node.consul.", Port: 9000}, {Target: "g2.node.consul.", Port: 9001}}
	})
	r.awaitRound(t, aName, v)
	check(append([]string{"http://10.0.0.2:8127", "http://10.0.0.3:8127", "http://g1.node.consul:9000", "http://g2.node.consul:9001"}, static...)...)

	// A failing lookup keeps that entry's members; the other entry moves on.
	v = r.update(func(r *fakeResolver) {
		r.failing[aName] = true
		r.srv[srvName] = []*net.SRV{{Target: "g2.node.consul.", Port: 9001}}
	})
	r.awaitRound(t, aName, v)
	check(append([]string{"http://10.0.0.2:8127", "http://10.0.0.3:8127", "http://g2.node.consul:9001"}, static...)...)

	// IPv6-only names are members, bracketed.
	v = r.update(func(r *fakeResolver) {
		r.failing[aName] = false
		r.hosts[aName] = []string{"fd00::1", "fd00::2"}
	})
	r.awaitRound(t, aName, v)
	check(append([]string{"http://[fd00::1]:8127", "http://[fd00::2]:8127", "http://g2.node.consul:9001"}, static...)...)

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestResolutionFailureAtStartIsNotFatal(t *testing.T) {
	r := newFakeResolver()
	r.update(func(r *fakeResolver) { r.failing["globals.internal"] = true })
	f, err := New(Config{Addresses: []string{"http://globals.internal:8127"}, Interval: time.Second, Resolver: r, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if m := f.members(); len(m) != 0 {
		t.Fatalf("Members() = %v, want none", m)
	}
	r.update(func(r *fakeResolver) {
		r.failing["globals.internal"] = false
		r.hosts["globals.internal"] = []string{"10.1.1.1"}
	})
	f.resolve(t.Context())
	if m := f.members(); !slices.Equal(m, []string{"http://10.1.1.1:8127"}) {
		t.Fatalf("Members() = %v after the name resolved", m)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{Interval: time.Second},
		{Addresses: []string{"http://10.0.0.1:8127"}},
		{Addresses: []string{"http://10.0.0.1:8127"}, Interval: time.Second, MaxInFlight: -1},
		{Addresses: []string{"ftp://10.0.0.1"}, Interval: time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
}
