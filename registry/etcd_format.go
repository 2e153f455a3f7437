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
// flanneld's host-gw backend writes
//
//	{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}
//
// A dual-stack flanneld names its lease "10.244.1.0-24&fc00:0:0:1::-64"; the
// etcd source uses the IPv4 part and ignores the IPv6 one. flanneld's udp
// backend writes no BackendType and no BackendData, so an absent
// BackendType means "udp".

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
	v4, v6, dual := strings.Cut(name, "&")
	p, err := parseKeyPrefix(v4)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%w %q: not an IPv4 subnet", ErrBadLeaseKey, name)
	}
	if dual {
		p6, err := parseKeyPrefix(v6)
		if err != nil {
			return netip.Prefix{}, err
		}
		if !p6.Addr().Is6() || p6.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%w %q: not an IPv6 subnet after '&'", ErrBadLeaseKey, name)
		}
	}
	return p, nil
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

// leaseValue is the JSON of a lease value. Field order and names are
// flannel's (pkg/lease LeaseAttrs); PublicIPv6 is always written, as null
// when unset, like flanneld does.
type leaseValue struct {
	PublicIP    string
	PublicIPv6  *string
	BackendType string          `json:",omitempty"`
	BackendData json.RawMessage `json:",omitempty"`
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
}

// encodeLeaseValue returns exactly what flanneld writes for a node with the
// given public IPv4 address: for vxlan with BackendType and BackendData, for
// host-gw with BackendType only, for udp without either.
func encodeLeaseValue(a leaseAttrs) ([]byte, error) {
	if !a.PublicIP.Is4() {
		return nil, fmt.Errorf("encode lease: public IP %v is not IPv4", a.PublicIP)
	}
	v := leaseValue{PublicIP: a.PublicIP.String()}
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
	case string(config.BackendHostGW):
		// flanneld writes no BackendData for host-gw and reads none: any
		// is ignored.
		a.Backend = config.BackendHostGW
	default:
		return leaseAttrs{}, fmt.Errorf("%w: %q", ErrUnsupportedBackend, v.BackendType)
	}
	return a, nil
}
