package registry

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
)

func TestDualStackPeers(t *testing.T) {
	mac4, mac6 := net.HardwareAddr{0x5e, 0, 0, 0, 0, 4}, net.HardwareAddr{0x5e, 0, 0, 0, 0, 6}
	sn4, sn6 := netip.MustParsePrefix("198.19.3.0/24"), netip.MustParsePrefix("2001:2:0:1003::/64")
	pub6, self6 := netip.MustParseAddr("2001:2:0:ff::3"), netip.MustParseAddr("2001:2:0:ff::1")
	p := config.Peer{Name: "n3", PublicIP: netip.MustParseAddr("198.18.0.3"), Port: 8472, Subnets: []netip.Prefix{sn4},
		Backend: config.BackendVXLAN, VNI: 7, VtepMAC: mac4}
	with := func(f func(q *config.Peer)) config.Peer {
		q := p
		f(&q)
		return q
	}
	both := with(func(q *config.Peer) { q.Subnets = []netip.Prefix{sn4, sn6} })
	v6peer := with(func(q *config.Peer) {
		q.Name, q.PublicIP, q.Subnets, q.VtepMAC = "n3/v6", pub6, []netip.Prefix{sn6}, mac6
	})
	tests := []struct {
		name    string
		v6      V6Side
		self6   netip.Addr
		want    []config.Peer
		routed6 bool
	}{
		{"IPv4 only", V6Side{}, self6, []config.Peer{p}, false},
		{"IPv4 only, IPv6 side without subnet", V6Side{PublicIP: pub6, VtepMAC: mac6}, self6, []config.Peer{p}, false},
		{"over PublicIP, no BackendV6Data", V6Side{Subnet: sn6}, netip.Addr{}, []config.Peer{both}, true},
		{"over PublicIP, same VTEP (vxtun)", V6Side{Subnet: sn6, VNI: 7, VtepMAC: mac4}, netip.Addr{}, []config.Peer{both}, true},
		{"over PublicIP, same VTEP, VNI 0", V6Side{Subnet: sn6, VtepMAC: mac4}, self6, []config.Peer{both}, true},
		{"over PublicIP, other VTEP", V6Side{Subnet: sn6, VNI: 7, VtepMAC: mac6}, self6, []config.Peer{p}, false},
		{"over PublicIP, other VNI", V6Side{Subnet: sn6, VNI: 8, VtepMAC: mac4}, self6, []config.Peer{p}, false},
		{"PublicIPv6, none here", V6Side{PublicIP: pub6, Subnet: sn6, VNI: 7, VtepMAC: mac6}, netip.Addr{}, []config.Peer{p}, false},
		{"PublicIPv6 (flanneld)", V6Side{PublicIP: pub6, Subnet: sn6, VNI: 7, VtepMAC: mac6}, self6, []config.Peer{p, v6peer}, true},
		{"PublicIPv6, VNI 0", V6Side{PublicIP: pub6, Subnet: sn6, VtepMAC: mac6}, self6, []config.Peer{p, v6peer}, true},
		{"PublicIPv6, own VNI", V6Side{PublicIP: pub6, Subnet: sn6, VNI: 9, VtepMAC: mac6}, self6,
			[]config.Peer{p, with(func(q *config.Peer) { *q = v6peer; q.VNI = 9 })}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, routed6 := DualStackPeers(p, tt.v6, tt.self6)
			if routed6 != tt.routed6 || len(got) != len(tt.want) {
				t.Fatalf("got %+v routed6 %v\nwant %+v routed6 %v", got, routed6, tt.want, tt.routed6)
			}
			for i := range got {
				if !peerEqual(got[i], tt.want[i]) {
					t.Errorf("peer %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if len(p.Subnets) != 1 {
				t.Fatalf("DualStackPeers modified its argument: subnets %v", p.Subnets)
			}
		})
	}
}

func TestCheckPublicIPv6(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"", true}, {"2001:2:0:ff::1", true}, {"198.18.0.1", false}, {"::ffff:198.18.0.1", false},
		{"fe80::1", false}, {"::1", false}, {"ff02::1", false}, {"2001:2:0:ff::1%eth0", false},
	} {
		var ip netip.Addr
		if tt.in != "" {
			ip = netip.MustParseAddr(tt.in)
		}
		if err := checkPublicIPv6(ip); (err == nil) != tt.ok {
			t.Errorf("checkPublicIPv6(%q): got %v, want ok %v", tt.in, err, tt.ok)
		}
	}
}
