package hostnet

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// routed is a client and a server namespace, each behind its own veth to
// a router namespace that forwards IPv4 and IPv6 between them.
type routed struct {
	c, r, s *nettest.NS
	srv4    string // server address:port, IPv4 and IPv6
	srv6    string
}

func newRouted(t *testing.T) *routed {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "nft", "iptables", "ip6tables")
	rt := &routed{c: nettest.NewNS(t, "fc"), r: nettest.NewNS(t, "fr"), s: nettest.NewNS(t, "fs")}
	for _, ns := range []*nettest.NS{rt.c, rt.r, rt.s} {
		// No duplicate address detection: addresses (link-local ones too,
		// which neighbour discovery uses) are usable at once.
		ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	nettest.Veth(t, rt.c, "eth0", "198.19.1.2/24", rt.r, "c0", "198.19.1.1/24")
	nettest.Veth(t, rt.s, "eth0", "198.19.2.2/24", rt.r, "s0", "198.19.2.1/24")
	for _, x := range []struct {
		ns        *nettest.NS
		dev, addr string
	}{
		{rt.c, "eth0", "2001:2:0:1001::2/64"}, {rt.r, "c0", "2001:2:0:1001::1/64"},
		{rt.s, "eth0", "2001:2:0:1002::2/64"}, {rt.r, "s0", "2001:2:0:1002::1/64"},
	} {
		x.ns.Run("ip", "-6", "addr", "add", x.addr, "dev", x.dev)
	}
	rt.c.Run("ip", "route", "add", "default", "via", "198.19.1.1")
	rt.c.Run("ip", "-6", "route", "add", "default", "via", "2001:2:0:1001::1")
	rt.s.Run("ip", "route", "add", "default", "via", "198.19.2.1")
	rt.s.Run("ip", "-6", "route", "add", "default", "via", "2001:2:0:1002::1")
	rt.r.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	var ln net.Listener
	if err := rt.s.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "[::]:0")
		return err
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	rt.srv4 = netip.AddrPortFrom(netip.MustParseAddr("198.19.2.2"), uint16(port)).String()
	rt.srv6 = netip.AddrPortFrom(netip.MustParseAddr("2001:2:0:1002::2"), uint16(port)).String()
	return rt
}

// reach reports whether the client can open a TCP connection to addr
// through the router.
func (rt *routed) reach(addr string) bool {
	err := rt.c.Do(func() error {
		conn, err := net.DialTimeout("tcp", addr, 400*time.Millisecond)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	return err == nil
}

func (rt *routed) check(t *testing.T, when string, want4, want6 bool) {
	t.Helper()
	if got := rt.reach(rt.srv4); got != want4 {
		t.Errorf("%s: IPv4 forwarded: got %v, want %v", when, got, want4)
	}
	if got := rt.reach(rt.srv6); got != want6 {
		t.Errorf("%s: IPv6 forwarded: got %v, want %v", when, got, want6)
	}
}

// tagged counts vxtun's rules in the router's ruleset.
func (rt *routed) tagged(t *testing.T) (int, string) {
	t.Helper()
	out := rt.r.Run("nft", "list", "ruleset")
	return strings.Count(out, forwardTag), out
}

func TestSetForwardAccept(t *testing.T) {
	n4 := netip.MustParsePrefix("198.19.0.0/16")
	n6 := netip.MustParsePrefix("2001:2:0:1000::/52")
	tests := []struct {
		name     string
		firewall [][]string // commands that make the router drop forwarded packets
		check    func(t *testing.T, rt *routed)
	}{
		{
			name: "iptables-nft",
			firewall: [][]string{
				{"iptables", "-P", "FORWARD", "DROP"},
				{"ip6tables", "-P", "FORWARD", "DROP"},
			},
			check: func(t *testing.T, rt *routed) {
				// iptables-nft itself reads the rules back as its own.
				out := rt.r.Run("iptables", "-S", "FORWARD")
				for _, want := range []string{"-A FORWARD -s 198.19.0.0/16", "-A FORWARD -d 198.19.0.0/16", "-j ACCEPT"} {
					if !strings.Contains(out, want) {
						t.Errorf("iptables -S FORWARD: got\n%s\nwant a line with %q", out, want)
					}
				}
			},
		},
		{
			name: "nftables",
			firewall: [][]string{
				{"nft", "add", "table", "inet", "fw"},
				{"nft", "add chain inet fw forward_drop { type filter hook forward priority 0; policy drop; }"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRouted(t)
			rt.check(t, "no firewall", true, true)
			for _, cmd := range tt.firewall {
				rt.r.Run(cmd...)
			}
			rt.check(t, "policy drop", false, false)

			// A first run that crashes: its rules stay.
			crashed := New()
			if err := rt.r.Do(func() error { return crashed.SetForwardAccept([]netip.Prefix{n4, n6}) }); err != nil {
				t.Fatalf("set: %v", err)
			}
			rt.check(t, "after SetForwardAccept", true, true)
			// 2 rules (from, to) per network in vxtun's table, 2 per
			// network in the foreign chains of its family.
			const want = 8
			if n, out := rt.tagged(t); n != want {
				t.Fatalf("after the first run: got %d tagged rules, want %d\n%s", n, want, out)
			}
			if tt.check != nil {
				tt.check(t, rt)
			}

			// The next run replaces them: no duplicates.
			h := New()
			if err := rt.r.Do(func() error { return h.SetForwardAccept([]netip.Prefix{n4, n6}) }); err != nil {
				t.Fatalf("set in the second run: %v", err)
			}
			if n, out := rt.tagged(t); n != want {
				t.Fatalf("after the second run: got %d tagged rules, want %d\n%s", n, want, out)
			}
			if got := h.Changes(); len(got) != 1 || !strings.HasPrefix(got[0], "nftables forward accept 198.19.0.0/16 2001:2:0:1000::/52") {
				t.Fatalf("changes: got %q, want one nftables forward accept line", got)
			}

			// Declarative: only IPv4 left.
			if err := rt.r.Do(func() error { return h.SetForwardAccept([]netip.Prefix{n4}) }); err != nil {
				t.Fatalf("set IPv4 only: %v", err)
			}
			rt.check(t, "IPv4 network only", true, false)
			if n, out := rt.tagged(t); n != want/2 {
				t.Fatalf("IPv4 network only: got %d tagged rules, want %d\n%s", n, want/2, out)
			}

			if err := rt.r.Do(h.Close); err != nil {
				t.Fatalf("close: %v", err)
			}
			rt.check(t, "after close", false, false)
			if n, out := rt.tagged(t); n != 0 || strings.Contains(out, "table inet "+TableName) {
				t.Fatalf("after close: got %d tagged rules (want 0) or table %s left:\n%s", n, TableName, out)
			}
			if err := rt.r.Do(func() error { return h.SetForwardAccept([]netip.Prefix{n4}) }); !errors.Is(err, ErrClosed) {
				t.Fatalf("set after close: got %v, want ErrClosed", err)
			}
			if err := rt.r.Do(crashed.Close); err != nil {
				t.Fatalf("close of the crashed run's host: got %v, want nil", err)
			}
		})
	}
}

func TestSetForwardAcceptEmpty(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "nft")
	ns := nettest.NewNS(t, "fe")
	h := New()
	n4 := netip.MustParsePrefix("198.19.0.0/16")
	if err := ns.Do(func() error { return h.SetForwardAccept([]netip.Prefix{n4}) }); err != nil {
		t.Fatalf("set: %v", err)
	}
	if out := ns.Run("nft", "list", "ruleset"); strings.Count(out, forwardTag) != 2 {
		t.Fatalf("got ruleset\n%s\nwant 2 tagged rules in table %s", out, TableName)
	}
	if err := ns.Do(func() error { return h.SetForwardAccept(nil) }); err != nil {
		t.Fatalf("set empty: %v", err)
	}
	if out := ns.Run("nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Fatalf("after setting no networks: got ruleset\n%s\nwant it empty", out)
	}
	if got := h.Changes(); len(got) != 0 {
		t.Fatalf("changes after setting no networks: got %q, want none", got)
	}
	if err := ns.Do(func() error { return h.SetForwardAccept([]netip.Prefix{{}}) }); err == nil {
		t.Fatal("invalid network: got nil error")
	}
	if err := ns.Do(h.Close); err != nil {
		t.Fatalf("close: %v", err)
	}
}
