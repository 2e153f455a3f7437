package flannelvxlan

import (
	"net"
	"net/netip"
	"strconv"
)

// Device is a kernel vxlan device as flannel creates it. Zero fields take
// flannel's defaults.
type Device struct {
	Name  string           // default "flannel.1"
	VNI   uint32           // default 1
	Port  uint16           // default 8472
	Local netip.Addr       // underlay address of this node (required)
	Dev   string           // underlay link, default "ul0"
	MAC   net.HardwareAddr // VtepMAC; nil lets the kernel pick one
	// Subnet is this node's own subnet; its first address goes on the
	// device as a /32, as flannel does.
	Subnet netip.Prefix
	// Subnet6 is this node's own IPv6 subnet (dual stack); its first
	// address goes on the device as a /128, as flannel does on
	// flannel-v6.1. Zero: no IPv6 overlay.
	Subnet6 netip.Prefix
	MTU     int      // default 1450 (a 1500 underlay − 50)
	Extra   []string // further vxlan options, e.g. "gbp"
}

// Remote is another node's lease, as flannel programs it on this node.
type Remote struct {
	Subnet   netip.Prefix
	Subnet6  netip.Prefix // the lease's IPv6 subnet, if any
	PublicIP netip.Addr
	VtepMAC  net.HardwareAddr
}

func (d Device) name() string {
	if d.Name == "" {
		return "flannel.1"
	}
	return d.Name
}

// Commands returns the commands that create and configure the device and
// program every remote.
func (d Device) Commands(remotes ...Remote) [][]string {
	vni, port, dev, mtu := d.VNI, d.Port, d.Dev, d.MTU
	if vni == 0 {
		vni = 1
	}
	if port == 0 {
		port = 8472
	}
	if dev == "" {
		dev = "ul0"
	}
	if mtu == 0 {
		mtu = 1450
	}
	add := []string{"ip", "link", "add", d.name()}
	if d.MAC != nil {
		add = append(add, "address", d.MAC.String())
	}
	add = append(add, "type", "vxlan", "id", strconv.FormatUint(uint64(vni), 10),
		"local", d.Local.String(), "dev", dev, "dstport", strconv.Itoa(int(port)), "nolearning")
	add = append(add, d.Extra...)
	cmds := [][]string{
		add,
		{"ip", "link", "set", d.name(), "mtu", strconv.Itoa(mtu)},
	}
	if d.Subnet.IsValid() {
		cmds = append(cmds, []string{"ip", "addr", "add", d.Subnet.Masked().Addr().String() + "/32", "dev", d.name()})
	}
	if d.Subnet6.IsValid() {
		cmds = append(cmds, []string{"ip", "-6", "addr", "add", d.Subnet6.Masked().Addr().String() + "/128", "dev", d.name(), "nodad"})
	}
	cmds = append(cmds, []string{"ip", "link", "set", d.name(), "up"})
	for _, r := range remotes {
		cmds = append(cmds, d.RemoteCommands(r)...)
	}
	return cmds
}

// RemoteCommands returns what flannel adds for one remote lease: neigh
// <subnet>.0 lladdr VtepMAC permanent, fdb VtepMAC dst PublicIP self
// permanent, and route <subnet> via <subnet>.0 onlink.
//
// With Subnet6 the same for IPv6: neigh <subnet6 address> lladdr VtepMAC,
// route <subnet6> via it onlink (flannel does this on flannel-v6.1, with
// the lease's PublicIPv6; here the remote's one underlay address carries
// both families).
func (d Device) RemoteCommands(r Remote) [][]string {
	mac := r.VtepMAC.String()
	var cmds [][]string
	for _, sn := range []netip.Prefix{r.Subnet, r.Subnet6} {
		if !sn.IsValid() {
			continue
		}
		gw := sn.Masked().Addr().String()
		cmds = append(cmds,
			[]string{"ip", "neigh", "replace", gw, "lladdr", mac, "dev", d.name(), "nud", "permanent"},
			[]string{"ip", "route", "replace", sn.Masked().String(), "via", gw, "dev", d.name(), "onlink"})
	}
	fdb := []string{"bridge", "fdb", "replace", mac, "dev", d.name(), "dst", r.PublicIP.String(), "self", "permanent"}
	if len(cmds) == 0 {
		return [][]string{fdb}
	}
	return append([][]string{cmds[0], fdb}, cmds[1:]...)
}
