package config

import (
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
