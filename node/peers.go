package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/registry"
)

// peerLogLimit is the most peer changes of one update logged a line each at
// info; a bigger change (the first set of a large cluster, a re-list) is one
// summary line at info and the per-peer lines at debug.
const peerLogLimit = 20

// maxEventsInPlace is the most events nextPeers applies one at a time to
// a copy of the set (a binary search and a shift each); more (a re-list
// sent as events) fold through a map and a sort.
const maxEventsInPlace = 64

// nextPeers returns the peer set after u (not a rejected one), sorted by
// name as registry.Apply returns it, given cur, the set in force (sorted
// by name, as nextPeers returns it). It never modifies cur or u. A few
// events cost a copy of cur, not a sort: what one peer's change costs a
// 5 000-peer node (BenchmarkApplyUpdate).
func nextPeers(cur []config.Peer, u registry.Update) []config.Peer {
	byName := func(a, b config.Peer) int { return strings.Compare(a.Name, b.Name) }
	if u.Full {
		if slices.IsSortedFunc(u.Peers, func(a, b config.Peer) int {
			if c := byName(a, b); c != 0 {
				return c
			}
			return -1 // a name twice: not strictly sorted, fold through the map
		}) && len(u.Events) == 0 {
			return slices.Clone(u.Peers)
		}
		return registry.Apply(map[string]config.Peer{}, u)
	}
	if len(u.Events) > maxEventsInPlace {
		set := make(map[string]config.Peer, len(cur))
		for _, p := range cur {
			set[p.Name] = p
		}
		return registry.Apply(set, u)
	}
	next := slices.Clone(cur)
	for _, ev := range u.Events {
		i, found := slices.BinarySearchFunc(next, ev.Peer, byName)
		switch {
		case ev.Type == registry.PeerRemoved && found:
			next = slices.Delete(next, i, i+1)
		case ev.Type == registry.PeerRemoved:
		case found:
			next[i] = ev.Peer
		default:
			next = slices.Insert(next, i, ev.Peer)
		}
	}
	return next
}

// logPeerChanges logs who joined, left and changed from old to next, both
// sorted by name (as nextPeers returns them): a merge pass to count, and
// another to log when the lines are wanted; no map.
func (n *Node) logPeerChanges(old, next []config.Peer) {
	joined, left, changed := 0, 0, 0
	diffPeers(old, next, func(q, p *config.Peer, what string) {
		switch {
		case q == nil:
			joined++
		case p == nil:
			left++
		default:
			changed++
		}
	})
	level := slog.LevelInfo
	if joined+left+changed > peerLogLimit {
		level = slog.LevelDebug
		n.log.Info("peers changed", "joined", joined, "left", left, "changed", changed, "peers", len(next))
	}
	ctx := context.Background()
	if !n.log.Enabled(ctx, level) {
		return
	}
	var gone []*config.Peer
	diffPeers(old, next, func(q, p *config.Peer, what string) {
		switch {
		case q == nil:
			n.log.Log(ctx, level, "peer joined", peerAttrs(*p)...)
		case p == nil:
			gone = append(gone, q) // leaves last, as before
		default:
			n.log.Log(ctx, level, "peer changed", append(peerAttrs(*p), "changed", what,
				"was-public-ip", q.PublicIP.String(), "was-subnets", prefixes(q.Subnets))...)
		}
	})
	for _, q := range gone {
		n.log.Log(ctx, level, "peer left", peerAttrs(*q)...)
	}
}

// diffPeers calls fn for every peer that joined (q nil), left (p nil) or
// changed (what names the fields) from old to next, both sorted by name,
// in name order.
func diffPeers(old, next []config.Peer, fn func(q, p *config.Peer, what string)) {
	for i, j := 0, 0; i < len(old) || j < len(next); {
		var c int
		switch {
		case i == len(old):
			c = 1
		case j == len(next):
			c = -1
		default:
			c = strings.Compare(old[i].Name, next[j].Name)
		}
		switch {
		case c < 0:
			fn(&old[i], nil, "")
			i++
		case c > 0:
			fn(nil, &next[j], "")
			j++
		default:
			if what := peerDiff(&old[i], &next[j]); what != "" {
				fn(&old[i], &next[j], what)
			}
			i++
			j++
		}
	}
}

func peerAttrs(p config.Peer) []any {
	return []any{"peer", p.Name, "public-ip", p.PublicIP.String(), "subnets", prefixes(p.Subnets)}
}

// peerDiff names the fields in which a and b differ ("" if none).
func peerDiff(a, b *config.Peer) string {
	var d []string
	if a.PublicIP != b.PublicIP {
		d = append(d, "public-ip")
	}
	if !slices.Equal(a.Subnets, b.Subnets) {
		d = append(d, "subnets")
	}
	if !bytes.Equal(a.VtepMAC, b.VtepMAC) {
		d = append(d, "vtep-mac")
	}
	if a.VNI != b.VNI {
		d = append(d, "vni")
	}
	if a.Port != b.Port {
		d = append(d, "port")
	}
	if a.Backend != b.Backend {
		d = append(d, "backend")
	}
	return strings.Join(d, ",")
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// setPeerFilter makes the host's peer filter admit exactly peers' public
// IPs on our port. Without a host, with the filter switched off, or
// without an underlay port (host-gw encapsulates nothing) it does nothing.
func (n *Node) setPeerFilter(h hostnet.Host, port uint16, peers []config.Peer) error {
	if h == nil || n.cfg.SkipPeerFilter || port == 0 {
		return nil
	}
	addrs := make([]netip.Addr, 0, len(peers))
	for _, p := range peers {
		addrs = append(addrs, p.PublicIP)
	}
	if err := h.SetPeerFilter(port, addrs); err != nil {
		return fmt.Errorf("peer filter: %w%s (--peer-filter=false runs without it)", err, privHint(err))
	}
	return nil
}

// privHint names the likely cause of a permission error from the host.
func privHint(err error) string {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return " (vxtun needs root or CAP_NET_ADMIN)"
	}
	return ""
}
