package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgryski/go-rendezvous"

	"github.com/veneur-lite/veneur-lite/internal/address"
)

// Resolver looks up the global instances behind a forward address.
// *net.Resolver implements it; tests pass a fake.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// lookupTimeout bounds one DNS lookup. A resolver that hangs must not hold
// New (startup) or a re-resolution round for long; the previous members
// stay in use meanwhile.
const lookupTimeout = 5 * time.Second

type entryKind uint8

const (
	// entryStatic is one member as written: an IP literal, or an https
	// URL, which keeps its name because TLS verifies the certificate
	// against it (SNI) and an IP would not match.
	entryStatic entryKind = iota
	// entryHost is an http URL with a DNS name: one member per address,
	// the way a Kubernetes headless service or Consul DNS lists instances.
	entryHost
	// entrySRV is srv://name: one member per SRV record, port included.
	entrySRV
)

// entry is one forward_address and the members it last resolved to.
type entry struct {
	addr   string // as configured, for logs
	kind   entryKind
	scheme string
	host   string // host name or IP literal; the SRV name for entrySRV
	port   string // may be empty: the scheme's default port
	path   string // base path without a trailing slash
	// members is the last successful resolution, kept when a later one
	// fails: a DNS outage must not empty the tier.
	members []string
}

// Address is one forward_address entry, parsed.
type Address struct {
	Scheme string // "http", "https" or "srv"
	Host   string // host name or IP literal; the DNS name for srv
	Port   string // may be empty: the scheme's default port; always empty for srv
	Path   string // base path without a trailing slash; always empty for srv
}

// ParseAddress parses one forward_address entry: an http(s)://host[:port][/path]
// base URL, or srv://name for DNS SRV records. It is the one parser of
// forward addresses: the config package validates forward_address with it,
// and New parses with it, so an address the config accepts is one New takes.
func ParseAddress(s string) (Address, error) {
	u, err := address.ParseURL(strings.TrimSpace(s), "http")
	if err != nil {
		return Address{}, fmt.Errorf("forward address %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("forward address %s: %s (want http(s)://host:port or srv://name)", address.Quote(s), why)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Address{}, bad("unexpected credentials, query, fragment or opaque part")
	}
	switch u.Scheme {
	case "srv":
		if u.Host == "" || u.Port() != "" || strings.Trim(u.Path, "/") != "" {
			return Address{}, bad("srv:// takes a bare DNS name")
		}
		return Address{Scheme: u.Scheme, Host: u.Host}, nil
	case "http", "https":
		a := Address{Scheme: u.Scheme, Host: u.Hostname(), Port: u.Port(), Path: strings.TrimRight(u.Path, "/")}
		if a.Host == "" {
			return Address{}, bad("no host")
		}
		return a, nil
	default:
		return Address{}, bad(fmt.Sprintf("unsupported scheme %q", u.Scheme))
	}
}

// parseAddress parses one forward_address into an entry to resolve.
func parseAddress(s string) (*entry, error) {
	a, err := ParseAddress(s)
	if err != nil {
		return nil, err
	}
	e := &entry{addr: s, scheme: a.Scheme, host: a.Host, port: a.Port, path: a.Path}
	switch a.Scheme {
	case "srv":
		e.kind = entrySRV
	case "https":
		e.kind = entryStatic
	default:
		if _, err := netip.ParseAddr(a.Host); err == nil {
			e.kind = entryStatic
		} else {
			e.kind = entryHost
		}
	}
	if e.kind == entryStatic {
		e.members = []string{e.member(e.host)}
	}
	return e, nil
}

// member is the base URL of the instance at host (a name or an IP) under
// this entry's scheme, port and path.
func (e *entry) member(host string) string {
	hostport := host
	if e.port != "" {
		hostport = net.JoinHostPort(host, e.port)
	} else if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	return e.scheme + "://" + hostport + e.path
}

// lookup resolves a DNS entry into its members, sorted and deduplicated.
func (e *entry) lookup(ctx context.Context, r Resolver) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var members []string
	switch e.kind {
	case entryHost:
		addrs, err := r.LookupHost(ctx, e.host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", e.host, err)
		}
		for _, ip := range oneFamily(addrs) {
			members = append(members, e.member(ip))
		}
	case entrySRV:
		_, records, err := r.LookupSRV(ctx, "", "", e.host)
		if err != nil {
			return nil, fmt.Errorf("resolve srv %s: %w", e.host, err)
		}
		for _, rec := range records {
			if target := strings.TrimSuffix(rec.Target, "."); target != "" && target != "." {
				members = append(members, "http://"+net.JoinHostPort(target, strconv.Itoa(int(rec.Port))))
			}
		}
	default:
		return e.members, nil
	}
	if len(members) == 0 {
		// Taken as a failure, not as "no globals": keeping the previous
		// members holds nothing back that an empty tier would deliver.
		return nil, fmt.Errorf("resolve %s: no addresses", e.host)
	}
	slices.Sort(members)
	return slices.Compact(members), nil
}

// oneFamily returns the IPv4 addresses among addrs, or all of them when
// there are none. A dual-stack name lists each host once per family;
// counting both would make one instance two members, and send half its
// series to an address it may not even listen on (localhost → 127.0.0.1
// and ::1, for one).
func oneFamily(addrs []string) []string {
	var v4 []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Unmap().Is4() {
			v4 = append(v4, ip.Unmap().String())
		}
	}
	if len(v4) > 0 {
		return v4
	}
	return addrs
}

// view is one membership snapshot with its routing table. It is never
// modified: a change installs a new view, so Forward routes a whole
// interval with one consistent membership.
type view struct {
	members []string // sorted
	index   map[string]int
	rdv     *rendezvous.Rendezvous
}

func newView(members []string) *view {
	v := &view{members: members, index: make(map[string]int, len(members))}
	for i, m := range members {
		v.index[m] = i
	}
	// Rendezvous (highest random weight) hashing: each key goes to the
	// member with the highest hash(key, member). Removing a member moves
	// only its keys; adding one takes about 1/N of the keys from each.
	v.rdv = rendezvous.New(members, xxhash.Sum64String)
	return v
}

// route returns the index of the member key goes to, or -1 when there are
// no members.
func (v *view) route(key string) int {
	switch len(v.members) {
	case 0:
		return -1
	case 1:
		return 0
	}
	return v.index[v.rdv.Lookup(key)]
}

// resolve re-resolves every DNS entry and installs the resulting members.
// An entry whose lookup fails keeps its previous members.
func (f *Forwarder) resolve(ctx context.Context) {
	f.resolveMu.Lock()
	defer f.resolveMu.Unlock()
	var all []string
	for _, e := range f.entries {
		if e.kind != entryStatic {
			members, err := e.lookup(ctx, f.resolver)
			if err != nil {
				f.m.resolveErrors.Inc()
				if ctx.Err() == nil {
					f.log.Warn("forward address did not resolve; keeping its previous members",
						"address", e.addr, "previous", len(e.members), "error", err)
				}
			} else {
				e.members = members
			}
		}
		all = append(all, e.members...)
	}
	slices.Sort(all)
	f.setMembers(slices.Compact(all))
}

// setMembers installs members if they changed, and logs the change.
func (f *Forwarder) setMembers(members []string) {
	f.m.members.Set(float64(len(members)))
	old := f.view.Load()
	if old != nil && slices.Equal(old.members, members) {
		return
	}
	f.view.Store(newView(members))
	var before []string
	if old != nil {
		before = old.members
	}
	var added, removed []string
	for _, m := range members {
		if _, ok := slices.BinarySearch(before, m); !ok {
			added = append(added, m)
		}
	}
	for _, m := range before {
		if _, ok := slices.BinarySearch(members, m); !ok {
			removed = append(removed, m)
		}
	}
	f.log.Info("forward members changed", "members", len(members), "added", added, "removed", removed)
}

// members returns the current members' base URLs, sorted.
func (f *Forwarder) members() []string {
	return slices.Clone(f.view.Load().members)
}

// Run re-resolves the DNS entries of Config.Addresses every ResolveEvery
// until ctx ends. Forward does not depend on it: without Run the members
// resolved by New stay in use.
func (f *Forwarder) Run(ctx context.Context) error {
	if !slices.ContainsFunc(f.entries, func(e *entry) bool { return e.kind != entryStatic }) {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(f.cfg.ResolveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.resolve(ctx)
		}
	}
}

// errNoMembers stands for "no global instance is known" in summaries.
var errNoMembers = errors.New("no global instances known")
