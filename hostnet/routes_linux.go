package hostnet

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// peerRoutes is one owner's set of peer routes as installed.
type peerRoutes struct {
	owner     string
	installed map[netip.Prefix]Route
}

// kindPeerRoutes marks the undo entries of SetPeerRoutes, one per owner.
const kindPeerRoutes = kindForward + 100

func (h *host) SetPeerRoutes(owner string, routes []Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("peer routes %s: %w", owner, ErrClosed)
	}
	want := make(map[netip.Prefix]Route, len(routes))
	for _, r := range routes {
		if err := r.Check(); err != nil {
			return fmt.Errorf("peer routes %s: %w", owner, err)
		}
		r.Dst, r.Via = r.Dst.Masked(), r.Via.Unmap()
		if _, dup := want[r.Dst]; dup {
			return fmt.Errorf("peer routes %s: %s: %w", owner, r.Dst, errDuplicateRoute)
		}
		want[r.Dst] = r
	}
	set := h.routes[owner]
	if set == nil {
		if h.routes == nil {
			h.routes = map[string]*peerRoutes{}
		}
		set = &peerRoutes{owner: owner, installed: map[netip.Prefix]Route{}}
		h.routes[owner] = set
		h.undo = append(h.undo, change{kind: kindPeerRoutes, desc: "peer routes " + owner, undo: func() error {
			var errs []error
			for _, dst := range slices.SortedFunc(maps.Keys(set.installed), comparePrefix) {
				if err := delPeerRoute(set.installed[dst]); err != nil {
					errs = append(errs, err)
				}
			}
			clear(set.installed)
			return errors.Join(errs...)
		}})
	}

	var errs []error
	// Gone first, so that a subnet moving between peers is never routed twice.
	for _, dst := range slices.SortedFunc(maps.Keys(set.installed), comparePrefix) {
		if _, ok := want[dst]; ok {
			continue
		}
		if err := delPeerRoute(set.installed[dst]); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(set.installed, dst)
	}
	for _, dst := range slices.SortedFunc(maps.Keys(want), comparePrefix) {
		r := want[dst]
		// Replaced every time, also when unchanged: a route someone
		// deleted comes back with the next update.
		if err := replacePeerRoute(r); err != nil {
			errs = append(errs, &RouteError{Route: r, Err: err})
			if old, ok := set.installed[dst]; ok {
				// The old route (another gateway) must not stay.
				if derr := delPeerRoute(old); derr != nil {
					errs = append(errs, derr)
				} else {
					delete(set.installed, dst)
				}
			}
			continue
		}
		set.installed[dst] = r
	}
	h.describeRoutes(set)
	return errors.Join(errs...)
}

// describeRoutes updates the Changes line of set.
func (h *host) describeRoutes(set *peerRoutes) {
	head := "peer routes " + set.owner
	i := slices.IndexFunc(h.undo, func(c change) bool {
		return c.kind == kindPeerRoutes && (c.desc == head || strings.HasPrefix(c.desc, head+": "))
	})
	if i < 0 {
		return
	}
	var rs []string
	for _, dst := range slices.SortedFunc(maps.Keys(set.installed), comparePrefix) {
		rs = append(rs, set.installed[dst].String())
	}
	h.undo[i].desc = head
	if len(rs) > 0 {
		h.undo[i].desc = head + ": " + strings.Join(rs, ", ")
	}
}

// nlPeerRoute is r as netlink's route: unicast, scope universe (it has a
// gateway), main table, proto boot — what flanneld installs.
func nlPeerRoute(r Route, link netlink.Link) *netlink.Route {
	return &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixNet(r.Dst), Gw: r.Via.AsSlice()}
}

func replacePeerRoute(r Route) error {
	l, err := netlink.LinkByName(r.Dev)
	if err != nil {
		return fmt.Errorf("link %s: %w", r.Dev, err)
	}
	if err := netlink.RouteReplace(nlPeerRoute(r, l)); err != nil {
		return err
	}
	return nil
}

// delPeerRoute deletes r; a route or link that is gone already is fine.
func delPeerRoute(r Route) error {
	return linkGone(r.Dev, func(l netlink.Link) error {
		err := netlink.RouteDel(nlPeerRoute(r, l))
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete route %s: %w", r, err)
		}
		return nil
	})
}

func (h *host) OnLink(dev string, ip netip.Addr) (bool, error) {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return false, fmt.Errorf("on-link %s dev %s: %w", ip, dev, err)
	}
	rs, err := netlink.RouteGet(ip.Unmap().AsSlice())
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) {
			return false, nil
		}
		return false, fmt.Errorf("on-link %s dev %s: route lookup: %w", ip, dev, err)
	}
	return len(rs) == 1 && rs[0].Gw == nil && rs[0].LinkIndex == l.Attrs().Index, nil
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
