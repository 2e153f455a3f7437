package hostnettest

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"syscall"

	"github.com/vxtun/vxtun/hostnet"
)

// Method names for Fail (peer routes).
const (
	SetPeerRoutes = "SetPeerRoutes"
	OnLink        = "OnLink"
)

// routeState is the Fake's peer routes and the links' connected prefixes.
type routeState struct {
	sets      map[string][]hostnet.Route // by owner, as installed
	connected map[string][]netip.Prefix  // by link: what is on-link there
}

// SetConnected makes prefixes the on-link networks of the link dev (its
// addresses' subnets): OnLink reports addresses inside them, and
// SetPeerRoutes refuses gateways outside them as the kernel does. It is
// the test's description of the host, not a change vxtun makes.
func (f *Fake) SetConnected(dev string, prefixes ...netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routes.connected == nil {
		f.routes.connected = map[string][]netip.Prefix{}
	}
	f.routes.connected[dev] = slices.Clone(prefixes)
}

func (f *Fake) onLinkLocked(dev string, ip netip.Addr) bool {
	for _, p := range f.routes.connected[dev] {
		if p.Contains(ip.Unmap()) && p.Addr() != ip.Unmap() {
			return true
		}
	}
	return false
}

// OnLink reports whether ip is inside a prefix given to SetConnected for
// dev (and is not the address itself).
func (f *Fake) OnLink(dev string, ip netip.Addr) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(OnLink); err != nil {
		return false, fmt.Errorf("on-link %s dev %s: %w", ip, dev, err)
	}
	if _, ok := f.routes.connected[dev]; !ok {
		return false, fmt.Errorf("on-link %s dev %s: link not found", ip, dev)
	}
	return f.onLinkLocked(dev, ip), nil
}

// SetPeerRoutes records owner's routes as the real Host applies them:
// input errors change nothing; a gateway that is not on-link (see
// SetConnected) is left out with a *hostnet.RouteError wrapping
// ENETUNREACH; the others are recorded.
func (f *Fake) SetPeerRoutes(owner string, routes []hostnet.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(SetPeerRoutes); err != nil {
		return fmt.Errorf("peer routes %s: %w", owner, err)
	}
	if f.closed {
		return fmt.Errorf("peer routes %s: %w", owner, hostnet.ErrClosed)
	}
	seen := map[netip.Prefix]bool{}
	for _, r := range routes {
		if err := r.Check(); err != nil {
			return fmt.Errorf("peer routes %s: %w", owner, err)
		}
		if seen[r.Dst.Masked()] {
			return fmt.Errorf("peer routes %s: %s: destination listed twice", owner, r.Dst.Masked())
		}
		seen[r.Dst.Masked()] = true
	}
	var set []hostnet.Route
	var errs []error
	for _, r := range routes {
		r.Dst, r.Via = r.Dst.Masked(), r.Via.Unmap()
		if !f.onLinkLocked(r.Dev, r.Via) {
			errs = append(errs, &hostnet.RouteError{Route: r, Err: syscall.ENETUNREACH})
			continue
		}
		set = append(set, r)
	}
	if f.routes.sets == nil {
		f.routes.sets = map[string][]hostnet.Route{}
	}
	f.routes.sets[owner] = set
	return errors.Join(errs...)
}

// PeerRoutes returns owner's recorded routes (none after Close), sorted by
// destination.
func (f *Fake) PeerRoutes(owner string) []hostnet.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	rs := slices.Clone(f.routes.sets[owner])
	slices.SortFunc(rs, func(a, b hostnet.Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	return rs
}

// PeerRouteOwners returns the owners with at least one route.
func (f *Fake) PeerRouteOwners() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	var out []string
	for _, o := range slices.Sorted(maps.Keys(f.routes.sets)) {
		if len(f.routes.sets[o]) > 0 {
			out = append(out, o)
		}
	}
	return out
}
