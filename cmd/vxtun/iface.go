package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// flanneld's ways of choosing the underlay interface, mapped onto vxtun's
// --iface (a name) and --public-ip before the node starts, in flanneld's
// order (its LookupExtIface): --iface (a name or one of the interface's
// IPs; given more than once, the first that exists), else the --iface-regex expressions in turn (each first against
// every interface's IPv4 addresses, then against the names), else the
// interface of the route to --iface-can-reach, else — when nothing else
// names this node (no --public-ip, no node file) — the interface of the
// default route. The public IP is the IP the choice matched (--iface IP,
// a regex's address match, the route's source), else the interface's
// first IPv4 address (left to the node, as for a plain --iface name).

// netIface is one interface as the choice sees it.
type netIface struct {
	Name  string
	Addrs []netip.Addr // in the kernel's order, IPv4 and IPv6 (regexes match only the IPv4 ones)
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
	if _, isIP := parseIP(o.Iface); len(o.Ifaces) > 1 || isIP {
		return o.pickIface(sys)
	}
	if o.Iface != "" {
		return nil // one name: the node resolves it
	}
	var name string
	var addr netip.Addr
	var err error
	switch {
	case len(o.IfaceRegex) > 0:
		name, addr, err = ifaceByRegex(sys, o.IfaceRegex)
	case o.IfaceCanReach != "":
		dst, _ := parseIP(o.IfaceCanReach) // checked by parseRunFlags
		if name, addr, err = sys.RouteTo(dst); err != nil {
			err = fmt.Errorf("--iface-can-reach %s: %w", dst, err)
		}
	case o.PublicIP == "" && o.Node == "":
		if name, err = sys.DefaultRoute(); err != nil {
			err = fmt.Errorf("no --iface, --public-ip or --node, and no default route to take the interface from (%w): give one of them", err)
		}
	default:
		return nil // --public-ip or the node file names the node
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

// pickIface takes the first --iface value that names an interface or one
// of its addresses (that address is then the public IP, unless --public-ip
// was given).
func (o *runOptions) pickIface(sys ifaceSystem) error {
	ifs, err := sys.Interfaces()
	if err != nil {
		return fmt.Errorf("--iface: %w", err)
	}
	for _, v := range o.Ifaces {
		ip, isIP := parseIP(v)
		for _, ifi := range ifs {
			if !isIP && ifi.Name == v {
				o.Iface = v
				return nil
			}
			if isIP && slices.Contains(ifi.Addrs, ip) {
				o.Iface = ifi.Name
				if o.PublicIP == "" && ip.Is4() {
					o.PublicIP = ip.String()
				}
				return nil
			}
		}
	}
	return fmt.Errorf("--iface: none of %s is an interface or an interface's address here", strings.Join(o.Ifaces, ", "))
}

func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
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
