package routing

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/vxtun/vxtun/config"
)

// Update returns the table for peers, given the current table prev (which
// may be nil), checking each peer it has to look at with check (the
// caller's scope rules; nil checks nothing more than a Builder does).
//
// The common update is incremental: when peers has prev's peers in the same
// order (registries emit them sorted by name), with the same names and
// subnets, and only some changed their underlay address, port, VNI or MAC
// (a node that moved, a lease renewed with new data), then only the changed
// peers are checked and their routes rebuilt; the other routes are copied,
// the tries are shared with prev (route numbers and prefixes are the same),
// and so is the underlay index unless an underlay address changed, in which
// case a clone is amended for the addresses that changed. Anything else (a
// peer added, removed, renamed, reordered, or with other subnets) builds
// the table anew with a Builder, as before. Either way the result is the
// table a Builder would build from peers: Update never changes what a
// lookup returns, only how long it takes to make.
func Update(prev *Table, peers []config.Peer, check func(*config.Peer) error) (*Table, error) {
	if t, ok, err := updateInPlace(prev, peers, check); ok || err != nil {
		return t, err
	}
	b := newBuilder(prev, len(peers))
	for i := range peers {
		if check != nil {
			if err := check(&peers[i]); err != nil {
				return nil, err
			}
		}
		if err := b.Add(peers[i]); err != nil {
			return nil, err
		}
	}
	return b.Build()
}

// updateInPlace is Update's incremental path; ok is false when it does not
// apply (nothing was checked then). Its cost is a pass over the peers to
// find the changed ones, plus a copy of the chunk list and of each chunk
// and underlay shard a changed peer is in.
func updateInPlace(prev *Table, peers []config.Peer, check func(*config.Peer) error) (_ *Table, ok bool, _ error) {
	if prev == nil || prev.n != len(peers) || len(peers) == 0 {
		return nil, false, nil
	}
	var changed []int
	for c, chunk := range prev.src {
		for j := range chunk {
			i := c<<chunkBits + j
			p, q := &peers[i], &chunk[j]
			if p.Name != q.Name || !slices.Equal(p.Subnets, q.Subnets) {
				return nil, false, nil
			}
			if !samePeer(p, q) {
				changed = append(changed, i)
			}
		}
	}
	if len(changed) == 0 {
		return prev, true, nil
	}
	// Only changed peers are validated; their prefixes are the same as
	// before, so no prefix can now belong to two peers, and the names are
	// the previous (unique) ones.
	b := Builder{names: map[string]struct{}{}}
	t := &Table{routes: slices.Clone(prev.routes), src: slices.Clone(prev.src), n: prev.n,
		v4: prev.v4, v6: prev.v6, byUnderlay: prev.byUnderlay, limit: prev.limit, layout: prev.layout}
	copied := -1                    // the last chunk copied (changed is ascending)
	var moved []netip.Addr          // underlay addresses whose index entry may change
	var shards [underlayShards]bool // shards copied
	for _, i := range changed {
		p := &peers[i]
		if check != nil {
			if err := check(p); err != nil {
				return nil, true, err
			}
		}
		r, err := b.route(*p)
		if err != nil {
			return nil, true, err
		}
		old := prev.route(i)
		if !slices.Equal(r.Prefixes, old.Prefixes) {
			return nil, false, nil // subnets that normalise differently: build anew
		}
		r.Index = old.Index
		r.Prefixes = old.Prefixes // equal; keep sharing one slice
		if a, was := r.Underlay.Addr(), old.Underlay.Addr(); a != was {
			moved = append(moved, a, was)
		}
		if c := i >> chunkBits; c != copied {
			t.routes[c], t.src[c] = slices.Clone(t.routes[c]), slices.Clone(t.src[c])
			copied = c
		}
		*t.route(i) = r
		t.src[i>>chunkBits][i&(chunkLen-1)] = clonePeer(*p)
	}
	if len(moved) == 0 {
		return t, true, nil
	}
	for _, a := range moved {
		if s := shardOf(a); !shards[s] {
			t.byUnderlay[s] = maps.Clone(t.byUnderlay[s])
			shards[s] = true
		}
		delete(t.byUnderlay[shardOf(a)], a)
	}
	// The first route with each moved address, as Build would have it.
	for _, a := range moved {
		if _, done := t.byUnderlay.get(a); done {
			continue
		}
		for i, r := range t.Routes() {
			if r.Underlay.Addr() == a {
				t.byUnderlay.setFirst(a, int32(i))
				break
			}
		}
	}
	return t, true, nil
}

// samePeer reports whether a and b are equal in every field (Subnets are
// compared by the caller).
func samePeer(a, b *config.Peer) bool {
	return a.Name == b.Name && a.PublicIP == b.PublicIP && a.Port == b.Port && a.Backend == b.Backend &&
		a.VNI == b.VNI && slices.Equal(a.VtepMAC, b.VtepMAC)
}

// clonePeer copies p with slices of its own, so the caller may reuse its
// slices after Update returns.
func clonePeer(p config.Peer) config.Peer {
	p.Subnets = slices.Clone(p.Subnets)
	p.VtepMAC = slices.Clone(p.VtepMAC)
	return p
}
