package registry

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/vxtun/vxtun/config"
)

// V6PeerSuffix ends the name of the second peer a dual-stack lease or Node
// becomes when its IPv6 overlay has an underlay of its own: "<name>/v6".
// Lease names never contain "/" and Node names never do either, so the
// name cannot clash with another peer's.
const V6PeerSuffix = "/v6"

// V6Side is the IPv6 half of a dual-stack lease (PublicIPv6 and
// BackendV6Data) or Node (public-ipv6 and backend-v6-data annotations), as
// flanneld publishes it.
type V6Side struct {
	// PublicIP is the peer's IPv6 underlay address; zero when the lease
	// says null: its IPv6 overlay then goes over the IPv4 PublicIP (as
	// vxtun without a public IPv6 writes it).
	PublicIP netip.Addr
	// Subnet is the peer's IPv6 overlay subnet; zero for an IPv4-only peer.
	Subnet netip.Prefix
	// VNI and VtepMAC are BackendV6Data's (vxlan): flanneld's flannel-v6.1
	// has a MAC of its own. VNI 0 means the IPv4 side's.
	VNI     uint32
	VtepMAC net.HardwareAddr
}

// DualStackPeers is the one conversion of a dual-stack lease or Node into
// peers, shared by the etcd and the Kubernetes source. p is its IPv4 peer
// (name, public IP, port, IPv4 subnet, backend, VNI, VtepMAC), v6 its IPv6
// side and self6 this node's public IPv6 (zero: none).
//
//   - No IPv6 subnet: p alone.
//   - IPv6 over the IPv4 underlay (no PublicIPv6, and no BackendV6Data or
//     one naming p's VTEP): p with the IPv6 subnet added.
//   - IPv6 on an underlay of its own (PublicIPv6) and self6 set: p and a
//     second peer "<name>/v6" with PublicIP = PublicIPv6, the IPv6 subnet
//     and BackendV6Data's VNI and VtepMAC (what flanneld's flannel-v6.1
//     device is told about the peer).
//   - Otherwise (no public IPv6 here, or PublicIPv6 null with a VTEP of
//     its own): p alone, and routed6 is false: the caller logs that the
//     IPv6 subnet is not routed.
//
// The peers returned are not checked: the caller holds each against its
// PeerScope. p is not modified; its Subnets are copied when extended.
func DualStackPeers(p config.Peer, v6 V6Side, self6 netip.Addr) (peers []config.Peer, routed6 bool) {
	if !v6.Subnet.IsValid() {
		return []config.Peer{p}, false
	}
	vni := v6.VNI
	if vni == 0 {
		vni = p.VNI
	}
	if !v6.PublicIP.IsValid() {
		if len(v6.VtepMAC) != 0 && (!bytes.Equal(v6.VtepMAC, p.VtepMAC) || vni != p.VNI) {
			return []config.Peer{p}, false
		}
		p.Subnets = append(append([]netip.Prefix(nil), p.Subnets...), v6.Subnet)
		return []config.Peer{p}, true
	}
	if !self6.IsValid() {
		return []config.Peer{p}, false
	}
	q := p
	q.Name = p.Name + V6PeerSuffix
	q.PublicIP = v6.PublicIP
	q.Subnets = []netip.Prefix{v6.Subnet}
	if p.Backend == config.BackendVXLAN {
		q.VNI, q.VtepMAC = vni, v6.VtepMAC
	}
	return []config.Peer{p, q}, true
}

// checkPublicIPv6 accepts the zero Addr (no IPv6 underlay) or a global
// unicast IPv6 address.
func checkPublicIPv6(ip netip.Addr) error {
	if !ip.IsValid() {
		return nil
	}
	if !ip.Is6() || ip.Is4In6() || ip.Zone() != "" || !ip.IsGlobalUnicast() {
		return fmt.Errorf("public IPv6 %v: want a global unicast IPv6 address", ip)
	}
	return nil
}
