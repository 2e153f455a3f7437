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
	MTU    int      // default 1450 (a 1500 underlay − 50)
	Extra  []string // further vxlan options, e.g. "gbp"
}

// Remote is another node's lease, as flannel programs it on this node.
type Remote struct {
	Subnet   netip.Prefix
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
		{"ip", "addr", "add", d.Subnet.Masked().Addr().String() + "/32", "dev", d.name()},
		{"ip", "link", "set", d.name(), "up"},
	}
	for _, r := range remotes {
		cmds = append(cmds, d.RemoteCommands(r)...)
	}
	return cmds
}

// RemoteCommands returns what flannel adds for one remote lease: neigh
// <subnet>.0 lladdr VtepMAC permanent, fdb VtepMAC dst PublicIP self
// permanent, and route <subnet> via <subnet>.0 onlink.
func (d Device) RemoteCommands(r Remote) [][]string {
	gw := r.Subnet.Masked().Addr().String()
	mac := r.VtepMAC.String()
	return [][]string{
		{"ip", "neigh", "replace", gw, "lladdr", mac, "dev", d.name(), "nud", "permanent"},
		{"bridge", "fdb", "replace", mac, "dev", d.name(), "dst", r.PublicIP.String(), "self", "permanent"},
		{"ip", "route", "replace", r.Subnet.Masked().String(), "via", gw, "dev", d.name(), "onlink"},
	}
}
