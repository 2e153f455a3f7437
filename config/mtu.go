package config

import "github.com/vxtun/vxtun/encap"

// WireMTU is the MTU of the underlay interface: the largest outer IP packet
// (outer IP header + UDP + encapsulation + inner packet) that leaves the host
// unfragmented.
type WireMTU int

// TunMTU is the MTU of the TUN device: the largest inner IP packet the
// overlay carries. It is a WireMTU minus the encapsulation overhead; the two
// are distinct types so they cannot be mixed up silently.
type TunMTU int

// MTU limits.
const (
	MinTunMTU     = 68    // smallest IPv4 MTU (RFC 791)
	MinTunMTUIPv6 = 1280  // smallest IPv6 MTU (RFC 8200)
	MaxMTU        = 65535 // largest IP packet
)

// Encapsulation overheads in bytes between the wire MTU and the TUN MTU
// (defined by encap, the home of wire constants).
const (
	// VXLAN: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
	VXLANOverheadIPv4 = encap.VXLANOverheadIPv4
	// VXLAN: outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14.
	VXLANOverheadIPv6 = encap.VXLANOverheadIPv6
	// flannel legacy UDP: outer IPv4 20 + UDP 8 (the payload is the raw packet).
	UDPOverheadIPv4 = encap.UDPLegacyOverheadIPv4
	// flannel legacy UDP over an IPv6 underlay: 40 + 8.
	UDPOverheadIPv6 = encap.UDPLegacyOverheadIPv6
)

// Overhead returns the bytes backend b adds around an inner IP packet on an
// IPv4 (or, with ipv6Underlay, IPv6) underlay.
func Overhead(b Backend, ipv6Underlay bool) int {
	switch {
	case b == BackendHostGW:
		return 0 // routed, not encapsulated
	case b == BackendUDP && ipv6Underlay:
		return UDPOverheadIPv6
	case b == BackendUDP:
		return UDPOverheadIPv4
	case ipv6Underlay:
		return VXLANOverheadIPv6
	}
	return VXLANOverheadIPv4
}

// TunMTUFor returns the TUN MTU that makes every encapsulated packet fit in
// wire without fragmenting the outer packet (RFC 7348 §4.3). It returns 0 when
// wire is too small to carry anything.
func TunMTUFor(wire WireMTU, b Backend, ipv6Underlay bool) TunMTU {
	m := int(wire) - Overhead(b, ipv6Underlay)
	if m < 0 {
		return 0
	}
	return TunMTU(m)
}

// WireMTUFor is the inverse of TunMTUFor: the underlay MTU needed to carry
// tun-sized inner packets.
func WireMTUFor(tun TunMTU, b Backend, ipv6Underlay bool) WireMTU {
	return WireMTU(int(tun) + Overhead(b, ipv6Underlay))
}
