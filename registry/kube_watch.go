package registry

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/vxtun/vxtun/config"
)

// kubeWatch is the peer set a KubeSource builds from its informer's store.
// Only Run's goroutine uses it.
type kubeWatch struct {
	s     *KubeSource
	self  string // our Node's name
	store cache.Store

	// peers are the accepted peers per Node: one, or two for a dual-stack
	// Node whose IPv6 overlay has an underlay of its own ("<node>/v6").
	peers map[string][]config.Peer
	// owner maps each accepted subnet (IPv4 and IPv6) to its Node; cover
	// counts, for every prefix between Network (IPv6Network) and an
	// accepted subnet (exclusive), the accepted subnets below it. Together
	// they find an overlap in O(prefix length).
	owner map[netip.Prefix]string
	cover map[netip.Prefix]int
	// overlapped are Nodes skipped because their subnet overlaps an
	// accepted peer's: they are looked at again when a peer leaves.
	overlapped map[string]struct{}
	// bad is the reason last logged per skipped Node: a reason is logged
	// once per node, not at every resync.
	bad map[string]string
	// unrouted6 is the IPv6 subnet last logged as not routed per Node.
	unrouted6 map[string]netip.Prefix
	// ownErr is the last logged trouble with our own Node.
	ownErr string
}

func newKubeWatch(s *KubeSource, self string, store cache.Store) *kubeWatch {
	return &kubeWatch{s: s, self: self, store: store, bad: map[string]string{}, unrouted6: map[string]netip.Prefix{}}
}

// resync rebuilds the peer set from the whole store and returns it.
func (w *kubeWatch) resync() []config.Peer {
	w.peers = map[string][]config.Peer{}
	w.owner = map[netip.Prefix]string{}
	w.cover = map[netip.Prefix]int{}
	w.overlapped = map[string]struct{}{}
	names := w.store.ListKeys()
	slices.Sort(names)
	for _, name := range names {
		if name == w.self {
			continue
		}
		if ps, ok := w.evaluate(name); ok {
			w.add(name, ps)
		}
	}
	return w.all()
}

// all returns the accepted peers sorted by name.
func (w *kubeWatch) all() []config.Peer {
	set := make(map[string]config.Peer, len(w.peers))
	for _, ps := range w.peers {
		for _, p := range ps {
			set[p.Name] = p
		}
	}
	return sortedPeers(set)
}

// apply re-evaluates the named Nodes (sorted) and returns the changes to
// the peer set. Our own Node is checked for a changed pod CIDR and for
// annotations that went missing (they are published again).
func (w *kubeWatch) apply(ctx context.Context, names []string) []Event {
	old := map[string][]config.Peer{}
	var again []string // previously accepted first: they keep their subnets
	var rest []string
	for _, name := range names {
		if name == w.self {
			w.own(ctx)
			continue
		}
		if ps, ok := w.peers[name]; ok {
			old[name] = ps
			w.remove(name, ps)
			again = append(again, name)
		} else {
			rest = append(rest, name)
		}
	}
	var evs []Event
	freed := false
	for _, name := range append(again, rest...) {
		ps, ok := w.evaluate(name)
		if ok {
			w.add(name, ps)
		}
		var f bool
		evs, f = nodeEvents(evs, old[name], ps)
		freed = freed || f
	}
	if freed && len(w.overlapped) > 0 {
		waiting := make([]string, 0, len(w.overlapped))
		for name := range w.overlapped {
			waiting = append(waiting, name)
		}
		slices.Sort(waiting)
		for _, name := range waiting {
			if _, ok := w.peers[name]; ok {
				continue
			}
			if ps, ok := w.evaluate(name); ok {
				w.add(name, ps)
				evs, _ = nodeEvents(evs, nil, ps)
			}
		}
	}
	return evs
}

// nodeEvents appends to evs the events that turn one Node's peers was into
// now, and reports whether a subnet was freed (removed or changed).
func nodeEvents(evs []Event, was, now []config.Peer) ([]Event, bool) {
	freed := false
	find := func(ps []config.Peer, name string) (config.Peer, bool) {
		for _, p := range ps {
			if p.Name == name {
				return p, true
			}
		}
		return config.Peer{}, false
	}
	for _, p := range now {
		o, had := find(was, p.Name)
		switch {
		case !had:
			evs = append(evs, Event{Type: PeerAdded, Peer: p})
		case !peerEqual(o, p):
			evs = append(evs, Event{Type: PeerUpdated, Peer: p})
			freed = freed || !slices.Equal(o.Subnets, p.Subnets)
		}
	}
	for _, o := range was {
		if _, ok := find(now, o.Name); !ok {
			evs = append(evs, Event{Type: PeerRemoved, Peer: o})
			freed = true
		}
	}
	return evs, freed
}

// evaluate turns the stored Node name into its peers, or says why not
// (one log line per node and reason).
func (w *kubeWatch) evaluate(name string) ([]config.Peer, bool) {
	delete(w.overlapped, name)
	obj, exists, err := w.store.GetByKey(name)
	if err != nil || !exists {
		delete(w.bad, name)
		delete(w.unrouted6, name)
		return nil, false
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil, false
	}
	ps, unrouted6, err := nodePeers(w.s.keys, w.s.opts.NetConf, n, w.s.opts.PublicIPv6)
	if errors.Is(err, errNotManaged) {
		delete(w.bad, name)
		return nil, false
	}
	if err != nil {
		w.skip(name, err.Error())
		return nil, false
	}
	own, _ := w.s.Lease()
	for _, p := range ps {
		if p.PublicIP == w.s.opts.PublicIP || (p.PublicIP == w.s.opts.PublicIPv6 && p.PublicIP.IsValid()) {
			w.skip(name, "public IP "+p.PublicIP.String()+" is this node's")
			return nil, false
		}
		for _, sn := range p.Subnets {
			for _, o := range []netip.Prefix{own.Subnet, own.Subnet6} {
				if o.IsValid() && o.Overlaps(sn) {
					w.skip(name, "subnet "+sn.String()+" overlaps this node's "+o.String())
					return nil, false
				}
			}
			if other := w.conflict(sn); other != "" {
				w.overlapped[name] = struct{}{}
				w.skip(name, "subnet "+sn.String()+" overlaps node "+other+"'s")
				return nil, false
			}
		}
	}
	delete(w.bad, name)
	if unrouted6.IsValid() && w.unrouted6[name] != unrouted6 {
		w.s.log.Info("node's IPv6 subnet is carried on an IPv6 underlay (public-ipv6) this node has none of: routing only its IPv4 subnet",
			"node", name, "ipv6-subnet", unrouted6.String(), "public-ipv6", n.Annotations[w.s.keys.PublicIPv6])
	}
	if unrouted6.IsValid() {
		w.unrouted6[name] = unrouted6
	} else {
		delete(w.unrouted6, name)
	}
	return ps, true
}

// skip logs why a Node is not a peer, once per node and reason.
func (w *kubeWatch) skip(name, reason string) {
	if w.bad[name] == reason {
		return
	}
	w.bad[name] = reason
	w.s.log.Warn("skipping node", "node", name, "reason", reason)
}

// own re-reads our Node: publishes our annotations again if they went
// missing, and announces a changed lease.
func (w *kubeWatch) own(ctx context.Context) {
	obj, exists, err := w.store.GetByKey(w.self)
	var msg string
	switch {
	case err != nil:
		msg = err.Error()
	case !exists:
		msg = "our Node " + w.self + " is gone from the API server"
	default:
		n, _ := obj.(*corev1.Node)
		if n == nil {
			return
		}
		l, err := w.s.ensure(ctx, n)
		if err != nil {
			msg = err.Error()
			break
		}
		w.s.publish(l)
	}
	if msg != "" && msg != w.ownErr {
		w.s.log.Warn("own node", "node", w.self, "err", msg)
	}
	w.ownErr = msg
}

// ancestors calls fn for every prefix of sn from its network's length
// (Network or IPv6Network) up to sn itself (exclusive unless inclusive).
func (w *kubeWatch) ancestors(sn netip.Prefix, inclusive bool, fn func(netip.Prefix)) {
	last := sn.Bits()
	if !inclusive {
		last--
	}
	nc := w.s.opts.NetConf
	network := nc.Network
	if sn.Addr().Is6() {
		network = nc.IPv6Network
	}
	for b := network.Bits(); b <= last; b++ {
		fn(netip.PrefixFrom(sn.Addr(), b).Masked())
	}
}

// conflict returns the accepted Node whose subnet overlaps sn, or "".
func (w *kubeWatch) conflict(sn netip.Prefix) string {
	var other string
	w.ancestors(sn, true, func(a netip.Prefix) {
		if o, ok := w.owner[a]; ok && other == "" {
			other = o
		}
	})
	if other != "" || w.cover[sn] == 0 {
		return other
	}
	// A longer subnet lies inside sn: find it (rare).
	for name, ps := range w.peers {
		for _, p := range ps {
			for _, s := range p.Subnets {
				if sn.Overlaps(s) && (other == "" || strings.Compare(name, other) < 0) {
					other = name
				}
			}
		}
	}
	return other
}

func (w *kubeWatch) add(node string, ps []config.Peer) {
	w.peers[node] = ps
	for _, p := range ps {
		for _, sn := range p.Subnets {
			w.owner[sn] = node
			w.ancestors(sn, false, func(a netip.Prefix) { w.cover[a]++ })
		}
	}
}

func (w *kubeWatch) remove(node string, ps []config.Peer) {
	delete(w.peers, node)
	for _, p := range ps {
		for _, sn := range p.Subnets {
			if w.owner[sn] == node {
				delete(w.owner, sn)
			}
			w.ancestors(sn, false, func(a netip.Prefix) {
				if w.cover[a]--; w.cover[a] <= 0 {
					delete(w.cover, a)
				}
			})
		}
	}
}
