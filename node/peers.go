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
)

// peerLogLimit is the most peer changes of one update logged a line each at
// info; a bigger change (the first set of a large cluster, a re-list) is one
// summary line at info and the per-peer lines at debug.
const peerLogLimit = 20

// logPeerChanges logs who joined, left and changed from old to next.
func (n *Node) logPeerChanges(old, next []config.Peer) {
	before := make(map[string]config.Peer, len(old))
	for _, p := range old {
		before[p.Name] = p
	}
	type line struct {
		msg  string
		args []any
	}
	var lines []line
	joined, left, changed := 0, 0, 0
	for _, p := range next {
		q, ok := before[p.Name]
		delete(before, p.Name)
		switch {
		case !ok:
			joined++
			lines = append(lines, line{"peer joined", peerAttrs(p)})
		default:
			if what := peerDiff(q, p); what != "" {
				changed++
				lines = append(lines, line{"peer changed", append(peerAttrs(p), "changed", what,
					"was-public-ip", q.PublicIP.String(), "was-subnets", prefixes(q.Subnets))})
			}
		}
	}
	gone := make([]config.Peer, 0, len(before))
	for _, p := range before {
		gone = append(gone, p)
	}
	slices.SortFunc(gone, func(a, b config.Peer) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range gone {
		left++
		lines = append(lines, line{"peer left", peerAttrs(p)})
	}
	level := slog.LevelInfo
	if len(lines) > peerLogLimit {
		level = slog.LevelDebug
		n.log.Info("peers changed", "joined", joined, "left", left, "changed", changed, "peers", len(next))
	}
	for _, l := range lines {
		n.log.Log(context.Background(), level, l.msg, l.args...)
	}
}

func peerAttrs(p config.Peer) []any {
	return []any{"peer", p.Name, "public-ip", p.PublicIP.String(), "subnets", prefixes(p.Subnets)}
}

// peerDiff names the fields in which a and b differ ("" if none).
func peerDiff(a, b config.Peer) string {
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
