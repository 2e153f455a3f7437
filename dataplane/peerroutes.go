package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/hostnet"
)

// DropNotOnLink is the PeerDrops reason of a host-gw peer that was refused
// because its public IP is not on-link on the underlay interface: counted
// once each time the peer is refused anew (it appears, or its address
// changes), not per packet.
const DropNotOnLink = "not_on_link"

// recheckInterval is how often host-gw and DirectRouting re-apply the
// current peer set without an update: a deleted route comes back and a
// peer whose reachability changed is re-routed (flannel re-checks its
// routes every 10 s too).
const recheckInterval = 10 * time.Second

// peerRouter programs direct kernel routes to peers through cfg.Host:
// "<peer subnet> via <peer PublicIP> dev <underlay iface>", the route of
// flannel's host-gw backend and of vxlan DirectRouting. It is the part
// the host-gw and DirectRouting dataplanes share.
type peerRouter struct {
	host  hostnet.Host
	owner string // the Host's route-set name
	dev   string // underlay interface
	log   *slog.Logger

	mu      sync.Mutex
	direct  map[string]netip.Addr // peers routed directly, by name → their PublicIP
	refused map[string]netip.Addr // peers without a direct route, by name → the PublicIP refused
	counts  map[string]uint64     // refusals by peer name (host-gw: DropNotOnLink)
}

func newPeerRouter(host hostnet.Host, owner, dev string, log *slog.Logger) *peerRouter {
	return &peerRouter{host: host, owner: owner, dev: dev, log: log,
		direct: map[string]netip.Addr{}, refused: map[string]netip.Addr{}, counts: map[string]uint64{}}
}

// refusal is a peer left without a direct route and why.
type refusal struct {
	peer config.Peer
	err  error
}

// apply routes the peers whose public IP is on-link directly and returns
// the names of those it routed; the rest are refused (the error says
// why: flanneld's "error adding route to … : network is unreachable").
// An error (the Host failed, not one route) leaves the routes as they
// were, as far as the Host's own atomicity goes.
func (r *peerRouter) apply(peers []config.Peer) (direct map[string]bool, refused []refusal, err error) {
	var routes []hostnet.Route
	owner := map[netip.Prefix]int{} // route destination → index in peers
	onLink := map[int]bool{}
	for i, p := range peers {
		ok, err := r.host.OnLink(r.dev, p.PublicIP)
		if err != nil {
			return nil, nil, fmt.Errorf("peer %q: %w", p.Name, err)
		}
		if !ok {
			refused = append(refused, refusal{p, notOnLink(p, r.dev)})
			continue
		}
		onLink[i] = true
		for _, sn := range p.Subnets {
			if sn.Addr().Is4() != p.PublicIP.Unmap().Is4() {
				continue // an IPv6 subnet needs an IPv6 gateway: not in this route family
			}
			owner[sn.Masked()] = i
			routes = append(routes, hostnet.Route{Dst: sn.Masked(), Via: p.PublicIP.Unmap(), Dev: r.dev})
		}
	}
	err = r.host.SetPeerRoutes(r.owner, routes)
	if !hostnet.OnlyRouteErrors(err) {
		return nil, nil, fmt.Errorf("peer routes: %w", err)
	}
	// The kernel may still refuse a route we thought fine (its gateway
	// went away meanwhile): that peer is refused too, with its words.
	bad := map[int]error{}
	for dst, re := range hostnet.RouteErrors(err) {
		bad[owner[dst]] = re
	}
	direct = map[string]bool{}
	for i, p := range peers {
		if !onLink[i] {
			continue
		}
		if e, ok := bad[i]; ok {
			refused = append(refused, refusal{p, fmt.Errorf("peer %q: %w", p.Name, e)})
			continue
		}
		direct[p.Name] = true
	}
	return direct, refused, nil
}

// notOnLink is the refusal of a peer whose public IP is not on-link: the
// route the kernel would refuse, in flanneld's words for that refusal.
func notOnLink(p config.Peer, dev string) error {
	var dst netip.Prefix
	if len(p.Subnets) > 0 {
		dst = p.Subnets[0]
	}
	re := &hostnet.RouteError{Route: hostnet.Route{Dst: dst, Via: p.PublicIP.Unmap(), Dev: dev}, Err: syscall.ENETUNREACH}
	return fmt.Errorf("peer %q: %w (its public IP is not on-link on %s: host-gw needs every node on one L2 network)", p.Name, re, dev)
}

// record remembers the outcome of apply; a peer refused anew (it was not
// refused before, or with another public IP) is logged once, at level, and
// counted if count. It returns the names that changed between direct and
// not.
func (r *peerRouter) record(peers []config.Peer, direct map[string]bool, refused []refusal, level slog.Level, count bool) (moved []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byName := map[string]config.Peer{}
	for _, p := range peers {
		byName[p.Name] = p
	}
	newDirect := map[string]netip.Addr{}
	for name := range direct {
		newDirect[name] = byName[name].PublicIP
		if _, was := r.direct[name]; !was {
			moved = append(moved, name)
		}
	}
	newRefused := map[string]netip.Addr{}
	for _, f := range refused {
		ip := f.peer.PublicIP
		newRefused[f.peer.Name] = ip
		if old, was := r.refused[f.peer.Name]; !was || old != ip {
			r.log.Log(context.Background(), level, "no direct route to peer", "peer", f.peer.Name, "err", f.err)
			if count {
				r.counts[f.peer.Name]++
			}
		}
		if _, was := r.direct[f.peer.Name]; was {
			moved = append(moved, f.peer.Name)
		}
	}
	r.direct, r.refused = newDirect, newRefused
	return moved
}

// peerDrops adds the refusal counts to s.PeerDrops under reason.
func (r *peerRouter) peerDrops(s *Stats, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.counts) == 0 {
		return
	}
	if s.PeerDrops == nil {
		s.PeerDrops = map[string]map[string]uint64{}
	}
	for name, n := range r.counts {
		m := s.PeerDrops[name]
		if m == nil {
			m = map[string]uint64{}
			s.PeerDrops[name] = m
		}
		m[reason] += n
	}
}

// directNames returns the peers currently routed directly.
func (r *peerRouter) directNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.direct))
}
