package hostnet

import (
	"errors"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// masqNet is a router namespace between a local pod (198.19.1.2, in the
// router's own subnet S = 198.19.1.0/24), a pod of another node
// (198.19.2.2, in N = 198.19.0.0/16 but not S) and a world host on the
// underlay (198.18.0.9), each behind a veth; the same in IPv6 (S =
// 2001:2:0:1001::/64, N = 2001:2:0:1000::/52, world 2001:2::9). Every host
// routes everything through the router, and the world host routes the pod
// networks back to it, so unmasqueraded traffic would work too.
type masqNet struct {
	pod, remote, world, router *nettest.NS
}

var (
	masqN4 = netip.MustParsePrefix("198.19.0.0/16")
	masqS4 = netip.MustParsePrefix("198.19.1.0/24")
	masqN6 = netip.MustParsePrefix("2001:2:0:1000::/52")
	masqS6 = netip.MustParsePrefix("2001:2:0:1001::/64")
)

func newMasqNet(t *testing.T) *masqNet {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "nft")
	m := &masqNet{pod: nettest.NewNS(t, "mp"), remote: nettest.NewNS(t, "mq"), world: nettest.NewNS(t, "mw"), router: nettest.NewNS(t, "mr")}
	for _, ns := range []*nettest.NS{m.pod, m.remote, m.world, m.router} {
		ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	for _, l := range []struct {
		ns                 *nettest.NS
		gw4, gw6           string
		addr4, addr6, rdev string
		raddr4, raddr6     string
	}{
		{m.pod, "198.19.1.1", "2001:2:0:1001::1", "198.19.1.2/24", "2001:2:0:1001::2/64", "p0", "198.19.1.1/24", "2001:2:0:1001::1/64"},
		{m.remote, "198.19.2.1", "2001:2:0:1002::1", "198.19.2.2/24", "2001:2:0:1002::2/64", "q0", "198.19.2.1/24", "2001:2:0:1002::1/64"},
		{m.world, "", "", "198.18.0.9/24", "2001:2::9/64", "w0", "198.18.0.1/24", "2001:2::1/64"},
	} {
		nettest.Veth(t, l.ns, "eth0", l.addr4, m.router, l.rdev, l.raddr4)
		l.ns.Run("ip", "-6", "addr", "add", l.addr6, "dev", "eth0")
		m.router.Run("ip", "-6", "addr", "add", l.raddr6, "dev", l.rdev)
		if l.gw4 != "" {
			l.ns.Run("ip", "route", "add", "default", "via", l.gw4)
			l.ns.Run("ip", "-6", "route", "add", "default", "via", l.gw6)
		}
	}
	m.world.Run("ip", "route", "add", "198.19.0.0/16", "via", "198.18.0.1")
	m.world.Run("ip", "-6", "route", "add", "2001:2:0:1000::/52", "via", "2001:2::1")
	m.router.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return m
}

// seenFrom opens a TCP connection from src (invalid: any) in from to dst
// in to and returns the source address the server accepted it from.
func seenFrom(t *testing.T, from, to *nettest.NS, src, dst netip.Addr) (netip.Addr, error) {
	t.Helper()
	remote := make(chan netip.Addr, 1)
	p, err := nettest.DialPair(from, to, src, dst, 0, func(c net.Conn) error {
		remote <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		return nil
	})
	if err != nil {
		return netip.Addr{}, err
	}
	defer p.Close()
	select {
	case a := <-remote:
		return a, nil
	case <-time.After(5 * time.Second):
		return netip.Addr{}, errors.New("no connection accepted within 5 s")
	}
}

func TestSetMasquerade(t *testing.T) {
	m := newMasqNet(t)
	a := netip.MustParseAddr
	type flow struct {
		name     string
		from, to *nettest.NS
		src, dst netip.Addr // src invalid: the kernel picks
		masq     netip.Addr // source the server sees with the rules
		plain    netip.Addr // and without them
	}
	flows := []flow{
		{"pod to world", m.pod, m.world, netip.Addr{}, a("198.18.0.9"), a("198.18.0.1"), a("198.19.1.2")},
		{"pod to world v6", m.pod, m.world, netip.Addr{}, a("2001:2::9"), a("2001:2::1"), a("2001:2:0:1001::2")},
		{"pod to pod of another node", m.pod, m.remote, netip.Addr{}, a("198.19.2.2"), a("198.19.1.2"), a("198.19.1.2")},
		{"pod to pod of another node v6", m.pod, m.remote, netip.Addr{}, a("2001:2:0:1002::2"), a("2001:2:0:1001::2"), a("2001:2:0:1001::2")},
		{"pod of another node to pod", m.remote, m.pod, netip.Addr{}, a("198.19.1.2"), a("198.19.2.2"), a("198.19.2.2")},
		{"world to pod", m.world, m.pod, netip.Addr{}, a("198.19.1.2"), a("198.18.0.9"), a("198.18.0.9")},
		{"world to pod v6", m.world, m.pod, netip.Addr{}, a("2001:2:0:1001::2"), a("2001:2::9"), a("2001:2::9")},
		{"host into the overlay", m.router, m.remote, a("198.18.0.1"), a("198.19.2.2"), a("198.19.2.1"), a("198.18.0.1")},
		{"host into the overlay v6", m.router, m.remote, a("2001:2::1"), a("2001:2:0:1002::2"), a("2001:2:0:1002::1"), a("2001:2::1")},
	}
	check := func(t *testing.T, when string, masq bool) {
		t.Helper()
		for _, f := range flows {
			want := f.plain
			if masq {
				want = f.masq
			}
			got, err := seenFrom(t, f.from, f.to, f.src, f.dst)
			if err != nil {
				t.Errorf("%s: %s: %v", when, f.name, err)
				continue
			}
			if got != want {
				t.Errorf("%s: %s: server saw the connection from %s, want %s", when, f.name, got, want)
			}
		}
	}
	check(t, "no rules", false)

	nets := []MasqNet{{Network: masqN4, Subnet: masqS4}, {Network: masqN6, Subnet: masqS6}}
	// A first run that crashes: its rules stay.
	crashed := New()
	if err := m.router.Do(func() error { return crashed.SetMasquerade(nets) }); err != nil {
		t.Fatalf("set: %v", err)
	}
	check(t, "with rules", true)
	before := m.router.Run("nft", "-s", "list", "table", "inet", TableName)
	// 1 kube-proxy rule + 5 per family.
	if n := strings.Count(before, masqTag); n != 11 {
		t.Fatalf("after the first run: got %d masquerade rules, want 11:\n%s", n, before)
	}
	for _, want := range []string{
		"type nat hook postrouting priority srcnat",
		"meta mark & 0x00004000 == 0x00004000",
		"ip saddr 198.19.1.0/24 ip daddr 198.19.0.0/16",
		"ip saddr != 198.19.0.0/16 ip daddr 198.19.1.0/24",
		"ip daddr != 224.0.0.0/4",
		"masquerade fully-random",
		"ip6 saddr 2001:2:0:1000::/52 ip6 daddr != ff00::/8",
	} {
		if !strings.Contains(before, want) {
			t.Errorf("nft list table inet %s: got\n%s\nwant a line with %q", TableName, before, want)
		}
	}

	// The next run replaces them: the same table, no duplicates.
	h := New()
	if err := m.router.Do(func() error { return h.SetMasquerade(nets) }); err != nil {
		t.Fatalf("set in the second run: %v", err)
	}
	if after := m.router.Run("nft", "-s", "list", "table", "inet", TableName); after != before {
		t.Fatalf("after a restart: got table\n%s\nwant it as before\n%s", after, before)
	}
	if got := h.Changes(); len(got) != 1 || got[0] != "nftables masquerade 198.19.0.0/16 (own 198.19.1.0/24) 2001:2:0:1000::/52 (own 2001:2:0:1001::/64)" {
		t.Errorf("changes: got %q, want one nftables masquerade line", got)
	}
	check(t, "after a restart", true)

	// Sharing the table: forward-accept rules stay when the masquerade
	// rules go, and the other way round.
	if err := m.router.Do(func() error { return h.SetForwardAccept([]netip.Prefix{masqN4}) }); err != nil {
		t.Fatalf("forward accept: %v", err)
	}
	if err := m.router.Do(func() error { return h.SetMasquerade(nil) }); err != nil {
		t.Fatalf("set empty: %v", err)
	}
	out := m.router.Run("nft", "-s", "list", "table", "inet", TableName)
	if strings.Contains(out, masqTag) || !strings.Contains(out, forwardTag) {
		t.Fatalf("after removing the masquerade rules: got\n%s\nwant the forward chain only", out)
	}
	check(t, "rules removed", false)
	if err := m.router.Do(func() error { return h.SetMasquerade(nets) }); err != nil {
		t.Fatalf("set again: %v", err)
	}

	if err := m.router.Do(h.Close); err != nil {
		t.Fatalf("close: %v", err)
	}
	if out := m.router.Run("nft", "list", "ruleset"); strings.Contains(out, TableName) {
		t.Fatalf("after close: got ruleset\n%s\nwant no table %s", out, TableName)
	}
	check(t, "after close", false)
	if err := m.router.Do(func() error { return h.SetMasquerade(nets) }); !errors.Is(err, ErrClosed) {
		t.Fatalf("set after close: got %v, want ErrClosed", err)
	}
	if err := m.router.Do(crashed.Close); err != nil {
		t.Fatalf("close of the crashed run's host: got %v, want nil", err)
	}
}

func TestMasqueradeKubeProxyMark(t *testing.T) {
	m := newMasqNet(t)
	// kube-proxy marks what it masquerades itself; here a prerouting rule
	// marks pod traffic to one world port.
	h := New()
	t.Cleanup(func() { _ = m.router.Do(h.Close) })
	if err := m.router.Do(func() error {
		return h.SetMasquerade([]MasqNet{{Network: masqN4, Subnet: masqS4}})
	}); err != nil {
		t.Fatal(err)
	}
	m.router.Run("nft", "add", "table", "ip", "kp")
	m.router.Run("nft", "add chain ip kp pre { type filter hook prerouting priority 0; }")
	m.router.Run("nft", "add", "rule", "ip", "kp", "pre", "ip", "daddr", "198.18.0.9", "meta", "mark", "set", "0x4000")
	got, err := seenFrom(t, m.pod, m.world, netip.Addr{}, netip.MustParseAddr("198.18.0.9"))
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddr("198.19.1.2"); got != want {
		t.Fatalf("marked pod traffic: server saw %s, want %s (not masqueraded)", got, want)
	}
	// The mark rule counted the packets it let pass.
	out := m.router.Run("nft", "list", "chain", "inet", TableName, masqChain)
	if re := regexp.MustCompile(`0x00004000 counter packets [1-9]`); !re.MatchString(out) {
		t.Fatalf("kube-proxy mark rule: got\n%s\nwant a non-zero counter", out)
	}
}
