package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SubnetEnv is the content of flannel's /run/flannel/subnet.env, which the
// flannel CNI plugin reads to configure pods.
type SubnetEnv struct {
	// Network and Subnet are the IPv4 overlay and this node's IPv4 subnet
	// (canonical, e.g. 10.244.1.0/24). Both zero when IPv4 is disabled.
	Network netip.Prefix
	Subnet  netip.Prefix
	// IPv6Network and IPv6Subnet likewise for IPv6; zero when disabled.
	IPv6Network netip.Prefix
	IPv6Subnet  netip.Prefix
	// MTU is the pod-facing MTU: the TUN MTU.
	MTU    TunMTU
	IPMasq bool
}

// SubnetEnvFor builds the subnet.env content of a node: its own subnets
// (n.Subnet, n.IPv6Subnet, or those leased from etcd), the overlay networks
// of nc, mtu and n.IPMasq.
func SubnetEnvFor(nc *NetConf, n *Node, subnet, ipv6Subnet netip.Prefix, mtu TunMTU) SubnetEnv {
	e := SubnetEnv{MTU: mtu, IPMasq: n.IPMasq}
	if nc.EnableIPv4 {
		e.Network, e.Subnet = nc.Network, subnet
	}
	if nc.EnableIPv6 {
		e.IPv6Network, e.IPv6Subnet = nc.IPv6Network, ipv6Subnet
	}
	return e
}

// Marshal returns the file content exactly as flannel's WriteSubnetFile
// writes it: FLANNEL_NETWORK, FLANNEL_SUBNET (IPv4 enabled), then
// FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET (IPv6 enabled), then FLANNEL_MTU
// and FLANNEL_IPMASQ, one KEY=value per line. The subnets are written as
// their first usable address with the subnet's length (10.244.1.1/24).
func (e SubnetEnv) Marshal() []byte {
	var b bytes.Buffer
	if e.Network.IsValid() {
		fmt.Fprintf(&b, "FLANNEL_NETWORK=%s\n", e.Network)
		fmt.Fprintf(&b, "FLANNEL_SUBNET=%s\n", firstUsable(e.Subnet))
	}
	if e.IPv6Network.IsValid() {
		fmt.Fprintf(&b, "FLANNEL_IPV6_NETWORK=%s\n", e.IPv6Network)
		fmt.Fprintf(&b, "FLANNEL_IPV6_SUBNET=%s\n", firstUsable(e.IPv6Subnet))
	}
	fmt.Fprintf(&b, "FLANNEL_MTU=%d\n", e.MTU)
	fmt.Fprintf(&b, "FLANNEL_IPMASQ=%t\n", e.IPMasq)
	return b.Bytes()
}

// firstUsable returns p's network address plus one, with p's length.
func firstUsable(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	return netip.PrefixFrom(p.Masked().Addr().Next(), p.Bits())
}

// WriteSubnetEnv writes e to path atomically (temp file in the same
// directory, fsync, rename), creating the parent directory.
func WriteSubnetEnv(path string, e SubnetEnv) error {
	if e.Network.IsValid() != e.Subnet.IsValid() {
		return fmt.Errorf("write subnet.env: IPv4 network %v and subnet %v must both be set or both unset", e.Network, e.Subnet)
	}
	if e.IPv6Network.IsValid() != e.IPv6Subnet.IsValid() {
		return fmt.Errorf("write subnet.env: IPv6 network %v and subnet %v must both be set or both unset", e.IPv6Network, e.IPv6Subnet)
	}
	if !e.Network.IsValid() && !e.IPv6Network.IsValid() {
		return fmt.Errorf("write subnet.env: no network")
	}
	for _, p := range []netip.Prefix{e.Subnet, e.IPv6Subnet} {
		if err := checkEnvSubnet(p); p.IsValid() && err != nil {
			return fmt.Errorf("write subnet.env: %w", err)
		}
	}
	if err := writeFileAtomic(path, e.Marshal()); err != nil {
		return fmt.Errorf("write subnet.env: %w", err)
	}
	return nil
}

// ReadSubnetEnv reads a subnet.env written by vxtun or flannel.
func ReadSubnetEnv(path string) (SubnetEnv, error) {
	data, err := ReadFile(path, MaxConfigFileSize)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("read subnet.env: %w", err)
	}
	return ParseSubnetEnv(path, data)
}

// ParseSubnetEnv parses subnet.env content the way the flannel CNI plugin
// does: KEY=value lines, blank lines and '#' comments skipped, unknown keys
// ignored. Subnets come back canonical (FLANNEL_SUBNET=10.244.1.1/24 gives
// Subnet 10.244.1.0/24). FLANNEL_MTU and FLANNEL_IPMASQ are required, as is
// FLANNEL_NETWORK with FLANNEL_SUBNET or the IPv6 pair.
func ParseSubnetEnv(file string, data []byte) (SubnetEnv, error) {
	var e SubnetEnv
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return e, &Error{File: file, Line: line, Col: 1, Err: fmt.Errorf("want KEY=value, got %q", text)}
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		lineErr := func(format string, args ...any) error {
			return &Error{File: file, Line: line, Col: len(k) + 2, Key: k, Err: fmt.Errorf(format, args...)}
		}
		if prev, dup := seen[k]; dup {
			return e, lineErr("duplicate key (first on line %d)", prev)
		}
		seen[k] = line
		var err error
		switch k {
		case "FLANNEL_NETWORK":
			e.Network, err = parseEnvPrefix(v, 32)
		case "FLANNEL_SUBNET":
			e.Subnet, err = parseEnvSubnet(v, 32)
		case "FLANNEL_IPV6_NETWORK":
			e.IPv6Network, err = parseEnvPrefix(v, 128)
		case "FLANNEL_IPV6_SUBNET":
			e.IPv6Subnet, err = parseEnvSubnet(v, 128)
		case "FLANNEL_MTU":
			var m int
			m, err = strconv.Atoi(v)
			if err == nil && (m < MinTunMTU || m > MaxMTU) {
				err = fmt.Errorf("%d is out of range %d..%d", m, MinTunMTU, MaxMTU)
			} else if err != nil {
				err = fmt.Errorf("invalid MTU %q", v)
			}
			e.MTU = TunMTU(m)
		case "FLANNEL_IPMASQ":
			e.IPMasq, err = strconv.ParseBool(v)
			if err != nil {
				err = fmt.Errorf("invalid boolean %q", v)
			}
		}
		if err != nil {
			return e, lineErr("%v", err)
		}
	}
	if err := sc.Err(); err != nil {
		return e, &Error{File: file, Line: line + 1, Col: 1, Err: err}
	}
	for _, k := range []string{"FLANNEL_MTU", "FLANNEL_IPMASQ"} {
		if _, ok := seen[k]; !ok {
			return e, keyErr(file, k, "missing")
		}
	}
	pairs := [][2]string{{"FLANNEL_NETWORK", "FLANNEL_SUBNET"}, {"FLANNEL_IPV6_NETWORK", "FLANNEL_IPV6_SUBNET"}}
	for _, p := range pairs {
		_, a := seen[p[0]]
		_, b := seen[p[1]]
		if a && !b {
			return e, keyErr(file, p[1], "missing (%s is set)", p[0])
		}
		if b && !a {
			return e, keyErr(file, p[0], "missing (%s is set)", p[1])
		}
	}
	if !e.Network.IsValid() && !e.IPv6Network.IsValid() {
		return e, keyErr(file, "FLANNEL_NETWORK", "missing (and no FLANNEL_IPV6_NETWORK)")
	}
	if e.Network.IsValid() && !within(e.Subnet, e.Network) {
		return e, keyErr(file, "FLANNEL_SUBNET", "%s is outside FLANNEL_NETWORK %s", e.Subnet, e.Network)
	}
	if e.IPv6Network.IsValid() && !within(e.IPv6Subnet, e.IPv6Network) {
		return e, keyErr(file, "FLANNEL_IPV6_SUBNET", "%s is outside FLANNEL_IPV6_NETWORK %s", e.IPv6Subnet, e.IPv6Network)
	}
	return e, nil
}

// parseEnvPrefix parses a CIDR of one family; host bits are dropped as Go's
// net.ParseCIDR (used by the CNI plugin) drops them.
func parseEnvPrefix(v string, bits int) (netip.Prefix, error) {
	p, err := parsePrefixFamily(v, bits)
	if err != nil {
		return p, err
	}
	return p.Masked(), nil
}

// parseEnvSubnet is parseEnvPrefix for a node subnet (checkEnvSubnet).
func parseEnvSubnet(v string, bits int) (netip.Prefix, error) {
	p, err := parseEnvPrefix(v, bits)
	if err == nil {
		err = checkEnvSubnet(p)
	}
	return p, err
}

// within reports whether all of p lies inside network.
func within(p, network netip.Prefix) bool {
	return p.Bits() >= network.Bits() && network.Contains(p.Addr())
}

// checkEnvSubnet rejects node subnets too small to hold the gateway address
// flannel writes (first usable IP) and a pod: longer than /30 (/126), the
// limit net-conf.json's SubnetLen has too.
func checkEnvSubnet(p netip.Prefix) error {
	if p.Bits() > p.Addr().BitLen()-2 {
		return fmt.Errorf("subnet %s is longer than /%d", p, p.Addr().BitLen()-2)
	}
	return nil
}
