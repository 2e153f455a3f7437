package fastpath

import (
	"fmt"
	"net"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
)

// encapsulation is a Forwarder's wire format, chosen once in New
// (newEncapsulation): VXLAN or flannel's legacy UDP. The pipeline never
// asks which one it has; it asks the encapsulation. Implementations are
// immutable after New and safe for concurrent use by all workers.
type encapsulation interface {
	// overhead is what the format adds on the wire around an inner
	// packet: outer IPv4 (IPv6 with ipv6Underlay) + UDP + headerLen.
	overhead(ipv6Underlay bool) int
	// headerLen is how many bytes encap writes in front of the inner
	// packet, and so the offset of the inner packet in a received datagram.
	headerLen() int
	// defaultPort is the UDP port used when none is configured.
	defaultPort() uint16
	// encap writes the headers for r into the headroom in front of the
	// inner packet at buf[offset:] (offset ≥ headerLen) and returns where
	// the UDP payload starts: offset-headerLen.
	encap(buf []byte, offset int, r *routing.Route, etherType uint16) (start int)
	// decap checks one received datagram payload d. It returns the inner
	// IP packet trimmed to its IP length, which starts at d[headerLen:], or
	// with arp set an ARP packet to answer; or the reason to drop d
	// (noDrop when d is good).
	decap(d []byte) (inner []byte, arp bool, reason dropReason)
}

// newEncapsulation returns the encapsulation of backend b; vni and mac are
// this node's VXLAN network identifier and VTEP MAC (VXLAN only).
func newEncapsulation(b config.Backend, vni uint32, mac net.HardwareAddr) (encapsulation, error) {
	switch b {
	case config.BackendVXLAN:
		if vni > encap.MaxVNI {
			return nil, fmt.Errorf("vni %d does not fit in 24 bits", vni)
		}
		if len(mac) != 6 || mac[0]&1 != 0 {
			return nil, fmt.Errorf("vtep mac %q is not a unicast 6-byte mac", mac)
		}
		return &vxlanEncap{vni: vni, mac: [6]byte(mac)}, nil
	case config.BackendUDP:
		return legacyUDP{}, nil
	}
	return nil, fmt.Errorf("unknown backend %q", b)
}

// vxlanEncap is VXLAN (RFC 7348) with an inner Ethernet header.
type vxlanEncap struct {
	vni uint32  // ours: sent when a route has none, required on receive
	mac [6]byte // our VTEP MAC: inner source sent, inner destination accepted
}

func (v *vxlanEncap) overhead(ipv6Underlay bool) int {
	if ipv6Underlay {
		return encap.VXLANOverheadIPv6
	}
	return encap.VXLANOverheadIPv4
}

func (v *vxlanEncap) headerLen() int { return encap.VXLANOverhead }

func (v *vxlanEncap) defaultPort() uint16 { return encap.VXLANPort }

func (v *vxlanEncap) encap(buf []byte, offset int, r *routing.Route, etherType uint16) int {
	vni := r.VNI
	if vni == 0 {
		vni = v.vni
	}
	return encap.EncapVXLAN(buf, offset, vni, r.VtepMAC[:], v.mac[:], etherType)
}

func (v *vxlanEncap) decap(d []byte) ([]byte, bool, dropReason) {
	vni, etherType, inner, err := encap.DecapVXLAN(d, nil)
	if err != nil {
		switch err {
		case encap.ErrShort:
			return nil, false, dropShort
		case encap.ErrNoIBit:
			return nil, false, dropNoIBit
		case encap.ErrEtherType:
			return nil, false, dropBadInner
		}
		return nil, false, dropBadHeader
	}
	if vni != v.vni {
		return nil, false, dropUnknownVNI
	}
	dst := [6]byte(encap.Ethernet(encap.VXLAN(d).Payload()).Dst())
	ours := dst == v.mac
	if etherType == encap.EtherTypeARP {
		if !ours && dst != encap.BroadcastMAC {
			return nil, false, dropWrongMAC
		}
		return inner, true, noDrop
	}
	if !ours {
		return nil, false, dropWrongMAC
	}
	pkt, err := encap.TrimIP(inner)
	if err != nil || (etherType == encap.EtherTypeIPv4) != (encap.IPVersion(pkt) == 4) {
		return nil, false, dropBadInner
	}
	return pkt, false, noDrop
}

// legacyUDP is flannel's udp backend: the datagram is the inner IP packet.
type legacyUDP struct{}

func (legacyUDP) overhead(ipv6Underlay bool) int {
	if ipv6Underlay {
		return encap.UDPLegacyOverheadIPv6
	}
	return encap.UDPLegacyOverheadIPv4
}

func (legacyUDP) headerLen() int { return encap.UDPLegacyOverhead }

func (legacyUDP) defaultPort() uint16 { return encap.UDPLegacyPort }

func (legacyUDP) encap(_ []byte, offset int, _ *routing.Route, _ uint16) int { return offset }

func (legacyUDP) decap(d []byte) ([]byte, bool, dropReason) {
	pkt, err := encap.TrimIP(d)
	switch {
	case err == encap.ErrShort:
		return nil, false, dropShort
	case err != nil:
		return nil, false, dropBadInner
	}
	return pkt, false, noDrop
}
