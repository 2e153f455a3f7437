package udp

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/rawfd"
)

// listenUnpolled opens and binds a socket as net.ListenConfig would for
// network ("udp4", "udp6": IPv6 only, "udp": dual stack), with control run
// before bind, but outside the runtime poller (Options.Unpolled).
func listenUnpolled(network string, laddr netip.AddrPort, control func(syscall.RawConn) error) (*rawfd.FD, netip.AddrPort, error) {
	family := unix.AF_INET6
	if network == "udp4" {
		family = unix.AF_INET
	}
	s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("socket: %w", err)
	}
	fd, err := rawfd.New(s, net.ErrClosed)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	fail := func(err error) (*rawfd.FD, netip.AddrPort, error) {
		fd.Close()
		return nil, netip.AddrPort{}, err
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(laddr.Port()), Addr: laddr.Addr().As4()}
	} else {
		v6only := 0
		if network == "udp6" {
			v6only = 1
		}
		if err := unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return fail(fmt.Errorf("set IPV6_V6ONLY: %w", err))
		}
		sa = &unix.SockaddrInet6{Port: int(laddr.Port()), Addr: laddr.Addr().As16()}
	}
	if err := control(fd); err != nil {
		return fail(err)
	}
	if err := unix.Bind(s, sa); err != nil {
		return fail(fmt.Errorf("bind: %w", err))
	}
	got, err := unix.Getsockname(s)
	if err != nil {
		return fail(fmt.Errorf("getsockname: %w", err))
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return fd, netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return fd, netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), nil
	}
	return fail(fmt.Errorf("getsockname: unexpected %T", got))
}
