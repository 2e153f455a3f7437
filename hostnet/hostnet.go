package hostnet

import (
	"errors"
	"net/netip"
)

// ErrClosed is returned by a Host's methods after Close: a change made then
// could never be undone.
var ErrClosed = errors.New("host closed")

// Host is every change vxtun makes to the host's network state. Each
// method makes the host look as asked and records how to undo it; Close
// undoes everything in reverse order. It is modelled on a router that is
// told the desired state, not given a list of commands.
//
// The Linux implementation (New) works in the network namespace of the
// thread that calls it; hostnettest.Fake records state for unit tests.
type Host interface {
	// ConfigureLink gives an existing link (the TUN) its MTU and transmit
	// queue length, adds its addresses, brings it up and adds its routes.
	// Addresses and routes that already exist are accepted and not removed
	// later; Close restores the MTU and queue length it changed (the link
	// stays up). On error what this call changed is undone again.
	ConfigureLink(l Link) error
	// SetSysctl writes value to /proc/sys/<key> (e.g.
	// "net/ipv6/conf/vxtun0/disable_ipv6"); Close restores the old value
	// unless the file is gone (a removed link's settings go with it).
	SetSysctl(key, value string) error
	// SetForwardAccept makes the rules that accept forwarded packets from
	// and to networks (flanneld's --iptables-forward-rules) exactly those
	// for networks; an empty list removes them. The rules go into vxtun's
	// own nftables table and, because an accept there does not override
	// a drop in another base chain, at the top of every filter chain at
	// the forward hook (iptables-nft's FORWARD, native tables), tagged so
	// that a later run replaces rules left by a crashed one. Close removes
	// them.
	SetForwardAccept(networks []netip.Prefix) error
	// Changes describes what is currently applied, one line per change,
	// for logs ("route 198.19.0.0/16 dev vxtun0").
	Changes() []string
	// Close undoes every change in reverse order; a link that has gone
	// away is not an error. Idempotent.
	Close() error

	// SetMasquerade makes the masquerade rules (flanneld's --ip-masq)
	// exactly those for nets (one entry per address family, see MasqNet);
	// an empty list removes them. They go into vxtun's own nftables table,
	// replaced as a whole in one transaction, so a restart leaves no
	// duplicates. Close removes them.
	SetMasquerade(nets []MasqNet) error
	// SetPeerRoutes makes owner's peer routes (host-gw, DirectRouting:
	// "<subnet> via <peer public IP> dev <underlay>") exactly routes:
	// new ones are added, changed ones replaced (also a route of that
	// destination someone else left), missing ones deleted. Each route
	// stands alone: one the kernel refuses (a gateway that is not on-link:
	// "network is unreachable") is left out and reported as a *RouteError
	// in the returned error, the others are applied. Close deletes them.
	// Owners are independent sets in one Host (routes.go).
	SetPeerRoutes(owner string, routes []Route) error
	// OnLink reports whether ip is directly connected through the link
	// dev: the kernel's route lookup for ip goes out of dev without a
	// gateway (flannel's DirectRouting test). It changes nothing.
	OnLink(dev string, ip netip.Addr) (bool, error)
	// AddVXLAN creates the kernel vxlan device d (a vxlan device of that
	// name left by a crashed vxtun or by flanneld is replaced; a link of
	// another type is ErrLinkExists), gives it its addresses and brings it
	// up. Close deletes it, and its neighbour, fdb entries and routes with
	// it. On error nothing of it is left.
	AddVXLAN(d VXLAN) error
	// SetVXLANPeers makes the neighbour entries, fdb entries and routes of
	// the vxlan device called name exactly those of peers (see
	// VXLANPeer): it reads what the device has, then removes what is no
	// longer wanted and adds or replaces what is missing or differs;
	// entries that are already right are not touched. Within a minute of
	// such a full sync it trusts what it applied and programs only the
	// differences from the previous set (a one-peer change of 5 000 peers
	// no longer lists 15 000 entries); after a failure it reads again. On
	// error some of the changes may have been made; calling it again with
	// the previous set restores that.
	SetVXLANPeers(name string, peers []VXLANPeer) error
	// LinkStats returns the kernel's counters of the link called name.
	LinkStats(name string) (LinkStats, error)
	// SetPeerFilter drops UDP datagrams to port whose source is not one
	// of peers, in the kernel before any socket sees them (nftables: sets
	// of peer addresses and an input-hook chain in vxtun's own table).
	// The first call creates the filter; later calls change it to the
	// new set in one transaction that adds and deletes only the
	// addresses that changed, so no datagram from a remaining peer is
	// dropped meanwhile. Close removes it.
	SetPeerFilter(port uint16, peers []netip.Addr) error
	// PeerFilterDrops is the number of datagrams the peer filter dropped
	// (0 while there is no filter).
	PeerFilterDrops() (uint64, error)
}

// Link is the configuration of one link.
type Link struct {
	Name       string
	MTU        int            // 0 leaves the MTU as it is
	TxQueueLen int            // raised to this if lower; 0 leaves it
	Addrs      []netip.Prefix // e.g. <own subnet>.0/32
	Routes     []netip.Prefix // routed through the link, scope link
}
