package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// ErrNoSuchLink is wrapped by LinkStats when the link is gone.
var ErrNoSuchLink = errors.New("no such link")

// ErrLinkExists is returned by AddVXLAN when a link of another type than
// vxlan has the device's name: vxtun does not delete what is not a vxlan
// device.
var ErrLinkExists = errors.New("a link of another type has the name")

// VXLAN is a kernel vxlan device as flanneld creates flannel.<VNI>: one
// VNI, outer source address Local, outer packets leave through Dev, UDP
// port Port (destination and listening), no learning, the node's VtepMAC
// as its address, <own subnet>.0/32 on it.
type VXLAN struct {
	Name  string           // e.g. "flannel.1"
	VNI   uint32           // 1 .. 2^24-1
	Local netip.Addr       // outer source address: the node's public IP; invalid leaves it to the routing table
	Dev   string           // underlay link (the kernel's "dev"); "" leaves it to the routing table
	Port  uint16           // UDP port (the kernel's "dstport")
	MAC   net.HardwareAddr // the device's address: the node's VtepMAC
	MTU   int              // 0 leaves the kernel's choice (underlay MTU − 50)
	GBP   bool             // VXLAN group policy extension (net-conf's Backend.GBP)
	Addrs []netip.Prefix   // e.g. <own subnet>.0/32
	// DisableIPv6 turns IPv6 off on the device (no IPv6 overlay: no
	// router solicitations or MLD reports that could only be dropped).
	DisableIPv6 bool
}

// check validates d before anything is changed.
func (d VXLAN) check() error {
	switch {
	case d.Name == "":
		return errors.New("no device name")
	case d.VNI == 0 || d.VNI >= 1<<24:
		return fmt.Errorf("VNI %d is not in 1..16777215", d.VNI)
	case d.Port == 0:
		return errors.New("no UDP port")
	case len(d.MAC) != 6:
		return fmt.Errorf("MAC %v is not a 6-byte MAC", d.MAC)
	case d.MTU < 0:
		return fmt.Errorf("MTU %d is negative", d.MTU)
	}
	for _, a := range d.Addrs {
		if !a.IsValid() {
			return fmt.Errorf("invalid address %v", a)
		}
	}
	return nil
}

// String is the device in ip(8)'s words, for Changes and logs.
func (d VXLAN) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vxlan %s id %d", d.Name, d.VNI)
	if d.Local.IsValid() {
		fmt.Fprintf(&b, " local %s", d.Local)
	}
	if d.Dev != "" {
		fmt.Fprintf(&b, " dev %s", d.Dev)
	}
	fmt.Fprintf(&b, " dstport %d nolearning", d.Port)
	if d.GBP {
		b.WriteString(" gbp")
	}
	fmt.Fprintf(&b, " address %s", d.MAC)
	if d.MTU > 0 {
		fmt.Fprintf(&b, " mtu %d", d.MTU)
	}
	for _, a := range d.Addrs {
		fmt.Fprintf(&b, " addr %s", a)
	}
	return b.String()
}

// VXLANPeer is what one remote node needs on a vxlan device, as flanneld
// programs a remote lease: per IPv4 subnet a permanent neighbour entry
// <subnet>.0 lladdr MAC and a route <subnet> via <subnet>.0 onlink, and
// one permanent fdb entry MAC dst PublicIP.
type VXLANPeer struct {
	PublicIP netip.Addr
	MAC      net.HardwareAddr
	Subnets  []netip.Prefix // IPv4
}

// VXLANEntries is the state SetVXLANPeers makes for a peer set, one map per
// kind of entry, keyed and valued by their strings.
type VXLANEntries struct {
	Neigh map[netip.Addr]string       // <subnet>.0 → MAC
	FDB   map[string]netip.Addr       // MAC → PublicIP
	Route map[netip.Prefix]netip.Addr // subnet → via <subnet>.0
}

// Entries returns the entries peers need, or an error naming a subnet
// that is not IPv4, a MAC given to two public IPs, or a subnet given
// twice.
func Entries(peers []VXLANPeer) (VXLANEntries, error) {
	e := VXLANEntries{Neigh: make(map[netip.Addr]string, len(peers)), FDB: make(map[string]netip.Addr, len(peers)),
		Route: make(map[netip.Prefix]netip.Addr, len(peers))}
	for _, p := range peers {
		if len(p.MAC) != 6 {
			return e, fmt.Errorf("peer %s: MAC %v is not a 6-byte MAC", p.PublicIP, p.MAC)
		}
		if !p.PublicIP.IsValid() {
			return e, fmt.Errorf("peer %s: no public IP", p.MAC)
		}
		mac := p.MAC.String()
		if ip, ok := e.FDB[mac]; ok && ip != p.PublicIP {
			return e, fmt.Errorf("peer %s: MAC %s is also the MAC of %s", p.PublicIP, mac, ip)
		}
		e.FDB[mac] = p.PublicIP.Unmap()
		for _, s := range p.Subnets {
			s = s.Masked()
			if !s.Addr().Is4() {
				return e, fmt.Errorf("peer %s: subnet %s is not IPv4", p.PublicIP, s)
			}
			if _, ok := e.Route[s]; ok {
				return e, fmt.Errorf("peer %s: subnet %s given twice", p.PublicIP, s)
			}
			e.Route[s] = s.Addr()
			e.Neigh[s.Addr()] = mac
		}
	}
	return e, nil
}

// Lines describes the entries in ip(8)'s and bridge(8)'s words, sorted.
func (e VXLANEntries) Lines(dev string) []string {
	var out []string
	for ip, mac := range e.Neigh {
		out = append(out, fmt.Sprintf("neigh %s lladdr %s dev %s nud permanent", ip, mac, dev))
	}
	for mac, ip := range e.FDB {
		out = append(out, fmt.Sprintf("fdb %s dev %s dst %s self permanent", mac, dev, ip))
	}
	for s, gw := range e.Route {
		out = append(out, fmt.Sprintf("route %s via %s dev %s onlink", s, gw, dev))
	}
	slices.Sort(out)
	return out
}

// LinkStats are a link's kernel counters (ip -s link).
type LinkStats struct {
	RxPackets, RxBytes, TxPackets, TxBytes   uint64
	RxDropped, TxDropped, RxErrors, TxErrors uint64
}
