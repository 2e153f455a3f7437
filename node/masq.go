package node

import (
	"fmt"

	"github.com/vxtun/vxtun/hostnet"
)

// masqNets is the masquerade policy of the node (flanneld's --ip-masq):
// one entry per enabled address family that has an own subnet; none when
// IPMasq is off.
func (s *settings) masqNets() []hostnet.MasqNet {
	if !s.node.IPMasq {
		return nil
	}
	var nets []hostnet.MasqNet
	if s.nc.EnableIPv4 && s.subnet.IsValid() {
		nets = append(nets, hostnet.MasqNet{Network: s.nc.Network, Subnet: s.subnet})
	}
	if s.nc.EnableIPv6 && s.subnet6.IsValid() {
		nets = append(nets, hostnet.MasqNet{Network: s.nc.IPv6Network, Subnet: s.subnet6})
	}
	return nets
}

// applyMasq installs (or, after a lease move, replaces) the masquerade
// rules for the current subnets. The rules belong to the node's host, not
// to a dataplane: they stay across dataplane restarts and go when the node
// stops.
func (n *Node) applyMasq(h hostnet.Host, s *settings) error {
	if h == nil || !s.node.IPMasq {
		return nil
	}
	nets := s.masqNets()
	if err := h.SetMasquerade(nets); err != nil {
		return fmt.Errorf("ip masquerade: %w", err)
	}
	n.log.Info("masquerading pod traffic that leaves the pod network", "rules", fmt.Sprint(nets))
	return nil
}
