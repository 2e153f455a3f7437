package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vxtun/vxtun/internal/nettest"
)

// linkIn makes a veth pair "hn0"/"hn1" inside a fresh namespace; hn0 is the
// link under test.
func linkIn(t *testing.T) *nettest.NS {
	t.Helper()
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "hn")
	nettest.Veth(t, ns, "hn0", "", ns, "hn1", "")
	return ns
}

// state is what the tests compare: a link's attributes, addresses and the
// routes that are not the kernel's own.
type state struct {
	MTU, TxQLen int
	Addrs       []string
	Routes      []string
}

func (s state) String() string {
	return fmt.Sprintf("mtu %d txqlen %d addrs [%s] routes [%s]",
		s.MTU, s.TxQLen, strings.Join(s.Addrs, " "), strings.Join(s.Routes, " "))
}

func stateOf(t *testing.T, ns *nettest.NS, name string) state {
	t.Helper()
	nh := ns.Handle()
	l, err := nh.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	s := state{MTU: l.Attrs().MTU, TxQLen: l.Attrs().TxQLen}
	as, err := nh.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("addresses of %s: %v", name, err)
	}
	for _, a := range as {
		if !a.IP.IsLinkLocalUnicast() {
			s.Addrs = append(s.Addrs, a.IPNet.String())
		}
	}
	rs, err := nh.RouteList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("routes of %s: %v", name, err)
	}
	for _, r := range rs {
		if r.Dst != nil && r.Protocol != 2 /* RTPROT_KERNEL */ {
			s.Routes = append(s.Routes, r.Dst.String())
		}
	}
	slices.Sort(s.Addrs)
	slices.Sort(s.Routes)
	return s
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestConfigureLink(t *testing.T) {
	ns := linkIn(t)
	before := stateOf(t, ns, "hn0")
	// An address and a route that exist before: accepted, never removed.
	if err := ns.Do(func() error {
		l, err := netlink.LinkByName("hn0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(netip.MustParsePrefix("198.19.9.1/32"))}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(netip.MustParsePrefix("198.19.9.0/24")), Scope: netlink.SCOPE_LINK})
	}); err != nil {
		t.Fatalf("pre-existing state: %v", err)
	}
	pre := stateOf(t, ns, "hn0")

	h := New()
	cfg := Link{
		Name: "hn0", MTU: 1400, TxQueueLen: 4096,
		Addrs:  pfx("198.19.1.0/32", "198.19.9.1/32", "2001:2:0:1001::/128"),
		Routes: pfx("198.19.0.0/16", "198.19.9.0/24", "2001:2:0:1000::/52"),
	}
	if err := ns.Do(func() error { return h.ConfigureLink(cfg) }); err != nil {
		t.Fatalf("configure: %v", err)
	}
	got := stateOf(t, ns, "hn0")
	want := state{
		MTU: 1400, TxQLen: 4096,
		Addrs:  []string{"198.19.1.0/32", "198.19.9.1/32", "2001:2:0:1001::/128"},
		Routes: []string{"198.19.0.0/16", "198.19.9.0/24", "2001:2:0:1000::/52"},
	}
	if got.String() != want.String() {
		t.Fatalf("after configure: got %v, want %v", got, want)
	}
	if l, err := ns.Handle().LinkByName("hn0"); err != nil || l.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("link not up after configure (%v)", err)
	}
	wantChanges := []string{
		fmt.Sprintf("mtu 1400 dev hn0 (was %d)", before.MTU),
		fmt.Sprintf("txqueuelen 4096 dev hn0 (was %d)", before.TxQLen),
		"address 198.19.1.0/32 dev hn0",
		"address 2001:2:0:1001::/128 dev hn0",
		"route 198.19.0.0/16 dev hn0",
		"route 2001:2:0:1000::/52 dev hn0",
	}
	if got := h.Changes(); !slices.Equal(got, wantChanges) {
		t.Fatalf("changes: got %q, want %q", got, wantChanges)
	}

	// The same configuration again changes nothing and records nothing.
	if err := ns.Do(func() error { return h.ConfigureLink(cfg) }); err != nil {
		t.Fatalf("configure again: %v", err)
	}
	if got := len(h.Changes()); got != len(wantChanges) {
		t.Fatalf("changes after configuring twice: got %d, want %d", got, len(wantChanges))
	}
	// A lower queue length is not applied: the link keeps the higher one.
	if err := ns.Do(func() error { return h.ConfigureLink(Link{Name: "hn0", TxQueueLen: 100}) }); err != nil {
		t.Fatalf("configure lower txqueuelen: %v", err)
	}
	if got := stateOf(t, ns, "hn0").TxQLen; got != 4096 {
		t.Fatalf("txqueuelen after asking for 100: got %d, want 4096", got)
	}

	if err := ns.Do(h.Close); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := stateOf(t, ns, "hn0"); got.String() != pre.String() {
		t.Fatalf("after close: got %v, want the state before, %v", got, pre)
	}
	if got := h.Changes(); len(got) != 0 {
		t.Fatalf("changes after close: got %q, want none", got)
	}
	if err := ns.Do(h.Close); err != nil {
		t.Fatalf("second close: got %v, want nil", err)
	}
	if err := ns.Do(func() error { return h.ConfigureLink(cfg) }); !errors.Is(err, ErrClosed) {
		t.Fatalf("configure after close: got %v, want ErrClosed", err)
	}
}

func TestConfigureLinkRollback(t *testing.T) {
	tests := []struct {
		name string
		cfg  Link
		want string // in the error
	}{
		{
			// IPv6 is off on the link, so the IPv6 address is refused
			// after the MTU, queue length and IPv4 address were applied.
			name: "address",
			cfg:  Link{Name: "hn0", MTU: 1300, TxQueueLen: 5000, Addrs: pfx("198.19.1.0/32", "2001:2:0:1001::/128")},
			want: "address 2001:2:0:1001::/128",
		},
		{
			name: "route",
			cfg:  Link{Name: "hn0", MTU: 1300, Addrs: pfx("198.19.1.0/32"), Routes: pfx("198.19.0.0/16", "2001:2:0:1000::/52")},
			want: "route 2001:2:0:1000::/52",
		},
		{
			name: "mtu",
			cfg:  Link{Name: "hn0", TxQueueLen: 5000, MTU: 70000},
			want: "mtu 70000",
		},
		{
			name: "no link",
			cfg:  Link{Name: "nosuch0", MTU: 1300},
			want: "configure nosuch0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := linkIn(t)
			h := New()
			if err := ns.Do(func() error { return h.SetSysctl("net/ipv6/conf/hn0/disable_ipv6", "1") }); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, ns, "hn0")
			err := ns.Do(func() error { return h.ConfigureLink(tt.cfg) })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("configure: got error %v, want one containing %q", err, tt.want)
			}
			if got := stateOf(t, ns, "hn0"); got.String() != before.String() {
				t.Fatalf("after failed configure: got %v, want %v", got, before)
			}
			if got := h.Changes(); len(got) != 1 {
				t.Fatalf("changes after failed configure: got %q, want only the sysctl", got)
			}
			if err := ns.Do(h.Close); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

func TestCloseVanishedLink(t *testing.T) {
	ns := linkIn(t)
	h := New()
	cfg := Link{Name: "hn0", MTU: 1400, TxQueueLen: 4096, Addrs: pfx("198.19.1.0/32"), Routes: pfx("198.19.0.0/16")}
	if err := ns.Do(func() error {
		if err := h.ConfigureLink(cfg); err != nil {
			return err
		}
		return h.SetSysctl("net/ipv6/conf/hn0/disable_ipv6", "1")
	}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	if err := ns.Handle().LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hn0"}}); err != nil {
		t.Fatalf("delete link: %v", err)
	}
	if err := ns.Do(h.Close); err != nil {
		t.Fatalf("close after the link vanished: got %v, want nil", err)
	}
}

func TestSetSysctl(t *testing.T) {
	ns := linkIn(t)
	const key = "net/ipv6/conf/hn0/disable_ipv6"
	read := func() string {
		t.Helper()
		var v string
		if err := ns.Do(func() error {
			b, err := os.ReadFile("/proc/sys/" + key)
			v = strings.TrimSpace(string(b))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := read(); got != "0" {
		t.Fatalf("before: got %s=%s, want 0", key, got)
	}
	h := New()
	if err := ns.Do(func() error { return h.SetSysctl(key, "1") }); err != nil {
		t.Fatalf("set: %v", err)
	}
	if got := read(); got != "1" {
		t.Fatalf("after set: got %s, want 1", got)
	}
	// Setting the value it already has records nothing more.
	if err := ns.Do(func() error { return h.SetSysctl(key, "1") }); err != nil {
		t.Fatalf("set again: %v", err)
	}
	if got, want := h.Changes(), []string{"sysctl " + key + "=1"}; !slices.Equal(got, want) {
		t.Fatalf("changes: got %q, want %q", got, want)
	}
	if err := ns.Do(h.Close); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := read(); got != "0" {
		t.Fatalf("after close: got %s, want 0 (restored)", got)
	}

	for _, bad := range []struct{ key, want string }{
		{"../etc/passwd", "not a key"},
		{"/proc/sys/net/ipv4/ip_forward", "not a key"},
		{"net/ipv4/no_such_key", "no such file"},
	} {
		err := ns.Do(func() error { return New().SetSysctl(bad.key, "1") })
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SetSysctl(%q): got %v, want an error containing %q", bad.key, err, bad.want)
		}
		if err != nil && bad.want == "no such file" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("SetSysctl(%q): got %v, want it to wrap fs.ErrNotExist", bad.key, err)
		}
	}
}
