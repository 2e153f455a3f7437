package fastpath

import (
	"encoding/binary"
	"net/netip"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
)

// The inbound address filter: after decapsulation, an inner packet from
// peer r is written to the TUN only if
//
//   - its source lies in r's subnets (the route that owns the source has
//     r's underlay address): a peer may only send from its allowed IPs, as
//     in WireGuard's cryptokey routing and RFC 3704's reverse-path check;
//     otherwise it is dropped as spoofed_source;
//   - its destination lies in one of this node's own subnets
//     (Config.Subnets) and is not that subnet's broadcast address, so the
//     node is never a relay to elsewhere nor a path to host services on
//     other addresses (the underlay address, 127/8, multicast,
//     255.255.255.255); otherwise it is dropped as foreign_destination.
//
// Both checks read the addresses in place and allocate nothing.

// ownNets are this node's own overlay subnets in the form the per-packet
// check wants. Immutable after New.
type ownNets struct {
	v4 []ownNet4
	v6 []ownNet6
}

// ownNet4 is an IPv4 subnet as masks: addr&mask == net; bcast is its
// directed broadcast address (none for /31 and /32).
type ownNet4 struct {
	net, mask, bcast uint32
	hasBcast         bool
}

// ownNet6 is an IPv6 subnet as two 64-bit halves and their masks.
type ownNet6 struct {
	p                      netip.Prefix
	hi, lo, maskHi, maskLo uint64
}

func newOwnNets(ps []netip.Prefix) ownNets {
	var o ownNets
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Addr().Is4() {
			a := p.Addr().As4()
			mask := ^(^uint32(0) >> p.Bits()) // Go: a shift by 32 gives 0
			n := binary.BigEndian.Uint32(a[:])
			o.v4 = append(o.v4, ownNet4{net: n, mask: mask, bcast: n | ^mask, hasBcast: p.Bits() <= 30})
		} else {
			a := p.Addr().As16()
			n := ownNet6{p: p, hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:])}
			n.maskHi = ^(^uint64(0) >> min(p.Bits(), 64))
			n.maskLo = ^(^uint64(0) >> max(p.Bits()-64, 0))
			o.v6 = append(o.v6, n)
		}
	}
	return o
}

// dst4 reports whether the raw IPv4 address d is a unicast address of one
// of our subnets.
func (o *ownNets) dst4(d []byte) bool {
	a := binary.BigEndian.Uint32(d)
	for i := range o.v4 {
		n := &o.v4[i]
		if a&n.mask == n.net {
			return !n.hasBcast || a != n.bcast
		}
	}
	return false
}

// dst6 reports whether the raw IPv6 address d lies in one of our subnets
// (multicast never does: our subnets are unicast prefixes).
func (o *ownNets) dst6(d []byte) bool {
	hi, lo := binary.BigEndian.Uint64(d[:8]), binary.BigEndian.Uint64(d[8:16])
	for i := range o.v6 {
		n := &o.v6[i]
		if hi&n.maskHi == n.hi && lo&n.maskLo == n.lo {
			return true
		}
	}
	return false
}

// first returns the address of our first subnet of the family of v6 (the
// TUN's address, <subnet>.0), if there is one.
func (o *ownNets) first(v6 bool) (netip.Addr, bool) {
	if v6 {
		if len(o.v6) == 0 {
			return netip.Addr{}, false
		}
		return o.v6[0].p.Addr(), true
	}
	if len(o.v4) == 0 {
		return netip.Addr{}, false
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], o.v4[0].net)
	return netip.AddrFrom4(b), true
}

// checkInner applies the filter to pkt, a well-formed inner IP packet (as
// the encapsulation's decap returns it) that arrived from peer r; t is the
// routing snapshot of the batch. It returns noDrop or the reason.
func (f *Forwarder) checkInner(pkt []byte, r *routing.Route, t *routing.Table) dropReason {
	var src []byte
	if encap.IPVersion(pkt) == 4 {
		ip := encap.IPv4(pkt)
		src = ip.Src()
		if !sentBy(t.Lookup(src), r) {
			return dropSpoofedSource
		}
		if !f.own.dst4(ip.Dst()) {
			return dropForeignDestination
		}
		return noDrop
	}
	ip := encap.IPv6(pkt)
	src = ip.Src()
	if !sentBy(t.Lookup(src), r) {
		return dropSpoofedSource
	}
	if !f.own.dst6(ip.Dst()) {
		return dropForeignDestination
	}
	return noDrop
}

// sentBy reports whether owner, the route of an inner source address, may
// send from it through the underlay address r came from (several peers may
// share one underlay address, e.g. behind NAT).
func sentBy(owner, r *routing.Route) bool {
	return owner != nil && (owner == r || owner.Underlay.Addr() == r.Underlay.Addr())
}
