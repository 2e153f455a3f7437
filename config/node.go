package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
)

// Node defaults.
const (
	DefaultTunName    = "vxtun0"
	DefaultSubnetFile = "/run/flannel/subnet.env"
	MaxWorkers        = 1024
)

// Node is the node settings file (node.json) after defaults and validation.
type Node struct {
	// File is the path or name the settings were read from (for errors).
	File string

	// PublicIP is the underlay address peers send to (flannel's
	// --public-ip). When zero, Iface must be set and its first IPv4
	// address is used (see Underlay).
	PublicIP netip.Addr
	// PublicIPv6 is a second, IPv6 underlay address next to an IPv4
	// PublicIP (flannel's --public-ipv6), used with EnableIPv6: peers with
	// an IPv6 public address are reached over it. When zero and Iface is
	// set, the interface's first global IPv6 address is used, as flanneld
	// does (see ResolveUnderlay6).
	PublicIPv6 netip.Addr
	// Iface is the underlay interface (flannel's --iface); optional when
	// PublicIP is set.
	Iface string
	// Subnet and IPv6Subnet are this node's own overlay subnets in static
	// mode (the etcd registry leases them instead). Zero when unset.
	Subnet     netip.Prefix
	IPv6Subnet netip.Prefix
	// TunName is the TUN device name (default "vxtun0").
	TunName string
	// VtepMAC is an explicit VTEP MAC. VtepMACFile persists a generated one
	// (LoadOrCreateVtepMAC). At most one of them is set.
	VtepMAC     net.HardwareAddr
	VtepMACFile string
	// Workers is the number of forwarding workers (file: 0 = number of CPUs,
	// resolved here, so it is always >= 1).
	Workers int
	// SubnetFile is where flannel's subnet.env is written (default
	// /run/flannel/subnet.env).
	SubnetFile string
	// IPMasq is written to subnet.env as FLANNEL_IPMASQ (flannel's --ip-masq).
	IPMasq bool
	// ListenPort overrides the backend's UDP port for receiving; 0 = the
	// net-conf Backend.Port.
	ListenPort uint16
	// UnderlayMTU overrides the underlay MTU; 0 = read it from the interface.
	UnderlayMTU WireMTU
}

type nodeJSON struct {
	PublicIP    string
	PublicIPv6  string
	Iface       string
	Subnet      string
	IPv6Subnet  string
	TunName     string
	VtepMAC     string
	VtepMACFile string
	Workers     int
	SubnetFile  string
	IPMasq      bool
	ListenPort  int
	UnderlayMTU int
}

// LoadNode reads and parses the node settings file at path.
func LoadNode(path string) (*Node, error) {
	data, err := ReadFile(path, MaxConfigFileSize)
	if err != nil {
		return nil, fmt.Errorf("read node settings: %w", err)
	}
	return ParseNode(path, data)
}

// ParseNode parses a node settings file; file names it in errors. Unknown
// keys are errors. Checks that need net-conf.json are in Validate.
func ParseNode(file string, data []byte) (*Node, error) {
	var j nodeJSON
	if err := decodeJSON(file, data, &j, true); err != nil {
		return nil, err
	}
	n := &Node{File: file, Iface: j.Iface, VtepMACFile: j.VtepMACFile, IPMasq: j.IPMasq}
	if j.PublicIP != "" {
		ip, err := parseUnderlayIP(j.PublicIP)
		if err != nil {
			return nil, keyErr(file, "PublicIP", "%v", err)
		}
		n.PublicIP = ip
	}
	if j.PublicIPv6 != "" {
		ip, err := ParsePublicIPv6(j.PublicIPv6)
		if err != nil {
			return nil, keyErr(file, "PublicIPv6", "%v", err)
		}
		n.PublicIPv6 = ip
	}
	if j.Iface != "" {
		if err := CheckIfName(j.Iface); err != nil {
			return nil, keyErr(file, "Iface", "%v", err)
		}
	}
	if !n.PublicIP.IsValid() && n.Iface == "" {
		return nil, keyErr(file, "PublicIP", "missing: set PublicIP or Iface")
	}
	for _, s := range []struct {
		key  string
		val  string
		dst  *netip.Prefix
		is4  bool
		name string
	}{
		{"Subnet", j.Subnet, &n.Subnet, true, "IPv4"},
		{"IPv6Subnet", j.IPv6Subnet, &n.IPv6Subnet, false, "IPv6"},
	} {
		if s.val == "" {
			continue
		}
		p, err := parseSubnet(s.val)
		if err != nil {
			return nil, keyErr(file, s.key, "%v", err)
		}
		if p.Addr().Is4() != s.is4 {
			return nil, keyErr(file, s.key, "%s is not an %s CIDR", p, s.name)
		}
		*s.dst = p
	}
	n.TunName = DefaultTunName
	if j.TunName != "" {
		if err := CheckIfName(j.TunName); err != nil {
			return nil, keyErr(file, "TunName", "%v", err)
		}
		n.TunName = j.TunName
	}
	if j.VtepMAC != "" {
		if j.VtepMACFile != "" {
			return nil, keyErr(file, "VtepMAC", "set VtepMAC or VtepMACFile, not both")
		}
		mac, err := ParseVtepMAC(j.VtepMAC)
		if err != nil {
			return nil, keyErr(file, "VtepMAC", "%v", err)
		}
		n.VtepMAC = mac
	}
	switch {
	case j.Workers < 0 || j.Workers > MaxWorkers:
		return nil, keyErr(file, "Workers", "%d is out of range 0..%d", j.Workers, MaxWorkers)
	case j.Workers == 0:
		n.Workers = runtime.NumCPU()
	default:
		n.Workers = j.Workers
	}
	n.SubnetFile = DefaultSubnetFile
	if j.SubnetFile != "" {
		n.SubnetFile = j.SubnetFile
	}
	if j.ListenPort < 0 || j.ListenPort > 65535 {
		return nil, keyErr(file, "ListenPort", "%d is out of range 0..65535", j.ListenPort)
	}
	n.ListenPort = uint16(j.ListenPort)
	if j.UnderlayMTU != 0 && (j.UnderlayMTU < MinTunMTU || j.UnderlayMTU > MaxMTU) {
		return nil, keyErr(file, "UnderlayMTU", "%d is out of range %d..%d (0 = from the interface)",
			j.UnderlayMTU, MinTunMTU, MaxMTU)
	}
	n.UnderlayMTU = WireMTU(j.UnderlayMTU)
	return n, nil
}

// Validate checks the node settings against net-conf.json: a PublicIP
// outside the overlay network (NetConf.CheckUnderlay; an address found
// through Iface is the caller's to check), own subnets inside it, a VTEP
// MAC source for vxlan, an MTU that leaves room for the encapsulation.
func (n *Node) Validate(nc *NetConf) error {
	if err := nc.CheckUnderlay(n.PublicIP); err != nil {
		return &Error{File: n.File, Key: "PublicIP", Err: err}
	}
	for _, s := range []struct {
		key string
		p   netip.Prefix
	}{{"Subnet", n.Subnet}, {"IPv6Subnet", n.IPv6Subnet}} {
		if !s.p.IsValid() {
			continue
		}
		if err := nc.CheckSubnet(s.p); err != nil {
			return keyErr(n.File, s.key, "%v", err)
		}
	}
	if nc.Backend.Type == BackendVXLAN && n.VtepMAC == nil && n.VtepMACFile == "" {
		return keyErr(n.File, "VtepMACFile", "missing: the vxlan backend needs VtepMAC or VtepMACFile")
	}
	if n.UnderlayMTU != 0 {
		v6 := n.PublicIP.Is6()
		if need := WireMTUFor(MinTunMTU, nc.Backend.Type, v6); n.UnderlayMTU < need {
			return keyErr(n.File, "UnderlayMTU", "%d leaves no room for %s encapsulation: want at least %d",
				n.UnderlayMTU, nc.Backend.Type, need)
		}
	}
	return nil
}

// OwnSubnets returns the node's static subnets (IPv4 first), if any.
func (n *Node) OwnSubnets() []netip.Prefix {
	var out []netip.Prefix
	if n.Subnet.IsValid() {
		out = append(out, n.Subnet)
	}
	if n.IPv6Subnet.IsValid() {
		out = append(out, n.IPv6Subnet)
	}
	return out
}

// Port returns the UDP port to listen on: ListenPort, or the backend port.
func (n *Node) Port(nc *NetConf) uint16 {
	if n.ListenPort != 0 {
		return n.ListenPort
	}
	return nc.Backend.Port
}

// ResolveVtepMAC returns the explicit VtepMAC, or the one persisted in
// VtepMACFile (created on first use).
func (n *Node) ResolveVtepMAC() (net.HardwareAddr, error) {
	if n.VtepMAC != nil {
		return n.VtepMAC, nil
	}
	if n.VtepMACFile == "" {
		return nil, keyErr(n.File, "VtepMACFile", "missing: set VtepMAC or VtepMACFile")
	}
	return LoadOrCreateVtepMAC(n.VtepMACFile)
}

// Underlay is the resolved underlay: address, interface and wire MTU.
type Underlay struct {
	IP    netip.Addr
	Iface string // "" when PublicIP is on no local interface (e.g. NAT)
	MTU   WireMTU
	// Local reports whether IP is assigned to an interface of this network
	// namespace. When it is not, IP is a NAT address (flanneld's
	// --public-ip) and the dataplane binds the wildcard address.
	Local bool
}

// ErrNoUnderlayMTU is returned by ResolveUnderlay when PublicIP is on no
// local interface and UnderlayMTU is not set.
var ErrNoUnderlayMTU = errors.New("cannot detect the underlay MTU: PublicIP is on no local interface; set Iface or UnderlayMTU")

// ResolveUnderlay looks the underlay up in the current network namespace:
// with Iface, its MTU and (unless PublicIP is set) its first IPv4 address;
// with only PublicIP, the interface holding that address. UnderlayMTU, when
// set, overrides the interface MTU. Local tells whether the address is
// assigned here.
func (n *Node) ResolveUnderlay() (Underlay, error) {
	u := Underlay{IP: n.PublicIP, MTU: n.UnderlayMTU}
	if n.Iface != "" {
		ifi, err := net.InterfaceByName(n.Iface)
		if err != nil {
			// The standard library's error does not name the interface.
			return u, keyErr(n.File, "Iface", "no interface %q in this network namespace (%v)", n.Iface, err)
		}
		u.Iface = ifi.Name
		if u.MTU == 0 {
			u.MTU = WireMTU(ifi.MTU)
		}
		if u.IP.IsValid() {
			holder, err := interfaceWith(u.IP)
			if err != nil {
				return u, err
			}
			u.Local = holder != nil
			return u, nil
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return u, keyErr(n.File, "Iface", "list addresses of %s: %v", ifi.Name, err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
					u.IP, u.Local = ip.Unmap(), true
					return u, nil
				}
			}
		}
		return u, keyErr(n.File, "Iface", "interface %s has no IPv4 address", ifi.Name)
	}
	ifi, err := interfaceWith(u.IP)
	if err != nil {
		return u, err
	}
	if ifi != nil {
		u.Iface, u.Local = ifi.Name, true
		if u.MTU == 0 {
			u.MTU = WireMTU(ifi.MTU)
		}
		return u, nil
	}
	if u.MTU == 0 {
		return u, &Error{File: n.File, Key: "UnderlayMTU", Err: ErrNoUnderlayMTU}
	}
	return u, nil
}

// ParsePublicIPv6 parses a second, IPv6 underlay address (PublicIPv6,
// --public-ipv6): a global unicast IPv6 address without zone.
func ParsePublicIPv6(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if !ip.Is6() || ip.Is4In6() || ip.Zone() != "" || !ip.IsGlobalUnicast() {
		return netip.Addr{}, fmt.Errorf("%s is not a global unicast IPv6 address", ip)
	}
	return ip, nil
}

// ResolveUnderlay6 looks up the second, IPv6 underlay of a node with an
// IPv4 PublicIP and EnableIPv6: PublicIPv6 when set; else, with Iface,
// the interface's first global unicast IPv6 address (flanneld's choice
// for --iface in a dual-stack network); else none (a zero IP). Local tells
// whether the address is assigned in this network namespace (when not, it
// is a NAT address and the dataplane binds the IPv6 wildcard); MTU is
// UnderlayMTU when set, else the MTU of the interface holding the address,
// else 0 (unknown: the caller keeps the IPv4 underlay's).
func (n *Node) ResolveUnderlay6() (Underlay, error) {
	u := Underlay{IP: n.PublicIPv6}
	var ifi *net.Interface
	var err error
	switch {
	case n.PublicIPv6.IsValid():
		if ifi, err = interfaceWith(n.PublicIPv6); err != nil {
			return Underlay{}, err
		}
	case n.Iface == "":
		return Underlay{}, nil
	default:
		if ifi, err = net.InterfaceByName(n.Iface); err != nil {
			return Underlay{}, keyErr(n.File, "Iface", "no interface %q in this network namespace (%v)", n.Iface, err)
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return Underlay{}, keyErr(n.File, "Iface", "list addresses of %s: %v", ifi.Name, err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && !ip.Is4In6() && ip.IsGlobalUnicast() {
					u.IP = ip
					break
				}
			}
		}
		if !u.IP.IsValid() {
			return Underlay{}, nil
		}
	}
	if ifi != nil {
		u.Iface, u.Local, u.MTU = ifi.Name, true, WireMTU(ifi.MTU)
	}
	if n.UnderlayMTU != 0 {
		u.MTU = n.UnderlayMTU
	}
	return u, nil
}

// interfaceWith returns the interface of the current network namespace
// that holds ip, or nil.
func interfaceWith(ip netip.Addr) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if x, ok := netip.AddrFromSlice(ipn.IP); ok && x.Unmap() == ip {
					return &ifs[i], nil
				}
			}
		}
	}
	return nil, nil
}

// parseUnderlayIP parses a peer's or node's underlay address: a unicast,
// specified IPv4 or IPv6 address without zone.
func parseUnderlayIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid IP address %q", s)
	}
	ip = ip.Unmap()
	switch {
	case ip.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s: zones are not supported", ip)
	case ip.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("%s is unspecified", ip)
	case ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, fmt.Errorf("%s is not a unicast address", ip)
	}
	return ip, nil
}

// CheckIfName reports why s cannot name a Linux network interface (at most
// 15 bytes: IFNAMSIZ 16 with the NUL; no '/', ':' or whitespace).
func CheckIfName(s string) error {
	switch {
	case len(s) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", s)
	case s == "." || s == "..":
		return fmt.Errorf("invalid interface name %q", s)
	case strings.ContainsAny(s, "/: \t\n\r\x00"):
		return fmt.Errorf("interface name %q contains '/', ':', a space or a control character", s)
	}
	return nil
}
