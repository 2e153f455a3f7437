package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vxtun/vxtun/encap"
)

// Backend is the encapsulation a node uses on the wire.
type Backend string

// The backends vxtun implements.
const (
	BackendVXLAN Backend = "vxlan"
	BackendUDP   Backend = "udp"
	// BackendHostGW is flannel's host-gw: no encapsulation, a kernel route
	// per peer through the peer's public IP on the shared L2 underlay.
	BackendHostGW Backend = "host-gw"
)

// Default UDP destination ports, as Linux and flannel use them, and the VNI
// range (wire constants: defined by encap).
const (
	DefaultVXLANPort = encap.VXLANPort
	DefaultUDPPort   = encap.UDPLegacyPort
	// MaxVNI is the largest 24-bit VXLAN network identifier.
	MaxVNI = encap.MaxVNI
	// DefaultVNI is flannel's VNI when net-conf.json names none.
	DefaultVNI = 1
)

// Peer is one remote node as the dataplane needs it. It is plain data:
// registry produces it, cmd hands it to fastpath.
type Peer struct {
	// Name identifies the peer in logs and counters (static file: its name;
	// etcd: the lease key's subnet, e.g. "10.244.1.0-24").
	Name string
	// PublicIP is the underlay address packets to this peer are sent to.
	PublicIP netip.Addr
	// Port is the underlay UDP destination port; 0 means the backend default.
	Port uint16
	// Subnets are the overlay prefixes routed to this peer.
	Subnets []netip.Prefix
	// Backend is how the peer encapsulates.
	Backend Backend
	// VNI is the VXLAN network identifier (vxlan backend only).
	VNI uint32
	// VtepMAC is the peer's VTEP MAC address (vxlan backend only): the inner
	// destination MAC of frames sent to it.
	VtepMAC net.HardwareAddr
}

// Kinds of PeerError (match them with errors.Is).
var (
	// ErrInvalidPeer: the peer description is malformed: no name, no or a
	// non-unicast or loopback public IP, a missing or unknown backend, a
	// VNI beyond 24 bits, a bad VtepMAC, an invalid subnet; or it would
	// loop: a public IP inside the overlay network.
	ErrInvalidPeer = errors.New("invalid peer")
	// ErrForeignPeer: the peer is well formed but not one this node can
	// use: another backend, a subnet outside the overlay network or
	// overlapping this node's own, this node's own public IP or VTEP MAC,
	// an IPv6 public IP for a node without an IPv6 underlay.
	ErrForeignPeer = errors.New("peer not usable here")
)

// PeerError is why Peer.Check rejects a peer.
type PeerError struct {
	Peer  string // the peer's name
	Field string // the field at fault, named as in the peers file: "VtepMAC", "Subnets[1]"
	Msg   string // what is wrong with it
	Kind  error  // ErrInvalidPeer or ErrForeignPeer
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer %q: %s: %s", e.Peer, e.Field, e.Msg) }

// Unwrap returns the kind, ErrInvalidPeer or ErrForeignPeer.
func (e *PeerError) Unwrap() error { return e.Kind }

// PeerScope is what Peer.Check holds a peer against: this node's view. The
// zero PeerScope checks the peer on its own.
type PeerScope struct {
	// Backend is this node's; a peer of another is foreign ("" skips).
	Backend Backend
	// Network, when set, must contain the peer's subnets (NetConf.CheckSubnet)
	// and must not contain its public IP (packets to it would be
	// encapsulated again, a loop); with it, a loopback public IP is an error
	// too, unless Self is a loopback address as well.
	Network *NetConf
	// Own are this node's subnets; a peer subnet overlapping one is foreign.
	Own []netip.Prefix
	// Self is this node's public IP; a peer carrying it is foreign.
	Self netip.Addr
	// SelfMAC is this node's VTEP MAC; a peer carrying it is foreign.
	SelfMAC net.HardwareAddr
	// IPv4Only says the underlay socket is IPv4; an IPv6 public IP is
	// foreign, unless the node has an IPv6 underlay too (Self6).
	IPv4Only bool
	// Self6 is this node's public IPv6 address, when it has an IPv6
	// underlay (--public-ipv6): IPv6 public IPs are then usable, and a peer
	// carrying Self6 is foreign.
	Self6 netip.Addr
}

// Check is the one validation of a single peer; every peer source (static
// file, etcd leases) and every consumer (the routing table, the forwarder)
// calls it. It returns nil or a *PeerError. What concerns several peers at
// once (duplicate names, addresses and MACs, subnets of two peers that
// overlap) is the business of whoever holds the set.
func (p *Peer) Check(s PeerScope) error {
	bad := func(kind error, field, format string, args ...any) error {
		return &PeerError{Peer: p.Name, Field: field, Msg: fmt.Sprintf(format, args...), Kind: kind}
	}
	if p.Name == "" {
		return bad(ErrInvalidPeer, "Name", "empty name")
	}
	switch p.Backend {
	case BackendVXLAN, BackendUDP, BackendHostGW:
	case "":
		return bad(ErrInvalidPeer, "Backend", "no backend")
	default:
		return bad(ErrInvalidPeer, "Backend", "unknown backend %q", p.Backend)
	}
	if s.Backend != "" && p.Backend != s.Backend {
		return bad(ErrForeignPeer, "Backend", "backend %s, this network uses %s", p.Backend, s.Backend)
	}
	ip := p.PublicIP.Unmap()
	switch {
	case !ip.IsValid():
		return bad(ErrInvalidPeer, "PublicIP", "no public IP")
	case ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return bad(ErrInvalidPeer, "PublicIP", "public IP %s is not a unicast address", ip)
	case ip.IsLoopback() && s.Network != nil && !s.Self.Unmap().IsLoopback():
		// Checked in a node's view only: in-process tests and one-host labs
		// run whole overlays on loopback addresses.
		return bad(ErrInvalidPeer, "PublicIP", "public IP %s is a loopback address", ip)
	case s.Network != nil && s.Network.ContainsAddr(ip):
		return bad(ErrInvalidPeer, "PublicIP", "public IP %s is inside the overlay network %s: its packets would be encapsulated again (a loop)",
			ip, s.Network.networkOf(ip))
	case s.Self.IsValid() && ip.WithZone("") == s.Self.Unmap().WithZone(""):
		return bad(ErrForeignPeer, "PublicIP", "public IP %s is this node's own", ip)
	case s.Self6.IsValid() && ip.WithZone("") == s.Self6.WithZone(""):
		return bad(ErrForeignPeer, "PublicIP", "public IP %s is this node's own", ip)
	case s.IPv4Only && ip.Is6() && !s.Self6.IsValid():
		return bad(ErrForeignPeer, "PublicIP", "ipv6 public IP %s, but this node has no ipv6 underlay", ip)
	}
	if p.Backend == BackendVXLAN {
		if p.VNI > MaxVNI {
			return bad(ErrInvalidPeer, "VNI", "VNI %d does not fit in 24 bits", p.VNI)
		}
		switch {
		case len(p.VtepMAC) == 0:
			return bad(ErrInvalidPeer, "VtepMAC", "the vxlan backend needs a VtepMAC")
		case len(p.VtepMAC) != 6:
			return bad(ErrInvalidPeer, "VtepMAC", "VtepMAC %s is not a 6-byte MAC", p.VtepMAC)
		case CheckVtepMAC(p.VtepMAC) != nil:
			return bad(ErrInvalidPeer, "VtepMAC", "VtepMAC %s is not a unicast MAC", p.VtepMAC)
		case len(s.SelfMAC) == 6 && [6]byte(p.VtepMAC) == [6]byte(s.SelfMAC):
			return bad(ErrForeignPeer, "VtepMAC", "VtepMAC %s is this node's own", p.VtepMAC)
		}
	}
	for i, sn := range p.Subnets {
		field := func() string { return fmt.Sprintf("Subnets[%d]", i) }
		if !sn.IsValid() {
			return bad(ErrInvalidPeer, field(), "invalid subnet %v", sn)
		}
		if s.Network != nil {
			if err := s.Network.CheckSubnet(sn); err != nil {
				return bad(ErrForeignPeer, field(), "%v", err)
			}
		}
		for _, o := range s.Own {
			if o.Overlaps(sn) {
				return bad(ErrForeignPeer, field(), "%s overlaps this node's own subnet %s", sn, o)
			}
		}
	}
	return nil
}
