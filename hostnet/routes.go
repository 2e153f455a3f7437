package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
)

// Route is a route to a peer's overlay subnet through the peer's public IP
// on the underlay link: what flannel's host-gw backend (and vxlan with
// DirectRouting, for peers on the same subnet) installs.
type Route struct {
	Dst netip.Prefix // the peer's subnet
	Via netip.Addr   // the peer's public IP; must be on-link on Dev
	Dev string       // the underlay interface
}

func (r Route) String() string { return fmt.Sprintf("%s via %s dev %s", r.Dst, r.Via, r.Dev) }

// Check reports what makes r unusable as a peer route.
func (r Route) Check() error {
	switch {
	case !r.Dst.IsValid():
		return fmt.Errorf("route %v: invalid destination", r)
	case !r.Via.IsValid() || r.Via.IsUnspecified():
		return fmt.Errorf("route %v: invalid gateway", r)
	case r.Dst.Addr().Is4() != r.Via.Unmap().Is4():
		return fmt.Errorf("route %v: gateway of another address family", r)
	case r.Dev == "":
		return fmt.Errorf("route %v: no device", r)
	}
	return nil
}

// RouteError is one route SetPeerRoutes could not install. Err is the
// kernel's reason (unix.ENETUNREACH for a gateway that is not on-link).
type RouteError struct {
	Route Route
	Err   error
}

// Error uses flanneld's words for the same failure ("Error adding route
// to …: network is unreachable"), lower-cased.
func (e *RouteError) Error() string {
	return fmt.Sprintf("error adding route to %s: %v", e.Route, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// RouteErrors returns the *RouteError values in err (as SetPeerRoutes
// joins them), keyed by destination.
func RouteErrors(err error) map[netip.Prefix]*RouteError {
	out := map[netip.Prefix]*RouteError{}
	var walk func(error)
	walk = func(err error) {
		if re, ok := err.(*RouteError); ok {
			out[re.Route.Dst] = re
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// OnlyRouteErrors reports whether err consists of *RouteError values only
// (the routes it names were left out, everything else was applied).
func OnlyRouteErrors(err error) bool {
	if err == nil {
		return true
	}
	if _, ok := err.(*RouteError); ok {
		return true
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return false
	}
	for _, e := range j.Unwrap() {
		if !OnlyRouteErrors(e) {
			return false
		}
	}
	return true
}

// errDuplicateRoute is a route list with one destination twice.
var errDuplicateRoute = errors.New("destination listed twice")
