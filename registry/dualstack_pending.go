package registry

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/vxtun/vxtun/config"
)

// This file stands in for registry/dualstack.go of branch w3-v6u (the one
// conversion of a dual-stack lease or Node into peers, shared by the etcd
// and the Kubernetes source) until that branch is merged; it is deleted
// then. It handles the case without a public IPv6 on this node.

// V6PeerSuffix ends the name of the second peer of a dual-stack Node whose
// IPv6 overlay has an underlay of its own.
const V6PeerSuffix = "/v6"

// V6Side is the IPv6 half of a dual-stack Node (public-ipv6 and
// backend-v6-data annotations, IPv6 pod CIDR).
type V6Side struct {
	// PublicIP is the peer's IPv6 underlay address; zero when it has none:
	// its IPv6 overlay then goes over the IPv4 public IP.
	PublicIP netip.Addr
	// Subnet is the peer's IPv6 overlay subnet; zero for an IPv4-only peer.
	Subnet netip.Prefix
	// VNI and VtepMAC are backend-v6-data's (vxlan); VNI 0 means the IPv4
	// side's.
	VNI     uint32
	VtepMAC net.HardwareAddr
}

// DualStackPeers turns p (the IPv4 peer) and its IPv6 side into peers for
// a node whose public IPv6 is self6. Without a public IPv6 on either side
// the IPv6 subnet is added to p when v6 names p's VTEP (or none); routed6
// is false when the IPv6 subnet is not routed.
func DualStackPeers(p config.Peer, v6 V6Side, self6 netip.Addr) (peers []config.Peer, routed6 bool) {
	if !v6.Subnet.IsValid() {
		return []config.Peer{p}, false
	}
	vni := v6.VNI
	if vni == 0 {
		vni = p.VNI
	}
	if v6.PublicIP.IsValid() || (len(v6.VtepMAC) != 0 && (!bytes.Equal(v6.VtepMAC, p.VtepMAC) || vni != p.VNI)) {
		return []config.Peer{p}, false
	}
	p.Subnets = append(append([]netip.Prefix(nil), p.Subnets...), v6.Subnet)
	return []config.Peer{p}, true
}
