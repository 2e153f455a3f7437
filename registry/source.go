package registry

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/vxtun/vxtun/config"
)

// EventType says what happened to a peer.
type EventType int

// Peer events.
const (
	PeerAdded EventType = iota + 1
	PeerUpdated
	PeerRemoved
)

func (t EventType) String() string {
	switch t {
	case PeerAdded:
		return "add"
	case PeerUpdated:
		return "update"
	case PeerRemoved:
		return "remove"
	}
	return "unknown"
}

// Event is one change to the peer set; peers are keyed by Peer.Name.
type Event struct {
	Type EventType
	Peer config.Peer
}

// Update is what a Source emits: either a full snapshot (Full true: Peers is
// the whole current set, replacing everything known before) or incremental
// Events, or Rejected: the source's input was refused (a bad peers file) and
// the set in force stays; the receiver counts it (the source has logged
// why).
type Update struct {
	Full     bool
	Peers    []config.Peer
	Events   []Event
	Rejected error
}

// Source is where peers come from. Run emits a full snapshot first, then
// updates, until ctx is done; it owns the updates it sends (receivers must
// not modify them). Run returns ctx.Err() on cancellation or a fatal error.
type Source interface {
	Run(ctx context.Context, out chan<- Update) error
}

// Apply folds u into set (keyed by peer name) and returns the peers sorted by
// name, ready for fastpath.Forwarder.SetPeers.
func Apply(set map[string]config.Peer, u Update) []config.Peer {
	if u.Rejected != nil {
		return sortedPeers(set)
	}
	if u.Full {
		clear(set)
		for _, p := range u.Peers {
			set[p.Name] = p
		}
	}
	for _, ev := range u.Events {
		switch ev.Type {
		case PeerAdded, PeerUpdated:
			set[ev.Peer.Name] = ev.Peer
		case PeerRemoved:
			delete(set, ev.Peer.Name)
		}
	}
	return sortedPeers(set)
}

// sortedPeers returns the peers of set sorted by name.
func sortedPeers(set map[string]config.Peer) []config.Peer {
	out := make([]config.Peer, 0, len(set))
	for _, p := range set {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b config.Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// peerEqual reports whether a and b describe the same peer identically.
func peerEqual(a, b config.Peer) bool {
	return a.Name == b.Name && a.PublicIP == b.PublicIP && a.Port == b.Port &&
		a.Backend == b.Backend && a.VNI == b.VNI && bytes.Equal(a.VtepMAC, b.VtepMAC) &&
		slices.Equal(a.Subnets, b.Subnets)
}

// send delivers u on out unless ctx ends first.
func send(ctx context.Context, out chan<- Update, u Update) error {
	select {
	case out <- u:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
