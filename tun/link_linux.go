package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is what Configure added to a link, for Unconfigure.
type Link struct {
	Name   string
	Addrs  []netip.Prefix
	Routes []netip.Prefix
}

// TxQueueLen is the transmit queue length Configure gives the link (the
// kernel's default for a TUN is 500). It is the ring of packets the kernel
// holds for each queue until Read takes them: when it is full the kernel
// drops (counted as the link's TX dropped). vxtun shares CPUs with the
// applications whose packets it carries, so the ring has to absorb what they
// send while the reader waits for a CPU; 500 packets are ~1 ms of 64-byte
// datagrams at the rates this machine reaches (bench: 32 % loss at 195 kpps
// with 500 on a busy machine, 0.6 % with more). The ring counts packets, not
// bytes: a stalled reader can hold up to TxQueueLen super-packets (64 KiB
// each) of kernel memory per queue; TCP's window keeps its share far lower.
const TxQueueLen = 4096

// Configure sets the link's MTU and transmit queue length (TxQueueLen, if
// the link's is lower), adds addrs (for vxtun: <own subnet>.0/32,
// as flannel gives flannel.1), brings the link up and adds a route for each
// prefix in routes (the whole Network) through the link with scope link. It
// runs in the calling thread's network namespace. Addresses and routes that
// already exist are accepted. On error what was added is removed again.
//
// Unconfigure removes the routes and addresses; closing the last queue of a
// non-persistent TUN removes the link with everything on it anyway.
func Configure(name string, mtu int, addrs, routes []netip.Prefix) (*Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	cfg := &Link{Name: name}
	fail := func(err error) (*Link, error) {
		_ = cfg.Unconfigure()
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	if mtu > 0 {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fail(fmt.Errorf("mtu %d: %w", mtu, err))
		}
	}
	if l.Attrs().TxQLen < TxQueueLen {
		if err := netlink.LinkSetTxQLen(l, TxQueueLen); err != nil {
			return fail(fmt.Errorf("txqueuelen %d: %w", TxQueueLen, err))
		}
	}
	for _, a := range addrs {
		err := netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(a)})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("address %s: %w", a, err))
		}
		if err == nil {
			cfg.Addrs = append(cfg.Addrs, a)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fail(fmt.Errorf("link up: %w", err))
	}
	for _, p := range routes {
		err := netlink.RouteAdd(route(l, p))
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("route %s: %w", p, err))
		}
		if err == nil {
			cfg.Routes = append(cfg.Routes, p)
		}
	}
	return cfg, nil
}

// Unconfigure removes the routes and addresses Configure added. A link that
// is already gone is not an error.
func (c *Link) Unconfigure() error {
	l, err := netlink.LinkByName(c.Name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("unconfigure %s: %w", c.Name, err)
	}
	var errs []error
	for _, p := range c.Routes {
		if err := netlink.RouteDel(route(l, p)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("route %s: %w", p, err))
		}
	}
	for _, a := range c.Addrs {
		if err := netlink.AddrDel(l, &netlink.Addr{IPNet: prefixNet(a)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("address %s: %w", a, err))
		}
	}
	c.Routes, c.Addrs = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("unconfigure %s: %w", c.Name, err)
	}
	return nil
}

func route(l netlink.Link, p netip.Prefix) *netlink.Route {
	return &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(p.Masked()), Scope: netlink.SCOPE_LINK}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
