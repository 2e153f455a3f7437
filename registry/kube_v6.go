package registry

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Dual stack in Kubernetes mode (EnableIPv6), as flanneld's kube subnet
// manager has it: this node's IPv6 subnet is the IPv6 entry of its
// spec.podCIDRs, inside IPv6Network; a vxlan node publishes
// backend-v6-data and, when it has a public IPv6 (or an operator set
// public-ipv6-overwrite), public-ipv6. Peers' IPv6 sides are read by
// nodePeers and turned into peers by DualStackPeers.

// ownSubnet6 checks our Node's IPv6 pod CIDR v6 (zero: none) against the
// network config and returns the lease's IPv6 subnet: v6 with EnableIPv6,
// else none. Like flanneld, an IPv6 pod CIDR needs an IPv6Network that
// contains it.
func (s *KubeSource) ownSubnet6(n *corev1.Node, v6 netip.Prefix) (netip.Prefix, error) {
	nc := s.opts.NetConf
	switch {
	case !v6.IsValid() && nc.EnableIPv6:
		return netip.Prefix{}, fmt.Errorf("node %q has no IPv6 pod cidr (%v), and EnableIPv6 is set (waiting for the node controller to assign one)",
			n.Name, n.Spec.PodCIDRs)
	case !v6.IsValid():
		return netip.Prefix{}, nil
	case !nc.IPv6Network.IsValid():
		return netip.Prefix{}, fmt.Errorf("subnet %q specified in the PodCIDR, but doesn't exist in the flannel net config of the %q node", v6, n.Name)
	case !inNetwork(nc.IPv6Network, v6):
		return netip.Prefix{}, fmt.Errorf("subnet %q specified in the flannel net config doesn't contain %q IPv6 PodCIDR of the %q node",
			nc.IPv6Network, v6, n.Name)
	case !nc.EnableIPv6:
		return netip.Prefix{}, nil
	}
	return v6, nil
}

// ownV6Side is the IPv6 side our Node publishes: our public IPv6, or the
// operator's public-ipv6-overwrite. The overwrite is honoured only when
// this node has an IPv6 underlay: without one, peers could not reach the
// address it names, and the IPv6 overlay goes over the IPv4 underlay.
func (s *KubeSource) ownV6Side(n *corev1.Node) (*ownV6, error) {
	side := &ownV6{PublicIP: s.opts.PublicIPv6}
	ow := n.Annotations[s.keys.PublicIPv6Overwrite]
	if ow == "" {
		return side, nil
	}
	ip, err := netip.ParseAddr(ow)
	if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
		return nil, fmt.Errorf("node %q: annotation %s %q is not an IPv6 address", n.Name, s.keys.PublicIPv6Overwrite, ow)
	}
	if !side.PublicIP.IsValid() {
		if s.warnedOverwrite6.CompareAndSwap(false, true) {
			s.log.Warn("ignoring the node's public IPv6 overwrite: this node has no IPv6 underlay, its IPv6 overlay goes over IPv4",
				"annotation", s.keys.PublicIPv6Overwrite, "public-ipv6", ow)
		}
		return side, nil
	}
	side.PublicIP = ip
	return side, nil
}
