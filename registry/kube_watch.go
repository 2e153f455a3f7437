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

	peers map[string]config.Peer
	// owner maps each accepted peer's subnet to the peer; cover counts,
	// for every prefix between Network and an accepted subnet (exclusive),
	// the accepted subnets below it. Together they find an overlap in
	// O(prefix length).
	owner map[netip.Prefix]string
	cover map[netip.Prefix]int
	// overlapped are Nodes skipped because their subnet overlaps an
	// accepted peer's: they are looked at again when a peer leaves.
	overlapped map[string]struct{}
	// bad is the reason last logged per skipped Node: a reason is logged
	// once per node, not at every resync.
	bad map[string]string
	// ownErr is the last logged trouble with our own Node.
	ownErr string
}

func newKubeWatch(s *KubeSource, self string, store cache.Store) *kubeWatch {
	return &kubeWatch{s: s, self: self, store: store, bad: map[string]string{}}
}

// resync rebuilds the peer set from the whole store and returns it.
func (w *kubeWatch) resync() []config.Peer {
	w.peers = map[string]config.Peer{}
	w.owner = map[netip.Prefix]string{}
	w.cover = map[netip.Prefix]int{}
	w.overlapped = map[string]struct{}{}
	names := w.store.ListKeys()
	slices.Sort(names)
	for _, name := range names {
		if name == w.self {
			continue
		}
		if p, ok := w.evaluate(name); ok {
			w.add(p)
		}
	}
	return sortedPeers(w.peers)
}

// apply re-evaluates the named Nodes (sorted) and returns the changes to
// the peer set. Our own Node is checked for a changed pod CIDR and for
// annotations that went missing (they are published again).
func (w *kubeWatch) apply(ctx context.Context, names []string) []Event {
	old := map[string]config.Peer{}
	var again []string // previously accepted first: they keep their subnets
	var rest []string
	for _, name := range names {
		if name == w.self {
			w.own(ctx)
			continue
		}
		if p, ok := w.peers[name]; ok {
			old[name] = p
			w.remove(p)
			again = append(again, name)
		} else {
			rest = append(rest, name)
		}
	}
	var evs []Event
	freed := false
	for _, name := range append(again, rest...) {
		p, ok := w.evaluate(name)
		if ok {
			w.add(p)
		}
		was, had := old[name]
		switch {
		case ok && !had:
			evs = append(evs, Event{Type: PeerAdded, Peer: p})
		case ok && had && !peerEqual(was, p):
			evs = append(evs, Event{Type: PeerUpdated, Peer: p})
			freed = freed || !slices.Equal(was.Subnets, p.Subnets)
		case !ok && had:
			evs = append(evs, Event{Type: PeerRemoved, Peer: was})
			freed = true
		}
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
			if p, ok := w.evaluate(name); ok {
				w.add(p)
				evs = append(evs, Event{Type: PeerAdded, Peer: p})
			}
		}
	}
	return evs
}

// evaluate turns the stored Node name into a peer, or says why not (one
// log line per node and reason).
func (w *kubeWatch) evaluate(name string) (config.Peer, bool) {
	delete(w.overlapped, name)
	obj, exists, err := w.store.GetByKey(name)
	if err != nil || !exists {
		delete(w.bad, name)
		return config.Peer{}, false
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return config.Peer{}, false
	}
	p, err := nodePeer(w.s.keys, w.s.opts.NetConf, n)
	if errors.Is(err, errNotManaged) {
		delete(w.bad, name)
		return config.Peer{}, false
	}
	if err != nil {
		w.skip(name, err.Error())
		return config.Peer{}, false
	}
	if own, ok := w.s.Lease(); ok && own.Subnet.Overlaps(p.Subnets[0]) {
		w.skip(name, "subnet "+p.Subnets[0].String()+" overlaps this node's "+own.Subnet.String())
		return config.Peer{}, false
	}
	if p.PublicIP == w.s.opts.PublicIP {
		w.skip(name, "public-ip "+p.PublicIP.String()+" is this node's")
		return config.Peer{}, false
	}
	if other := w.conflict(p.Subnets[0]); other != "" {
		w.overlapped[name] = struct{}{}
		w.skip(name, "subnet "+p.Subnets[0].String()+" overlaps node "+other+"'s")
		return config.Peer{}, false
	}
	delete(w.bad, name)
	return p, true
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

// ancestors calls fn for every prefix of sn from the network's length up
// to sn itself (exclusive unless inclusive).
func (w *kubeWatch) ancestors(sn netip.Prefix, inclusive bool, fn func(netip.Prefix)) {
	last := sn.Bits()
	if !inclusive {
		last--
	}
	for b := w.s.opts.NetConf.Network.Bits(); b <= last; b++ {
		fn(netip.PrefixFrom(sn.Addr(), b).Masked())
	}
}

// conflict returns the accepted peer whose subnet overlaps sn, or "".
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
	for name, p := range w.peers {
		if sn.Overlaps(p.Subnets[0]) && (other == "" || strings.Compare(name, other) < 0) {
			other = name
		}
	}
	return other
}

func (w *kubeWatch) add(p config.Peer) {
	w.peers[p.Name] = p
	sn := p.Subnets[0]
	w.owner[sn] = p.Name
	w.ancestors(sn, false, func(a netip.Prefix) { w.cover[a]++ })
}

func (w *kubeWatch) remove(p config.Peer) {
	delete(w.peers, p.Name)
	sn := p.Subnets[0]
	if w.owner[sn] == p.Name {
		delete(w.owner, sn)
	}
	w.ancestors(sn, false, func(a netip.Prefix) {
		if w.cover[a]--; w.cover[a] <= 0 {
			delete(w.cover, a)
		}
	})
}
