package hostnettest

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxtun/vxtun/hostnet"
)

func TestFakeVXLAN(t *testing.T) {
	f := New()
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	pmac, _ := net.ParseMAC("0e:76:78:00:00:02")
	d := hostnet.VXLAN{Name: "flannel.1", VNI: 1, Local: netip.MustParseAddr("198.18.0.1"), Dev: "ul0", Port: 8472, MAC: mac,
		MTU: 1450, Addrs: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/32")}}
	if err := f.SetVXLANPeers("flannel.1", nil); err == nil {
		t.Fatal("SetVXLANPeers before AddVXLAN: got nil, want an error")
	}
	boom := errors.New("vxlan refused")
	f.Fail(AddVXLAN, boom)
	if err := f.AddVXLAN(d); !errors.Is(err, boom) {
		t.Fatalf("AddVXLAN with a planned failure: got %v, want %v", err, boom)
	}
	if _, ok := f.VXLAN("flannel.1"); ok {
		t.Fatal("a refused device was recorded")
	}
	if err := f.AddVXLAN(d); err != nil {
		t.Fatal(err)
	}
	peer := hostnet.VXLANPeer{PublicIP: netip.MustParseAddr("198.18.0.2"), MAC: pmac, Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}
	if err := f.SetVXLANPeers("flannel.1", []hostnet.VXLANPeer{peer}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"fdb 0e:76:78:00:00:02 dev flannel.1 dst 198.18.0.2 self permanent",
		"neigh 198.19.2.0 lladdr 0e:76:78:00:00:02 dev flannel.1 nud permanent",
		"route 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink",
	}
	if got := f.VXLANEntries("flannel.1"); !slices.Equal(got, want) {
		t.Fatalf("entries: got %q, want %q", got, want)
	}
	if got, wantDev := f.Changes()[0], d.String(); got != wantDev {
		t.Fatalf("changes[0]: got %q, want %q", got, wantDev)
	}
	if !f.SetLinkStats("flannel.1", hostnet.LinkStats{TxPackets: 7}) {
		t.Fatal("SetLinkStats: no device")
	}
	if s, err := f.LinkStats("flannel.1"); err != nil || s.TxPackets != 7 {
		t.Fatalf("LinkStats: got %+v, %v; want 7 tx packets", s, err)
	}
	// A bad set is refused and the entries stay.
	bad := peer
	bad.Subnets = []netip.Prefix{netip.MustParsePrefix("2001:2:0:1002::/64")}
	if err := f.SetVXLANPeers("flannel.1", []hostnet.VXLANPeer{bad}); err == nil {
		t.Fatal("IPv6 subnet: got nil, want an error")
	}
	if got := f.VXLANEntries("flannel.1"); !slices.Equal(got, want) {
		t.Fatalf("entries after a refused set: got %q, want %q", got, want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.VXLAN("flannel.1"); ok || len(f.Changes()) != 0 {
		t.Fatalf("after Close: device still recorded or changes %q", f.Changes())
	}
}
