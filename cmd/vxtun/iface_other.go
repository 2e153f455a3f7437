//go:build !linux

package main

import (
	"errors"
	"net/netip"
)

// hostIfaces reads nothing off Linux: the daemon runs only there.
type hostIfaces struct{}

var errIfacesUnsupported = errors.New("interface selection is supported on Linux only")

func (hostIfaces) Interfaces() ([]netIface, error) { return nil, errIfacesUnsupported }
func (hostIfaces) RouteTo(netip.Addr) (string, netip.Addr, error) {
	return "", netip.Addr{}, errIfacesUnsupported
}
func (hostIfaces) DefaultRoute() (string, error) { return "", errIfacesUnsupported }
