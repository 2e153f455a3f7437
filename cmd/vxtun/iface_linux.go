package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hostIfaces is the ifaceSystem of the calling thread's namespace.
type hostIfaces struct{}

func (hostIfaces) Interfaces() ([]netIface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]netIface, 0, len(ifs))
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
		}
		n := netIface{Name: ifi.Name}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					n.Addrs = append(n.Addrs, ip.Unmap())
				}
			}
		}
		out = append(out, n)
	}
	return out, nil
}

func (hostIfaces) RouteTo(dst netip.Addr) (string, netip.Addr, error) {
	rs, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("route lookup: %w", err)
	}
	if len(rs) == 0 || rs[0].LinkIndex == 0 {
		return "", netip.Addr{}, errors.New("no route")
	}
	l, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("route's link %d: %w", rs[0].LinkIndex, err)
	}
	src, _ := netip.AddrFromSlice(rs[0].Src)
	return l.Attrs().Name, src.Unmap(), nil
}

func (hostIfaces) DefaultRoute() (string, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	for _, r := range rs {
		if (r.Dst == nil || (r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask))) && r.LinkIndex > 0 {
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("default route's link %d: %w", r.LinkIndex, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("none in the main table")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}
