package hostnettest

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxtun/vxtun/hostnet"
)

func TestFakeRecordsState(t *testing.T) {
	f := New()
	var h hostnet.Host = f
	a := netip.MustParsePrefix("198.19.1.0/32")
	r := netip.MustParsePrefix("198.19.0.0/16")
	if err := h.ConfigureLink(hostnet.Link{Name: "vxtun0", MTU: 1450, TxQueueLen: 4096, Addrs: []netip.Prefix{a}, Routes: []netip.Prefix{r}}); err != nil {
		t.Fatal(err)
	}
	// Again, with a lower queue length and a new route: merged.
	r6 := netip.MustParsePrefix("2001:2:0:1000::1/52")
	if err := h.ConfigureLink(hostnet.Link{Name: "vxtun0", TxQueueLen: 100, Addrs: []netip.Prefix{a}, Routes: []netip.Prefix{r, r6}}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetSysctl("net/ipv6/conf/vxtun0/disable_ipv6", "1"); err != nil {
		t.Fatal(err)
	}
	l, ok := f.Link("vxtun0")
	if !ok {
		t.Fatal("link vxtun0 not recorded")
	}
	wantRoutes := []netip.Prefix{r, r6.Masked()}
	if l.MTU != 1450 || l.TxQueueLen != 4096 || !slices.Equal(l.Addrs, []netip.Prefix{a}) || !slices.Equal(l.Routes, wantRoutes) {
		t.Fatalf("link: got %+v, want mtu 1450 txqueuelen 4096 addrs [%v] routes %v", l, a, wantRoutes)
	}
	if v, ok := f.Sysctl("net/ipv6/conf/vxtun0/disable_ipv6"); !ok || v != "1" {
		t.Fatalf("sysctl: got %q, %v; want \"1\", true", v, ok)
	}
	want := []string{
		"mtu 1450 dev vxtun0", "txqueuelen 4096 dev vxtun0", "address 198.19.1.0/32 dev vxtun0",
		"route 198.19.0.0/16 dev vxtun0", "route 2001:2:0:1000::/52 dev vxtun0",
		"sysctl net/ipv6/conf/vxtun0/disable_ipv6=1",
	}
	if got := h.Changes(); !slices.Equal(got, want) {
		t.Fatalf("changes: got %q, want %q", got, want)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.Changes(); len(got) != 0 || !f.Closed() {
		t.Fatalf("after close: got changes %q, closed %v; want none, true", got, f.Closed())
	}
	if _, ok := f.Link("vxtun0"); ok {
		t.Fatal("link still recorded after close")
	}
	if err := h.SetSysctl("a/b", "1"); !errors.Is(err, hostnet.ErrClosed) {
		t.Fatalf("set after close: got %v, want ErrClosed", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second close: got %v, want nil", err)
	}
}

func TestFakeFail(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		method string
		call   func(h hostnet.Host) error
	}{
		{ConfigureLink, func(h hostnet.Host) error { return h.ConfigureLink(hostnet.Link{Name: "vxtun0", MTU: 1450}) }},
		{SetSysctl, func(h hostnet.Host) error { return h.SetSysctl("net/ipv4/ip_forward", "1") }},
		{SetForwardAccept, func(h hostnet.Host) error {
			return h.SetForwardAccept([]netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			f := New()
			f.Fail(tt.method, boom)
			if err := tt.call(f); !errors.Is(err, boom) {
				t.Fatalf("first call: got %v, want boom", err)
			}
			if got := f.Changes(); len(got) != 0 {
				t.Fatalf("failed call changed state: %q", got)
			}
			if err := tt.call(f); err != nil {
				t.Fatalf("second call: got %v, want nil (failure is one-shot)", err)
			}
			if got := len(f.Changes()); got != 1 {
				t.Fatalf("changes after second call: got %d, want 1", got)
			}
			if got, want := f.Calls(), []string{tt.method, tt.method}; !slices.Equal(got, want) {
				t.Fatalf("calls: got %q, want %q", got, want)
			}
		})
	}
	t.Run(Close, func(t *testing.T) {
		f := New()
		if err := f.SetSysctl("k", "v"); err != nil {
			t.Fatal(err)
		}
		f.Fail(Close, boom)
		if err := f.Close(); !errors.Is(err, boom) {
			t.Fatalf("close: got %v, want boom", err)
		}
		if got := f.Changes(); len(got) != 0 {
			t.Fatalf("state after failed close: got %q, want it undone anyway", got)
		}
	})
	t.Run("cleared", func(t *testing.T) {
		f := New()
		f.Fail(SetSysctl, boom)
		f.Fail(SetSysctl, nil)
		if err := f.SetSysctl("k", "v"); err != nil {
			t.Fatalf("got %v, want nil after clearing the failure", err)
		}
	})
}

func TestFakeForwardAccept(t *testing.T) {
	f := New()
	n4 := netip.MustParsePrefix("198.19.0.0/16")
	n6 := netip.MustParsePrefix("2001:2:0:1000::/52")
	steps := []struct {
		set  []netip.Prefix
		want []netip.Prefix
	}{
		{[]netip.Prefix{n4, netip.MustParsePrefix("198.19.7.7/16")}, []netip.Prefix{n4}},
		{[]netip.Prefix{n6, n4}, []netip.Prefix{n6, n4}},
		{nil, nil},
		{[]netip.Prefix{n4}, []netip.Prefix{n4}},
	}
	for i, s := range steps {
		if err := f.SetForwardAccept(s.set); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := f.ForwardAccept(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: got %v, want %v", i, got, s.want)
		}
	}
	if err := f.SetForwardAccept([]netip.Prefix{{}}); err == nil {
		t.Fatal("invalid prefix: got nil error")
	}
	if got, want := f.Changes(), []string{"nftables forward accept 198.19.0.0/16"}; !slices.Equal(got, want) {
		t.Fatalf("changes: got %q, want %q", got, want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.ForwardAccept(); len(got) != 0 {
		t.Fatalf("after close: got %v, want none", got)
	}
}

func TestFakeMasquerade(t *testing.T) {
	f := New()
	n4 := hostnet.MasqNet{Network: netip.MustParsePrefix("198.19.0.0/16"), Subnet: netip.MustParsePrefix("198.19.1.7/24")}
	if err := f.SetMasquerade([]hostnet.MasqNet{n4}); err != nil {
		t.Fatal(err)
	}
	want := hostnet.MasqNet{Network: n4.Network, Subnet: netip.MustParsePrefix("198.19.1.0/24")}
	if got := f.Masquerade(); len(got) != 1 || got[0] != want {
		t.Fatalf("masquerade: got %v, want [%v] (masked)", got, want)
	}
	if got := f.Changes(); !slices.Contains(got, "nftables masquerade 198.19.0.0/16 (own 198.19.1.0/24)") {
		t.Fatalf("changes: got %q, want a masquerade line", got)
	}
	bad := hostnet.MasqNet{Network: n4.Network, Subnet: netip.MustParsePrefix("198.20.1.0/24")}
	if err := f.SetMasquerade([]hostnet.MasqNet{bad}); err == nil {
		t.Fatal("subnet outside the network: got nil error")
	}
	boom := errors.New("boom")
	f.Fail(SetMasquerade, boom)
	if err := f.SetMasquerade(nil); !errors.Is(err, boom) {
		t.Fatalf("planned failure: got %v, want %v", err, boom)
	}
	if got := f.Masquerade(); len(got) != 1 {
		t.Fatalf("after a failed call: got %v, want the previous policy", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.Masquerade(); got != nil {
		t.Fatalf("after close: got %v, want none", got)
	}
	if err := f.SetMasquerade([]hostnet.MasqNet{n4}); !errors.Is(err, hostnet.ErrClosed) {
		t.Fatalf("after close: got %v, want ErrClosed", err)
	}
}

func TestFakePeerFilter(t *testing.T) {
	f := New()
	var h hostnet.Host = f
	if _, _, ok := f.PeerFilter(); ok {
		t.Fatal("a new Fake has a peer filter")
	}
	a, b := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:2::2")
	if err := h.SetPeerFilter(8472, []netip.Addr{b, netip.AddrFrom16(a.As16()), a}); err != nil {
		t.Fatal(err)
	}
	port, addrs, ok := f.PeerFilter()
	if want := []netip.Addr{a, b}; !ok || port != 8472 || !slices.Equal(addrs, want) {
		t.Errorf("filter: got %v port %d %v; want port 8472 %v (unmapped, sorted, unique)", ok, port, addrs, want)
	}
	f.AddPeerFilterDrops(3)
	if err := h.SetPeerFilter(8472, []netip.Addr{a}); err != nil {
		t.Fatal(err)
	}
	if n, err := h.PeerFilterDrops(); err != nil || n != 3 {
		t.Errorf("drops across an update: got %d, %v; want 3", n, err)
	}
	errBoom := errors.New("boom")
	f.Fail(SetPeerFilter, errBoom)
	if err := h.SetPeerFilter(8472, nil); !errors.Is(err, errBoom) {
		t.Errorf("planned failure: got %v, want %v", err, errBoom)
	}
	if _, addrs, _ := f.PeerFilter(); !slices.Equal(addrs, []netip.Addr{a}) {
		t.Errorf("after a failed call: got %v, want the old set [%v]", addrs, a)
	}
	for _, bad := range []struct {
		port  uint16
		addrs []netip.Addr
	}{{0, nil}, {8472, []netip.Addr{{}}}} {
		if err := h.SetPeerFilter(bad.port, bad.addrs); err == nil {
			t.Errorf("SetPeerFilter(%d, %v): got nil error, want one", bad.port, bad.addrs)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.PeerFilter(); ok {
		t.Error("the filter survived Close")
	}
	if err := h.SetPeerFilter(8472, nil); !errors.Is(err, hostnet.ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
}
