package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// flanneld's ways of choosing the underlay interface, mapped onto vxtun's
// --iface (a name) and --public-ip before the node starts, in flanneld's
// order (its LookupExtIface): --iface (a name or one of the interface's
// IPs), else the --iface-regex expressions in turn (each first against
// every interface's IPv4 addresses, then against the names), else the
// interface of the route to --iface-can-reach, else — when nothing else
// names this node (no --public-ip, no node file) — the interface of the
// default route. The public IP is the IP the choice matched (--iface IP,
// a regex's address match, the route's source), else the interface's
// first IPv4 address (left to the node, as for a plain --iface name).

// netIface is one interface as the choice sees it.
type netIface struct {
	Name  string
	Addrs []netip.Addr // IPv4 first-to-last as the kernel lists them; others ignored
}

// ifaceSystem is what the choice reads from the host (iface_linux.go; a
// fake in tests).
type ifaceSystem interface {
	Interfaces() ([]netIface, error)
	// RouteTo returns the interface and the source address of the route
	// to dst.
	RouteTo(dst netip.Addr) (iface string, src netip.Addr, err error)
	// DefaultRoute returns the interface of the IPv4 default route.
	DefaultRoute() (iface string, err error)
}

// pickUnderlay sets o.Iface to a name (and o.PublicIP, when the choice
// matched an address and --public-ip was not given) from flanneld's
// interface flags; it leaves o alone when they are not used.
func (o *runOptions) pickUnderlay(sys ifaceSystem) error {
	ip, isIP := parseIP(o.Iface)
	defaultRoute := o.Iface == "" && len(o.IfaceRegex) == 0 && o.IfaceCanReach == "" && o.PublicIP == "" && o.Node == ""
	if !isIP && (o.Iface != "" || (len(o.IfaceRegex) == 0 && o.IfaceCanReach == "" && !defaultRoute)) {
		return nil // a name, or nothing to choose: the node resolves it
	}
	var name string
	var addr netip.Addr
	var err error
	switch {
	case isIP:
		name, err = ifaceWith(sys, ip)
		addr = ip
	case len(o.IfaceRegex) > 0:
		name, addr, err = ifaceByRegex(sys, o.IfaceRegex)
	case o.IfaceCanReach != "":
		dst, _ := parseIP(o.IfaceCanReach) // checked by parseRunFlags
		if name, addr, err = sys.RouteTo(dst); err != nil {
			err = fmt.Errorf("--iface-can-reach %s: %w", dst, err)
		}
	default:
		if name, err = sys.DefaultRoute(); err != nil {
			err = fmt.Errorf("no --iface, --public-ip or --node, and no default route to take the interface from (%w): give one of them", err)
		}
	}
	if err != nil {
		return err
	}
	o.Iface = name
	if o.PublicIP == "" && addr.Is4() {
		o.PublicIP = addr.String()
	}
	return nil
}

func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

// ifaceWith returns the interface that holds ip.
func ifaceWith(sys ifaceSystem, ip netip.Addr) (string, error) {
	ifs, err := sys.Interfaces()
	if err != nil {
		return "", fmt.Errorf("--iface %s: %w", ip, err)
	}
	for _, ifi := range ifs {
		for _, a := range ifi.Addrs {
			if a == ip {
				return ifi.Name, nil
			}
		}
	}
	return "", fmt.Errorf("--iface %s: no interface has this address", ip)
}

// ifaceByRegex returns the first match of the expressions, each tried
// against the IPv4 addresses of every interface and then against their
// names; addr is the matched address, or invalid for a name match.
func ifaceByRegex(sys ifaceSystem, exprs []string) (name string, addr netip.Addr, err error) {
	ifs, err := sys.Interfaces()
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("--iface-regex: %w", err)
	}
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("--iface-regex %q: %w", e, err) // checked by parseRunFlags
		}
		for _, ifi := range ifs {
			for _, a := range ifi.Addrs {
				if a.Is4() && re.MatchString(a.String()) {
					return ifi.Name, a, nil
				}
			}
		}
		for _, ifi := range ifs {
			if re.MatchString(ifi.Name) {
				return ifi.Name, netip.Addr{}, nil
			}
		}
	}
	return "", netip.Addr{}, fmt.Errorf("--iface-regex: no interface name or IPv4 address matches %s", strings.Join(exprs, " or "))
}
