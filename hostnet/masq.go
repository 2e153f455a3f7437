package hostnet

import (
	"fmt"
	"net/netip"
)

// MasqNet is the masquerade policy of one address family (flanneld's
// --ip-masq): Network is the pod network (net-conf's Network or
// IPv6Network), Subnet this node's own pod subnet inside it.
//
// With N = Network and S = Subnet the rules are, in order (after one rule
// that lets packets kube-proxy marked, mark 0x4000/0x4000, pass untouched):
//
//	saddr S  daddr N            return      pod to pod: never rewritten
//	saddr N  daddr S            return      from a pod elsewhere to ours
//	saddr !N daddr S            return      from outside to a local pod (it arrives from another node)
//	saddr N  daddr !multicast   masquerade  a pod leaving the pod network
//	saddr !N daddr N            masquerade  the host into the overlay
//
// "masquerade" has fully random source ports (--random-fully); multicast
// is 224.0.0.0/4 or ff00::/8.
type MasqNet struct {
	Network netip.Prefix
	Subnet  netip.Prefix
}

// check validates m and returns it with both prefixes masked.
func (m MasqNet) check() (MasqNet, error) {
	if !m.Network.IsValid() || !m.Subnet.IsValid() {
		return m, fmt.Errorf("masquerade: network %v and subnet %v must both be valid", m.Network, m.Subnet)
	}
	m.Network, m.Subnet = m.Network.Masked(), m.Subnet.Masked()
	if m.Network.Addr().Is4() != m.Subnet.Addr().Is4() {
		return m, fmt.Errorf("masquerade: network %s and subnet %s are of different families", m.Network, m.Subnet)
	}
	if m.Subnet.Bits() < m.Network.Bits() || !m.Network.Contains(m.Subnet.Addr()) {
		return m, fmt.Errorf("masquerade: subnet %s is outside the network %s", m.Subnet, m.Network)
	}
	return m, nil
}

// CheckMasqNets validates a masquerade policy as SetMasquerade does: valid,
// masked prefixes, a subnet inside its network, at most one entry per
// address family. It returns the masked entries.
func CheckMasqNets(nets []MasqNet) ([]MasqNet, error) {
	out := make([]MasqNet, 0, len(nets))
	var seen4, seen6 bool
	for _, m := range nets {
		m, err := m.check()
		if err != nil {
			return nil, err
		}
		seen := &seen6
		if m.Network.Addr().Is4() {
			seen = &seen4
		}
		if *seen {
			return nil, fmt.Errorf("masquerade: more than one %s network", family(m.Network))
		}
		*seen = true
		out = append(out, m)
	}
	return out, nil
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// String is the policy in the words of Changes.
func (m MasqNet) String() string { return fmt.Sprintf("%s (own %s)", m.Network, m.Subnet) }
