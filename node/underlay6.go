package node

import (
	"fmt"
	"net/netip"

	"github.com/vxtun/vxtun/config"
)

// The second, IPv6 underlay (--public-ipv6, node file PublicIPv6, or in
// etcd and Kubernetes mode with --iface the interface's first global IPv6
// address, as flanneld picks it): a node with an IPv4 public IP in a network with EnableIPv6 and the
// vxlan backend reaches peers that publish a PublicIPv6 over IPv6, as
// flanneld's flannel-v6.1 does. The source turns such leases into a second
// peer (registry.DualStackPeers) and the userspace dataplane binds a second
// socket set (dataplane.Config.ListenAddr6); the TUN MTU leaves room for
// the larger IPv6 outer header.

// resolveUnderlay6 sets s.underlay6 from the node settings nd once the
// network config is known.
func (n *Node) resolveUnderlay6(s *settings, nd *config.Node) error {
	if !s.nc.EnableIPv6 || s.nc.Backend.Type != config.BackendVXLAN || !s.underlay.IP.Is4() {
		if nd.PublicIPv6.IsValid() {
			n.log.Warn("ignoring the public IPv6 address: a second, IPv6 underlay needs EnableIPv6, the vxlan backend and an IPv4 public IP",
				"public-ipv6", nd.PublicIPv6, "enable-ipv6", s.nc.EnableIPv6, "backend", s.nc.Backend.Type, "public-ip", s.underlay.IP)
		}
		return nil
	}
	if !nd.PublicIPv6.IsValid() && !s.traits.LeasesSubnets {
		// Static mode: only an explicit public IPv6. Taking --iface's
		// would change the TUN MTU of existing IPv4-underlay setups.
		return nil
	}
	u, err := nd.ResolveUnderlay6()
	if err != nil {
		return err
	}
	if !u.IP.IsValid() {
		return nil
	}
	if err := s.nc.CheckUnderlay(u.IP); err != nil {
		return fmt.Errorf("public IPv6: %w", err)
	}
	s.underlay6, s.local6, s.mtu6 = u.IP, u.Local, u.MTU
	n.log.Info("ipv6 underlay: peers that publish a public IPv6 are reached over it", "public-ipv6", u.IP, "iface", u.Iface, "mtu", int(u.MTU))
	return nil
}

// tunMTU is the TUN MTU: room for the encapsulation on the IPv4 underlay
// and, with a second, IPv6 underlay, for the IPv6 outer header on the
// smaller of the two interfaces' MTUs (the IPv6 one unknown: the IPv4 one).
func (s *settings) tunMTU() config.TunMTU {
	m := s.nc.TunMTU(s.underlay.MTU, s.underlay.IP.Is6() || s.underlay6.IsValid())
	if s.underlay6.IsValid() && s.mtu6 > 0 {
		m = min(m, s.nc.TunMTU(s.mtu6, true))
	}
	return m
}

// listenAddr6 is where the IPv6 underlay's sockets bind: the public IPv6
// when it is assigned here, else the IPv6 wildcard; zero without one.
func (s *settings) listenAddr6() netip.AddrPort {
	switch {
	case !s.underlay6.IsValid():
		return netip.AddrPort{}
	case !s.local6:
		return netip.AddrPortFrom(netip.IPv6Unspecified(), s.port)
	}
	return netip.AddrPortFrom(s.underlay6, s.port)
}
