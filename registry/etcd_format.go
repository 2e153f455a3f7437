package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vxtun/vxtun/config"
)

// flannel's etcd v3 layout, as flanneld reads and writes it:
//
//	<prefix>/config                 net-conf.json
//	<prefix>/subnets/10.244.1.0-24  {"PublicIP":"192.0.2.7","PublicIPv6":null,
//	                                 "BackendType":"vxlan",
//	                                 "BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}
//
// A dual-stack lease (EnableIPv6) is one key holding both subnets,
// "10.244.1.0-24&fc00:0:0:1::-64", whose value adds the IPv6 side:
//
//	{"PublicIP":"192.0.2.7","PublicIPv6":"2001:db8::7","BackendType":"vxlan",
//	 "BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},
//	 "BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}}
//
// (flanneld's LeaseAttrs; its vxlan backend carries the IPv6 overlay on a
// second device, flannel-v6.1, over PublicIPv6). vxtun without a public
// IPv6 carries both families over its IPv4 underlay: it writes PublicIPv6
// null; with one (--public-ipv6) it writes it as flanneld does. Either way
// BackendV6Data names its one VtepMAC. flanneld's host-gw backend writes
//
//	{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}
//
// flanneld's udp backend writes no BackendType and no BackendData, so an
// absent BackendType means "udp".

// Errors of the lease format.
var (
	ErrBadLeaseKey   = errors.New("bad lease key")
	ErrBadLeaseValue = errors.New("bad lease value")
	// ErrUnsupportedBackend is a lease of a backend vxtun does not speak
	// (wireguard, ipip, ...): config's sentinel for the same thing.
	ErrUnsupportedBackend = config.ErrUnsupportedBackend
)

// parseSubnetKey parses the last element of a lease key ("10.244.1.0-24",
// optionally followed by "&<ipv6>-<len>") into the IPv4 subnet. The address
// must be the subnet's network address.
func parseSubnetKey(name string) (netip.Prefix, error) {
	p, _, err := parseSubnetKeys(name)
	return p, err
}

// parseSubnetKeys parses a lease key's last element into its IPv4 subnet
// and, for a dual-stack key ("10.244.1.0-24&fc00::-64"), its IPv6 subnet
// (else the zero Prefix).
func parseSubnetKeys(name string) (netip.Prefix, netip.Prefix, error) {
	v4, v6, dual := strings.Cut(name, "&")
	p, err := parseKeyPrefix(v4)
	if err != nil {
		return netip.Prefix{}, netip.Prefix{}, err
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("%w %q: not an IPv4 subnet", ErrBadLeaseKey, name)
	}
	if !dual {
		return p, netip.Prefix{}, nil
	}
	p6, err := parseKeyPrefix(v6)
	if err != nil {
		return netip.Prefix{}, netip.Prefix{}, err
	}
	if !p6.Addr().Is6() || p6.Addr().Is4In6() {
		return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("%w %q: not an IPv6 subnet after '&'", ErrBadLeaseKey, name)
	}
	return p, p6, nil
}

// parseKeyPrefix parses "<addr>-<len>" with addr the network address.
func parseKeyPrefix(s string) (netip.Prefix, error) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return netip.Prefix{}, fmt.Errorf("%w %q: want <address>-<length>", ErrBadLeaseKey, s)
	}
	addr, err := netip.ParseAddr(s[:i])
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%w %q: bad address", ErrBadLeaseKey, s)
	}
	bits, err := strconv.Atoi(s[i+1:])
	if err != nil || bits < 0 || bits > addr.BitLen() || s[i+1] == '+' || (len(s[i+1:]) > 1 && s[i+1] == '0') {
		return netip.Prefix{}, fmt.Errorf("%w %q: bad prefix length", ErrBadLeaseKey, s)
	}
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%w %q: address is not the subnet's network address", ErrBadLeaseKey, s)
	}
	return p, nil
}

// subnetKey is the inverse of parseSubnetKey for an IPv4 subnet.
func subnetKey(p netip.Prefix) string {
	return p.Addr().String() + "-" + strconv.Itoa(p.Bits())
}

// dualSubnetKey is the inverse of parseSubnetKeys: subnetKey(p), and with
// a valid p6 "&" and the IPv6 subnet as flanneld writes it (lower case,
// RFC 5952: "fc00:0:0:1::-64").
func dualSubnetKey(p, p6 netip.Prefix) string {
	if !p6.IsValid() {
		return subnetKey(p)
	}
	return subnetKey(p) + "&" + p6.Addr().String() + "-" + strconv.Itoa(p6.Bits())
}

// leaseValue is the JSON of a lease value. Field order and names are
// flannel's (pkg/lease LeaseAttrs); PublicIPv6 is always written, as null
// when unset, like flanneld does.
type leaseValue struct {
	PublicIP      string
	PublicIPv6    *string
	BackendType   string          `json:",omitempty"`
	BackendData   json.RawMessage `json:",omitempty"`
	BackendV6Data json.RawMessage `json:",omitempty"`
}

// vxlanData is flannel's vxlan BackendData.
type vxlanData struct {
	VNI     uint32
	VtepMAC string
}

// leaseAttrs is a decoded, validated lease value.
type leaseAttrs struct {
	PublicIP netip.Addr
	Backend  config.Backend
	VNI      uint32           // vxlan; 0 when the lease does not say
	VtepMAC  net.HardwareAddr // vxlan

	// The IPv6 side of a dual-stack lease (leaseV6).
	V6 *leaseV6
}

// leaseV6 is the IPv6 side of a lease value: PublicIPv6 (zero when null:
// the IPv6 overlay goes over PublicIP, as vxtun writes it) and, for vxlan,
// BackendV6Data.
type leaseV6 struct {
	PublicIP netip.Addr
	VNI      uint32
	VtepMAC  net.HardwareAddr
}

// encodeLeaseValue returns exactly what flanneld writes for a node with the
// given public IPv4 address: for vxlan with BackendType and BackendData, for
// host-gw with BackendType only, for udp without either.
func encodeLeaseValue(a leaseAttrs) ([]byte, error) {
	if !a.PublicIP.Is4() {
		return nil, fmt.Errorf("encode lease: public IP %v is not IPv4", a.PublicIP)
	}
	v := leaseValue{PublicIP: a.PublicIP.String()}
	if a.V6 != nil && a.V6.PublicIP.IsValid() {
		if !a.V6.PublicIP.Is6() || a.V6.PublicIP.Is4In6() {
			return nil, fmt.Errorf("encode lease: PublicIPv6 %v is not IPv6", a.V6.PublicIP)
		}
		s := a.V6.PublicIP.String()
		v.PublicIPv6 = &s
	}
	switch a.Backend {
	case config.BackendUDP:
	case config.BackendVXLAN:
		if err := config.CheckVtepMAC(a.VtepMAC); err != nil {
			return nil, fmt.Errorf("encode lease: VtepMAC: %w", err)
		}
		if a.VNI > config.MaxVNI {
			return nil, fmt.Errorf("encode lease: VNI %d out of range", a.VNI)
		}
		data, err := json.Marshal(vxlanData{VNI: a.VNI, VtepMAC: a.VtepMAC.String()})
		if err != nil {
			return nil, fmt.Errorf("encode lease: %w", err)
		}
		v.BackendType = string(config.BackendVXLAN)
		v.BackendData = data
		if a.V6 != nil {
			if err := config.CheckVtepMAC(a.V6.VtepMAC); err != nil {
				return nil, fmt.Errorf("encode lease: BackendV6Data VtepMAC: %w", err)
			}
			if v.BackendV6Data, err = json.Marshal(vxlanData{VNI: a.V6.VNI, VtepMAC: a.V6.VtepMAC.String()}); err != nil {
				return nil, fmt.Errorf("encode lease: %w", err)
			}
		}
	case config.BackendHostGW:
		// flanneld's host-gw backend: BackendType, no BackendData.
		v.BackendType = string(config.BackendHostGW)
	default:
		return nil, fmt.Errorf("encode lease: %w: %q", ErrUnsupportedBackend, a.Backend)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode lease: %w", err)
	}
	return b, nil
}

// decodeLeaseValue parses and validates a lease value. A lease without
// BackendType is a flannel udp-backend lease.
func decodeLeaseValue(b []byte) (leaseAttrs, error) {
	var v leaseValue
	if err := json.Unmarshal(b, &v); err != nil {
		return leaseAttrs{}, fmt.Errorf("%w: %v", ErrBadLeaseValue, err)
	}
	ip, err := netip.ParseAddr(v.PublicIP)
	if err != nil || !ip.Is4() || ip.IsUnspecified() || ip.IsMulticast() {
		return leaseAttrs{}, fmt.Errorf("%w: PublicIP %q is not a unicast IPv4 address", ErrBadLeaseValue, v.PublicIP)
	}
	a := leaseAttrs{PublicIP: ip}
	if v.PublicIPv6 != nil {
		ip6, err := netip.ParseAddr(*v.PublicIPv6)
		if err != nil || !ip6.Is6() || ip6.Is4In6() || ip6.Zone() != "" || ip6.IsUnspecified() || ip6.IsMulticast() {
			return leaseAttrs{}, fmt.Errorf("%w: PublicIPv6 %q is not a unicast IPv6 address", ErrBadLeaseValue, *v.PublicIPv6)
		}
		a.V6 = &leaseV6{PublicIP: ip6}
	}
	switch v.BackendType {
	case "", string(config.BackendUDP):
		a.Backend = config.BackendUDP
	case string(config.BackendVXLAN):
		a.Backend = config.BackendVXLAN
		var d vxlanData
		if len(v.BackendData) == 0 || bytes.Equal(v.BackendData, []byte("null")) {
			return leaseAttrs{}, fmt.Errorf("%w: vxlan lease without BackendData", ErrBadLeaseValue)
		}
		if err := json.Unmarshal(v.BackendData, &d); err != nil {
			return leaseAttrs{}, fmt.Errorf("%w: BackendData: %v", ErrBadLeaseValue, err)
		}
		if d.VNI > config.MaxVNI {
			return leaseAttrs{}, fmt.Errorf("%w: VNI %d out of range", ErrBadLeaseValue, d.VNI)
		}
		mac, err := config.ParseVtepMAC(d.VtepMAC)
		if err != nil {
			return leaseAttrs{}, fmt.Errorf("%w: VtepMAC: %v", ErrBadLeaseValue, err)
		}
		a.VNI = d.VNI
		a.VtepMAC = mac
		if len(v.BackendV6Data) > 0 && !bytes.Equal(v.BackendV6Data, []byte("null")) {
			var d6 vxlanData
			if err := json.Unmarshal(v.BackendV6Data, &d6); err != nil {
				return leaseAttrs{}, fmt.Errorf("%w: BackendV6Data: %v", ErrBadLeaseValue, err)
			}
			if d6.VNI > config.MaxVNI {
				return leaseAttrs{}, fmt.Errorf("%w: BackendV6Data: VNI %d out of range", ErrBadLeaseValue, d6.VNI)
			}
			mac6, err := config.ParseVtepMAC(d6.VtepMAC)
			if err != nil {
				return leaseAttrs{}, fmt.Errorf("%w: BackendV6Data: VtepMAC: %v", ErrBadLeaseValue, err)
			}
			if a.V6 == nil {
				a.V6 = &leaseV6{}
			}
			a.V6.VNI, a.V6.VtepMAC = d6.VNI, mac6
		}
	case string(config.BackendHostGW):
		// flanneld writes no BackendData for host-gw and reads none: any
		// is ignored.
		a.Backend = config.BackendHostGW
	default:
		return leaseAttrs{}, fmt.Errorf("%w: %q", ErrUnsupportedBackend, v.BackendType)
	}
	return a, nil
}
