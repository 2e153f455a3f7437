package hostnet

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/nettest"
)

// gwRoutes lists the routes with a gateway in ns as "dst via gw dev".
func gwRoutes(t *testing.T, ns *nettest.NS) []string {
	t.Helper()
	rs, err := ns.Handle().RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("routes: %v", err)
	}
	var out []string
	for _, r := range rs {
		if r.Gw == nil || r.Dst == nil {
			continue
		}
		l, err := ns.Handle().LinkByIndex(r.LinkIndex)
		if err != nil {
			t.Fatalf("link %d: %v", r.LinkIndex, err)
		}
		out = append(out, r.Dst.String()+" via "+r.Gw.String()+" dev "+l.Attrs().Name)
	}
	slices.Sort(out)
	return out
}

func rt(dst, via string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Dev: "hn0"}
}

func TestSetPeerRoutes(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "hr")
	other := nettest.NewNS(t, "hr")
	nettest.Veth(t, ns, "hn0", "198.18.0.1/24", other, "hn1", "198.18.0.2/24")
	// A route someone else made for a subnet that becomes a peer's.
	ns.Run("ip", "route", "add", "198.19.5.0/24", "via", "198.18.0.9", "dev", "hn0")
	h := New()
	do := func(f func() error) error { return ns.Do(f) }

	var err error
	_ = do(func() error {
		err = h.SetPeerRoutes("host-gw", []Route{
			rt("198.19.2.0/24", "198.18.0.2"),
			rt("198.19.3.0/24", "198.18.7.3"), // not on-link: refused by the kernel
			rt("198.19.4.1/24", "198.18.0.4"), // host bits are dropped
			rt("198.19.5.0/24", "198.18.0.5"),
		})
		return nil
	})
	res := RouteErrors(err)
	if len(res) != 1 || res[netip.MustParsePrefix("198.19.3.0/24")] == nil || !OnlyRouteErrors(err) {
		t.Fatalf("first set: got error %v, want one *RouteError for 198.19.3.0/24", err)
	}
	if !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("off-link gateway: got %v, want ENETUNREACH", err)
	}
	if want := "error adding route to 198.19.3.0/24 via 198.18.7.3 dev hn0: network is unreachable"; err.Error() != want {
		t.Errorf("error text: got %q, want %q (flanneld's words)", err.Error(), want)
	}
	want := []string{"198.19.2.0/24 via 198.18.0.2 dev hn0", "198.19.4.0/24 via 198.18.0.4 dev hn0", "198.19.5.0/24 via 198.18.0.5 dev hn0"}
	if got := gwRoutes(t, ns); !slices.Equal(got, want) {
		t.Fatalf("after the first set: got %q, want %q", got, want)
	}

	// A second owner is a set of its own.
	if err := do(func() error { return h.SetPeerRoutes("other", []Route{rt("198.19.9.0/24", "198.18.0.2")}) }); err != nil {
		t.Fatalf("second owner: %v", err)
	}
	// Replace: one gone, one with a new gateway, one deleted by hand comes back.
	ns.Run("ip", "route", "del", "198.19.5.0/24")
	if err := do(func() error {
		return h.SetPeerRoutes("host-gw", []Route{rt("198.19.4.0/24", "198.18.0.44"), rt("198.19.5.0/24", "198.18.0.5")})
	}); err != nil {
		t.Fatalf("second set: %v", err)
	}
	want = []string{"198.19.4.0/24 via 198.18.0.44 dev hn0", "198.19.5.0/24 via 198.18.0.5 dev hn0", "198.19.9.0/24 via 198.18.0.2 dev hn0"}
	if got := gwRoutes(t, ns); !slices.Equal(got, want) {
		t.Fatalf("after the second set: got %q, want %q", got, want)
	}
	wantChanges := []string{
		"peer routes host-gw: 198.19.4.0/24 via 198.18.0.44 dev hn0, 198.19.5.0/24 via 198.18.0.5 dev hn0",
		"peer routes other: 198.19.9.0/24 via 198.18.0.2 dev hn0",
	}
	if got := h.Changes(); !slices.Equal(got, wantChanges) {
		t.Errorf("changes: got %q, want %q", got, wantChanges)
	}

	// Bad input changes nothing.
	for _, bad := range [][]Route{
		{rt("198.19.4.0/24", "198.18.0.4"), rt("198.19.4.0/24", "198.18.0.5")},
		{{Dst: netip.MustParsePrefix("198.19.4.0/24"), Via: netip.MustParseAddr("2001:2::1"), Dev: "hn0"}},
		{{Dst: netip.MustParsePrefix("198.19.4.0/24"), Via: netip.MustParseAddr("198.18.0.4")}},
	} {
		if err := do(func() error { return h.SetPeerRoutes("host-gw", bad) }); err == nil || OnlyRouteErrors(err) {
			t.Errorf("SetPeerRoutes(%v): got %v, want an input error", bad, err)
		}
	}
	if got := gwRoutes(t, ns); !slices.Equal(got, want) {
		t.Fatalf("after bad input: got %q, want %q", got, want)
	}

	if err := do(h.Close); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := gwRoutes(t, ns); len(got) != 0 {
		t.Errorf("after close: got %q, want no peer routes", got)
	}
	if err := do(func() error { return h.SetPeerRoutes("host-gw", nil) }); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: got %v, want ErrClosed", err)
	}
}

func TestOnLink(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "ho")
	other := nettest.NewNS(t, "ho")
	nettest.Veth(t, ns, "hn0", "198.18.0.1/24", other, "hn1", "198.18.0.2/24")
	nettest.Veth(t, ns, "hn2", "198.18.1.1/24", other, "hn3", "198.18.1.2/24")
	ns.Run("ip", "route", "add", "198.18.2.0/24", "via", "198.18.0.2", "dev", "hn0")
	h := New()
	tests := []struct {
		dev, ip string
		want    bool
	}{
		{"hn0", "198.18.0.2", true},
		{"hn0", "198.18.0.200", true},  // on the subnet, even if nobody answers
		{"hn0", "198.18.2.3", false},   // through a gateway
		{"hn0", "198.18.1.2", false},   // on-link, but on another link
		{"hn2", "198.18.1.2", true},    // ... which is that link
		{"hn0", "198.18.0.1", false},   // our own address
		{"hn0", "198.18.200.1", false}, // no route at all
	}
	for _, tt := range tests {
		var got bool
		err := ns.Do(func() error {
			var err error
			got, err = h.OnLink(tt.dev, netip.MustParseAddr(tt.ip))
			return err
		})
		if err != nil || got != tt.want {
			t.Errorf("OnLink(%s, %s): got %t, %v; want %t", tt.dev, tt.ip, got, err, tt.want)
		}
	}
	if err := ns.Do(func() error { _, err := h.OnLink("nosuch0", netip.MustParseAddr("198.18.0.2")); return err }); err == nil {
		t.Error("OnLink on a missing link: got nil error")
	}
}
