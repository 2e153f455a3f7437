package config

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestPeerCheck(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`)
	good := Peer{Name: "n2", PublicIP: netip.MustParseAddr("198.18.0.2"), Backend: BackendVXLAN, VNI: 1,
		VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 2}, Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}
	full := PeerScope{Backend: BackendVXLAN, Network: nc, Own: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		Self: netip.MustParseAddr("198.18.0.1"), SelfMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 1}, IPv4Only: true}
	full6 := full
	full6.Self6 = netip.MustParseAddr("2001:2:0:ff::1")
	nc6 := mustNetConf(t, `{"Network": "198.19.0.0/16", "EnableIPv6": true, "IPv6Network": "2001:2:0:1000::/52", "Backend": {"Type": "vxlan"}}`)
	mod := func(f func(p *Peer)) Peer {
		p := good
		p.Subnets = append([]netip.Prefix(nil), good.Subnets...)
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name  string
		p     Peer
		scope PeerScope
		kind  error // nil: accepted
		field string
		msg   string
	}{
		{"good, alone", good, PeerScope{}, nil, "", ""},
		{"good, in scope", good, full, nil, "", ""},
		{"udp without MAC, VNI ignored", mod(func(p *Peer) { p.Backend, p.VtepMAC, p.VNI = BackendUDP, nil, 1<<30 }), PeerScope{}, nil, "", ""},
		{"no name", mod(func(p *Peer) { p.Name = "" }), PeerScope{}, ErrInvalidPeer, "Name", "empty name"},
		{"no backend", mod(func(p *Peer) { p.Backend = "" }), PeerScope{}, ErrInvalidPeer, "Backend", "no backend"},
		{"unknown backend", mod(func(p *Peer) { p.Backend = "wireguard" }), PeerScope{}, ErrInvalidPeer, "Backend", `unknown backend "wireguard"`},
		{"other backend", mod(func(p *Peer) { p.Backend, p.VtepMAC = BackendUDP, nil }), full, ErrForeignPeer, "Backend", "backend udp, this network uses vxlan"},
		{"no IP", mod(func(p *Peer) { p.PublicIP = netip.Addr{} }), PeerScope{}, ErrInvalidPeer, "PublicIP", "no public IP"},
		{"broadcast IP", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("255.255.255.255") }), PeerScope{}, ErrInvalidPeer, "PublicIP", "public IP 255.255.255.255 is not a unicast address"},
		{"loopback IP", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("127.0.0.1") }), full, ErrInvalidPeer, "PublicIP", "public IP 127.0.0.1 is a loopback address"},
		{"IPv6 loopback IP", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("::1") }), PeerScope{Network: nc}, ErrInvalidPeer, "PublicIP", "public IP ::1 is a loopback address"},
		{"loopback IP, alone", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("127.0.0.1") }), PeerScope{}, nil, "", ""},
		{"loopback IP, loopback node", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("127.0.0.2") }),
			PeerScope{Network: nc, Self: netip.MustParseAddr("127.0.0.1")}, nil, "", ""},
		{"unspecified IP", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("0.0.0.0") }), PeerScope{}, ErrInvalidPeer, "PublicIP", "public IP 0.0.0.0 is not a unicast address"},
		{"multicast IP", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("239.1.1.1") }), PeerScope{}, ErrInvalidPeer, "PublicIP", "public IP 239.1.1.1 is not a unicast address"},
		{"IP inside the network", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("198.19.2.7") }), full, ErrInvalidPeer, "PublicIP",
			"public IP 198.19.2.7 is inside the overlay network 198.19.0.0/16: its packets would be encapsulated again (a loop)"},
		{"IP inside the IPv6 network", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("2001:2:0:1002::9") }), PeerScope{Network: nc6}, ErrInvalidPeer, "PublicIP",
			"public IP 2001:2:0:1002::9 is inside the overlay network 2001:2:0:1000::/52: its packets would be encapsulated again (a loop)"},
		{"IP inside the network, no network", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("198.19.2.7") }), PeerScope{}, nil, "", ""},
		{"our VtepMAC", mod(func(p *Peer) { p.VtepMAC = net.HardwareAddr{0x0e, 0, 0, 0, 0, 1} }), full, ErrForeignPeer, "VtepMAC", "VtepMAC 0e:00:00:00:00:01 is this node's own"},
		{"our IP", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("::ffff:198.18.0.1") }), full, ErrForeignPeer, "PublicIP", "public IP 198.18.0.1 is this node's own"},
		{"IPv6 on IPv4 underlay", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("2001:2::2") }), full, ErrForeignPeer, "PublicIP", "ipv6 public IP 2001:2::2, but this node has no ipv6 underlay"},
		{"IPv6 with an IPv6 underlay", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("2001:2:0:ff::2") }), full6, nil, "", ""},
		{"our IPv6", mod(func(p *Peer) { p.PublicIP = netip.MustParseAddr("2001:2:0:ff::1") }), full6, ErrForeignPeer, "PublicIP", "public IP 2001:2:0:ff::1 is this node's own"},
		{"IPv4 with an IPv6 underlay", good, full6, nil, "", ""},
		{"VNI", mod(func(p *Peer) { p.VNI = MaxVNI + 1 }), PeerScope{}, ErrInvalidPeer, "VNI", "VNI 16777216 does not fit in 24 bits"},
		{"no MAC", mod(func(p *Peer) { p.VtepMAC = nil }), PeerScope{}, ErrInvalidPeer, "VtepMAC", "the vxlan backend needs a VtepMAC"},
		{"short MAC", mod(func(p *Peer) { p.VtepMAC = p.VtepMAC[:5] }), PeerScope{}, ErrInvalidPeer, "VtepMAC", "VtepMAC 0e:00:00:00:00 is not a 6-byte MAC"},
		{"zero MAC", mod(func(p *Peer) { p.VtepMAC = make(net.HardwareAddr, 6) }), PeerScope{}, ErrInvalidPeer, "VtepMAC", "VtepMAC 00:00:00:00:00:00 is not a unicast MAC"},
		{"invalid subnet", mod(func(p *Peer) { p.Subnets = append(p.Subnets, netip.Prefix{}) }), PeerScope{}, ErrInvalidPeer, "Subnets[1]", "invalid subnet invalid Prefix"},
		{"subnet outside", mod(func(p *Peer) { p.Subnets[0] = netip.MustParsePrefix("10.0.0.0/24") }), full, ErrForeignPeer, "Subnets[0]", "10.0.0.0/24 is outside the network 198.19.0.0/16"},
		{"subnet outside, no network", mod(func(p *Peer) { p.Subnets[0] = netip.MustParsePrefix("10.0.0.0/24") }), PeerScope{}, nil, "", ""},
		{"overlaps own", mod(func(p *Peer) { p.Subnets[0] = netip.MustParsePrefix("198.19.0.0/23") }), full, ErrForeignPeer, "Subnets[0]", "198.19.0.0/23 overlaps this node's own subnet 198.19.1.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.scope)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var pe *PeerError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *PeerError", err)
			}
			if !errors.Is(err, tc.kind) || pe.Field != tc.field || pe.Msg != tc.msg || pe.Peer != tc.p.Name {
				t.Errorf("got kind %v field %q msg %q peer %q, want %v %q %q %q", pe.Kind, pe.Field, pe.Msg, pe.Peer, tc.kind, tc.field, tc.msg, tc.p.Name)
			}
		})
	}
}
