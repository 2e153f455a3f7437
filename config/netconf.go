package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// DefaultNetConfPath is where flannel (and kube-flannel's ConfigMap) keep
// net-conf.json.
const DefaultNetConfPath = "/etc/kube-flannel/net-conf.json"

// NetConf is flannel's net-conf.json after defaults and validation. Every
// field is filled: SubnetLen, SubnetMin and SubnetMax are computed the way
// flannel's pkg/subnet CheckNetworkConfig computes them when left out.
type NetConf struct {
	// File is the path or name the configuration was read from (for errors).
	File string

	EnableIPv4 bool
	EnableIPv6 bool

	// IPv4 (valid only when EnableIPv4).
	Network   netip.Prefix // whole overlay, e.g. 10.244.0.0/16
	SubnetLen int          // per-node subnet length, e.g. 24
	SubnetMin netip.Addr   // first allocatable subnet (default: second subnet of Network)
	SubnetMax netip.Addr   // last allocatable subnet (default: last subnet of Network)

	// IPv6 (valid only when EnableIPv6).
	IPv6Network   netip.Prefix
	IPv6SubnetLen int
	IPv6SubnetMin netip.Addr
	IPv6SubnetMax netip.Addr

	Backend BackendConf
}

// BackendConf is net-conf.json's "Backend" object.
type BackendConf struct {
	Type Backend // vxlan, udp or host-gw
	// VNI is the VXLAN network identifier (vxlan; default 1, at most 2^24-1).
	VNI uint32
	// Port is the underlay UDP port (default 8472 for vxlan, 8285 for udp).
	Port uint16
	// GBP: flannel sets the VXLAN Group Based Policy extension; vxtun
	// tolerates GBP bits on receive and sends plain VXLAN.
	GBP bool
	// DirectRouting (vxlan): peers whose public IP is on the underlay
	// interface's subnet are reached by a direct kernel route, as with
	// host-gw; the others through VXLAN.
	DirectRouting bool
	// MTU overrides the TUN MTU; 0 derives it from the underlay (TunMTUFor).
	MTU TunMTU
}

// netConfJSON is the file as flannel decodes it. Like flannel we decode
// leniently: unknown keys (EnableNFTables, Learning, MacPrefix, ...) are
// ignored.
type netConfJSON struct {
	EnableIPv4    *bool
	EnableIPv6    bool
	Network       string
	SubnetLen     int
	SubnetMin     string
	SubnetMax     string
	IPv6Network   string
	IPv6SubnetLen int
	IPv6SubnetMin string
	IPv6SubnetMax string
	Networks      json.RawMessage
	IPv6Networks  json.RawMessage
	Backend       *backendJSON
}

type backendJSON struct {
	Type          string
	VNI           *int64
	Port          int64
	GBP           bool
	DirectRouting bool
	MTU           int64
}

// LoadNetConf reads and parses the net-conf.json at path.
func LoadNetConf(path string) (*NetConf, error) {
	data, err := ReadFile(path, MaxConfigFileSize)
	if err != nil {
		return nil, fmt.Errorf("read net-conf: %w", err)
	}
	return ParseNetConf(path, data)
}

// ParseNetConf parses a flannel net-conf.json; file names it in errors.
func ParseNetConf(file string, data []byte) (*NetConf, error) {
	var j netConfJSON
	if err := decodeJSON(file, data, &j, false); err != nil {
		return nil, err
	}
	nc := &NetConf{File: file, EnableIPv4: true, EnableIPv6: j.EnableIPv6}
	if j.EnableIPv4 != nil {
		nc.EnableIPv4 = *j.EnableIPv4
	}
	if !nc.EnableIPv4 && !nc.EnableIPv6 {
		return nil, keyErr(file, "EnableIPv4", "both EnableIPv4 and EnableIPv6 are false")
	}
	if len(j.Networks) > 0 && string(j.Networks) != "null" {
		return nil, keyErr(file, "Networks", "multiple cluster CIDRs are not supported; use Network")
	}
	if len(j.IPv6Networks) > 0 && string(j.IPv6Networks) != "null" {
		return nil, keyErr(file, "IPv6Networks", "multiple cluster CIDRs are not supported; use IPv6Network")
	}
	if nc.EnableIPv4 {
		f := family{bits: 32, key: "", maxLen: 30, minNet: 28, defLen: 24}
		var err error
		nc.Network, nc.SubnetLen, nc.SubnetMin, nc.SubnetMax, err = f.check(file,
			j.Network, j.SubnetLen, j.SubnetMin, j.SubnetMax)
		if err != nil {
			return nil, err
		}
	}
	if nc.EnableIPv6 {
		f := family{bits: 128, key: "IPv6", maxLen: 126, minNet: 124, defLen: 64}
		var err error
		nc.IPv6Network, nc.IPv6SubnetLen, nc.IPv6SubnetMin, nc.IPv6SubnetMax, err = f.check(file,
			j.IPv6Network, j.IPv6SubnetLen, j.IPv6SubnetMin, j.IPv6SubnetMax)
		if err != nil {
			return nil, err
		}
	}
	be, err := parseBackend(file, j.Backend, nc.EnableIPv6)
	if err != nil {
		return nil, err
	}
	nc.Backend = be
	return nc, nil
}

// family holds the per-address-family rules of flannel's CheckNetworkConfig.
type family struct {
	bits   int
	key    string // key prefix: "" or "IPv6"
	maxLen int    // longest allowed SubnetLen
	minNet int    // longest Network prefix flannel accepts without SubnetLen
	defLen int    // default SubnetLen for big networks
}

func (f family) check(file, network string, subnetLen int, smin, smax string) (
	pfx netip.Prefix, slen int, lo, hi netip.Addr, err error) {
	netKey := f.key + "Network"
	lenKey := f.key + "SubnetLen"
	minKey := f.key + "SubnetMin"
	maxKey := f.key + "SubnetMax"
	if network == "" {
		return pfx, 0, lo, hi, keyErr(file, netKey, "missing (required when EnableIPv%d is true)", ipVersion(f.bits))
	}
	pfx, err = parsePrefixFamily(network, f.bits)
	if err != nil {
		return pfx, 0, lo, hi, keyErr(file, netKey, "%v", err)
	}
	// flannel (net.ParseCIDR) silently drops host bits; "10.244.1.0/16"
	// is more likely a typo for a /24 than meant as 10.244.0.0/16.
	if m := pfx.Masked(); m != pfx {
		return pfx, 0, lo, hi, keyErr(file, netKey, "%s has host bits set (did you mean %s?)", pfx, m)
	}

	switch {
	case subnetLen < 0:
		return pfx, 0, lo, hi, keyErr(file, lenKey, "%d is negative", subnetLen)
	case subnetLen > 0:
		if subnetLen > f.maxLen {
			return pfx, 0, lo, hi, keyErr(file, lenKey, "/%d is too long: must be at most /%d", subnetLen, f.maxLen)
		}
		if subnetLen < pfx.Bits()+2 {
			return pfx, 0, lo, hi, keyErr(file, lenKey,
				"/%d in %s leaves room for fewer than four subnets: must be at least /%d",
				subnetLen, pfx, pfx.Bits()+2)
		}
		slen = subnetLen
	default:
		switch {
		case pfx.Bits() > f.minNet:
			return pfx, 0, lo, hi, keyErr(file, netKey, "%s is too small: the shortest useful prefix is /%d", pfx, f.minNet)
		case pfx.Bits() <= f.defLen-2:
			slen = f.defLen
		default:
			slen = pfx.Bits() + 2
		}
	}

	// The first subnet is skipped (its .0 would clash with the network
	// address); the last one is the default maximum.
	if smin == "" {
		lo = nextBlock(pfx.Addr(), slen)
	} else if lo, err = parseBound(pfx, smin, f.bits); err != nil {
		return pfx, 0, lo, hi, keyErr(file, minKey, "%v", err)
	}
	if smax == "" {
		hi = lastBlock(pfx, slen)
	} else if hi, err = parseBound(pfx, smax, f.bits); err != nil {
		return pfx, 0, lo, hi, keyErr(file, maxKey, "%v", err)
	}
	if netip.PrefixFrom(lo, slen).Masked().Addr() != lo {
		return pfx, 0, lo, hi, keyErr(file, minKey, "%s is not on a /%d boundary", lo, slen)
	}
	if netip.PrefixFrom(hi, slen).Masked().Addr() != hi {
		return pfx, 0, lo, hi, keyErr(file, maxKey, "%s is not on a /%d boundary", hi, slen)
	}
	if hi.Less(lo) {
		return pfx, 0, lo, hi, keyErr(file, maxKey, "%s is below %s %s", hi, minKey, lo)
	}
	return pfx, slen, lo, hi, nil
}

func parseBound(network netip.Prefix, s string, bits int) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return a, fmt.Errorf("invalid IP address %q", s)
	}
	a = a.Unmap()
	if a.BitLen() != bits {
		return a, fmt.Errorf("%s is not an IPv%d address", a, ipVersion(bits))
	}
	if !network.Contains(a) {
		return a, fmt.Errorf("%s is outside the network %s", a, network)
	}
	return a, nil
}

func ipVersion(bits int) int {
	if bits == 32 {
		return 4
	}
	return 6
}

// parsePrefixFamily parses a CIDR of the given address family (32 or 128
// bits). IPv4-mapped IPv6 prefixes are not IPv4.
func parsePrefixFamily(s string, bits int) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return p, fmt.Errorf("invalid CIDR %q", s)
	}
	if p.Addr().Zone() != "" {
		return p, fmt.Errorf("invalid CIDR %q: zones are not allowed", s)
	}
	if p.Addr().BitLen() != bits || p.Addr().Is4In6() {
		return p, fmt.Errorf("%q is not an IPv%d CIDR", s, ipVersion(bits))
	}
	return p, nil
}

// nextBlock returns the start of the /slen subnet that follows the one
// starting at a (a + 2^(bits-slen)), wrapping around silently.
func nextBlock(a netip.Addr, slen int) netip.Addr {
	b := a.AsSlice()
	inc := 0x80 >> uint((slen-1)%8)
	for i := (slen - 1) / 8; i >= 0; i-- {
		sum := int(b[i]) + inc
		b[i] = byte(sum)
		if sum < 0x100 {
			break
		}
		inc = 1
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// lastBlock returns the start of the last /slen subnet inside p.
func lastBlock(p netip.Prefix, slen int) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	// Set host bits of p that lie in the subnet-number part (bits p.Bits()..slen-1).
	for bit := p.Bits(); bit < slen; bit++ {
		b[bit/8] |= 0x80 >> uint(bit%8)
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

func parseBackend(file string, j *backendJSON, ipv6 bool) (BackendConf, error) {
	var be BackendConf
	if j == nil {
		// flannel: no Backend object means the udp backend.
		j = &backendJSON{Type: string(BackendUDP)}
	}
	t := strings.ToLower(strings.TrimSpace(j.Type))
	switch Backend(t) {
	case BackendVXLAN, BackendUDP, BackendHostGW:
		be.Type = Backend(t)
	case "":
		return be, keyErr(file, "Backend.Type", "missing (want %q, %q or %q)", BackendVXLAN, BackendUDP, BackendHostGW)
	default:
		return be, &Error{File: file, Key: "Backend.Type",
			Err: fmt.Errorf("%w: %q (vxtun implements %q, %q and %q)", ErrUnsupportedBackend, j.Type, BackendVXLAN, BackendUDP, BackendHostGW)}
	}
	if be.Type == BackendVXLAN {
		be.VNI = DefaultVNI
		if j.VNI != nil {
			if *j.VNI < 0 || *j.VNI > MaxVNI {
				return be, keyErr(file, "Backend.VNI", "%d is out of range 0..%d", *j.VNI, MaxVNI)
			}
			be.VNI = uint32(*j.VNI)
		}
	} else if j.VNI != nil {
		return be, keyErr(file, "Backend.VNI", "only the vxlan backend has a VNI")
	}
	switch {
	case be.Type == BackendHostGW:
		// host-gw sends no UDP; flannel ignores a Port there, so do we.
	case j.Port < 0 || j.Port > 65535:
		return be, keyErr(file, "Backend.Port", "%d is out of range 1..65535", j.Port)
	case j.Port == 0:
		be.Port = DefaultPort(be.Type)
	default:
		be.Port = uint16(j.Port)
	}
	be.GBP = j.GBP
	// flannel's udp and host-gw backends have no DirectRouting (host-gw
	// routes every peer directly anyway): ignored there, as by flannel.
	be.DirectRouting = j.DirectRouting && be.Type == BackendVXLAN
	if j.MTU != 0 && be.Type != BackendHostGW { // host-gw: FLANNEL_MTU is the underlay's, as in flannel
		lo := int64(MinTunMTU)
		if ipv6 {
			lo = MinTunMTUIPv6
		}
		if j.MTU < lo || j.MTU > MaxMTU {
			return be, keyErr(file, "Backend.MTU", "%d is out of range %d..%d", j.MTU, lo, MaxMTU)
		}
		be.MTU = TunMTU(j.MTU)
	}
	return be, nil
}

// DefaultPort returns the underlay UDP port flannel uses for b (0 for
// host-gw, which sends no UDP).
func DefaultPort(b Backend) uint16 {
	switch b {
	case BackendUDP:
		return DefaultUDPPort
	case BackendHostGW:
		return 0
	}
	return DefaultVXLANPort
}

// Contains reports whether the overlay (Network or IPv6Network of an enabled
// family) contains all of p.
func (nc *NetConf) Contains(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return nc.EnableIPv4 && within(p, nc.Network)
	}
	return nc.EnableIPv6 && within(p, nc.IPv6Network)
}

// ContainsAddr reports whether ip lies in the overlay (Network or
// IPv6Network of an enabled family).
func (nc *NetConf) ContainsAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is4() {
		return nc.EnableIPv4 && nc.Network.Contains(ip)
	}
	return nc.EnableIPv6 && nc.IPv6Network.Contains(ip.WithZone(""))
}

// networkOf is the overlay network of ip's family.
func (nc *NetConf) networkOf(ip netip.Addr) netip.Prefix {
	if ip.Unmap().Is4() {
		return nc.Network
	}
	return nc.IPv6Network
}

// CheckUnderlay reports why ip cannot be this node's underlay address in
// this overlay: it lies inside Network or IPv6Network, so packets to it
// would be routed into the overlay and encapsulated again.
func (nc *NetConf) CheckUnderlay(ip netip.Addr) error {
	if ip.IsValid() && nc.ContainsAddr(ip) {
		return fmt.Errorf("underlay address %s is inside the overlay network %s in %s: its packets would loop through the tunnel",
			ip.Unmap(), nc.networkOf(ip), nc.File)
	}
	return nil
}

// parseSubnet parses a node or peer subnet: a canonical CIDR (no host bits).
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
	}
	return p, nil
}

// CheckSubnet reports why p cannot be a node subnet in this overlay: its
// family is disabled or it is not inside Network / IPv6Network.
func (nc *NetConf) CheckSubnet(p netip.Prefix) error {
	if p.Addr().Is4() && !nc.EnableIPv4 {
		return fmt.Errorf("%s is IPv4 but EnableIPv4 is false in %s", p, nc.File)
	}
	if p.Addr().Is6() && !nc.EnableIPv6 {
		return fmt.Errorf("%s is IPv6 but EnableIPv6 is false in %s", p, nc.File)
	}
	if !nc.Contains(p) {
		net := nc.Network
		if p.Addr().Is6() {
			net = nc.IPv6Network
		}
		return fmt.Errorf("%s is outside the network %s", p, net)
	}
	return nil
}

// TunMTU returns the MTU for the TUN device: Backend.MTU when set, otherwise
// the underlay MTU minus the encapsulation overhead.
func (nc *NetConf) TunMTU(wire WireMTU, ipv6Underlay bool) TunMTU {
	if nc.Backend.MTU != 0 {
		return nc.Backend.MTU
	}
	return TunMTUFor(wire, nc.Backend.Type, ipv6Underlay)
}
