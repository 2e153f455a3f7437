package fastpath

import (
	"sync/atomic"

	"github.com/vxtun/vxtun/fastpath/routing"
)

// Drop reasons: the keys of Stats.Drops and Stats.PeerDrops.
const (
	// DropNoRoute: no peer owns the inner destination (an ICMP net
	// unreachable goes back into the TUN).
	DropNoRoute = "no_route"
	// DropTooBig: the packet does not fit in the underlay MTU after
	// encapsulation and may not be fragmented (ICMP frag-needed /
	// packet-too-big goes back), or the kernel refused it as too big.
	DropTooBig = "too_big"
	// DropBadHeader: a VXLAN flag or reserved bit that must be zero is set.
	DropBadHeader = "bad_header"
	// DropNoIBit: the VXLAN I flag is clear.
	DropNoIBit = "no_i_bit"
	// DropUnknownVNI: the VNI is not ours.
	DropUnknownVNI = "unknown_vni"
	// DropWrongMAC: the inner destination MAC is not our VTEP MAC (nor
	// broadcast, for ARP).
	DropWrongMAC = "wrong_mac"
	// DropUnknownSource: the outer source address is no known peer.
	DropUnknownSource = "unknown_source"
	// DropShort: a datagram shorter than the headers it must carry, or
	// truncated on receive.
	DropShort = "short"
	// DropBadInner: the inner packet is not a well-formed IPv4/IPv6 packet
	// (or the inner ethertype is neither IP nor ARP).
	DropBadInner = "bad_inner"
	// DropARP: an ARP frame that is not a request for our VTEP address.
	DropARP = "arp"
	// DropSendError: the underlay socket refused the packet.
	DropSendError = "send_error"
	// DropSpoofedSource: the inner source address is not in the subnets
	// of the peer the datagram came from.
	DropSpoofedSource = "spoofed_source"
	// DropForeignDestination: the inner destination is not a unicast
	// address of this node's own subnets (another node's, the underlay
	// address, broadcast, multicast, anything else).
	DropForeignDestination = "foreign_destination"
	// DropICMPRateLimited: an ICMP error the forwarder would have written
	// into the TUN was suppressed by the rate limits (ICMPLimits) or by the
	// cap of 16 errors per outbound batch. It counts
	// errors, not the packets they were about (those count as no_route or
	// too_big).
	DropICMPRateLimited = "icmp_ratelimited"
)

// DropReasons lists every drop reason the forwarder counts, in a fixed
// order (for metrics that show a series per reason from the start).
func DropReasons() []string { return dropNames[:] }

type dropReason uint8

const (
	dropNoRoute dropReason = iota
	dropTooBig
	dropBadHeader
	dropNoIBit
	dropUnknownVNI
	dropWrongMAC
	dropUnknownSource
	dropShort
	dropBadInner
	dropARP
	dropSendError
	dropSpoofedSource
	dropForeignDestination
	dropICMPRateLimited
	numDrops

	// noDrop is the reason of a packet that is not dropped.
	noDrop dropReason = 255
)

var dropNames = [numDrops]string{
	dropNoRoute:       DropNoRoute,
	dropTooBig:        DropTooBig,
	dropBadHeader:     DropBadHeader,
	dropNoIBit:        DropNoIBit,
	dropUnknownVNI:    DropUnknownVNI,
	dropWrongMAC:      DropWrongMAC,
	dropUnknownSource: DropUnknownSource,
	dropShort:         DropShort,
	dropBadInner:      DropBadInner,
	dropARP:           DropARP,
	dropSendError:     DropSendError,

	dropSpoofedSource:      DropSpoofedSource,
	dropForeignDestination: DropForeignDestination,
	dropICMPRateLimited:    DropICMPRateLimited,
}

// dirCounters are one direction of one worker. Only that direction's
// goroutine adds to them (packets, bytes and drops once per batch, from a
// batchCounts; per-peer drops as they happen), so the atomics are never
// contended; Stats reads them.
type dirCounters struct {
	packets, bytes atomic.Uint64
	drops          [numDrops]atomic.Uint64
	// peers are the per-peer drop counters, laid out for the routing table
	// the goroutine last followed.
	peers atomic.Pointer[peerCounters]
}

// peerCounters are one worker direction's per-peer drop counters for one
// routing table: slots[r.Index] counts for route r of table. Immutable once
// published (the counters inside are atomics).
type peerCounters struct {
	table *routing.Table
	slots []*peerSlot // by routing.Route.Index; nil at an unused index
}

// peerSlot counts the drops of one peer, identified by name.
type peerSlot struct {
	name  string
	drops [numDrops]atomic.Uint64
}

// follow lays c's per-peer counters out for table t, unless they already
// are: a route keeps the slot of the same name at its Index (the routing
// Builder keeps a peer's Index across tables), other routes get new zero
// slots, and the slots of peers t no longer has are let go. It runs on c's
// goroutine once per batch, and does work only when the table changed:
// none beyond one small allocation when t has the layout of the table it
// replaces (routing.Table.SameLayout: an incremental update), a pass over
// the routes otherwise.
func (c *dirCounters) follow(t *routing.Table) {
	old := c.peers.Load()
	if old != nil && old.table == t {
		return
	}
	if old != nil && old.table.SameLayout(t) {
		// Same names at the same Indexes (a one-peer change): the slots
		// stay as they are, no pass over the peers.
		c.peers.Store(&peerCounters{table: t, slots: old.slots})
		return
	}
	pc := &peerCounters{table: t, slots: make([]*peerSlot, t.IndexLimit())}
	for _, r := range t.Routes() {
		if old != nil && r.Index < len(old.slots) && old.slots[r.Index] != nil && old.slots[r.Index].name == r.Name {
			pc.slots[r.Index] = old.slots[r.Index]
		} else {
			pc.slots[r.Index] = &peerSlot{name: r.Name}
		}
	}
	c.peers.Store(pc)
}

// peerDrop counts n drops for reason against r, a route of the table c
// last followed. No lock: one atomic add.
func (c *dirCounters) peerDrop(r *routing.Route, reason dropReason, n int) {
	pc := c.peers.Load()
	if pc == nil || r.Index >= len(pc.slots) || pc.slots[r.Index] == nil {
		return
	}
	pc.slots[r.Index].drops[reason].Add(uint64(n))
}

// addPeerDrops adds c's per-peer drops of the peers in live (the current
// table's names) to m, by peer name and reason. Peers no longer routed
// are left out, so their series disappear from Stats.
func (c *dirCounters) addPeerDrops(m map[string]map[string]uint64, live map[string]bool) {
	pc := c.peers.Load()
	if pc == nil {
		return
	}
	for _, sl := range pc.slots {
		if sl == nil || !live[sl.name] {
			continue
		}
		for r := range sl.drops {
			v := sl.drops[r].Load()
			if v == 0 {
				continue
			}
			pm := m[sl.name]
			if pm == nil {
				pm = map[string]uint64{}
				m[sl.name] = pm
			}
			pm[dropNames[r]] += v
		}
	}
}

// batchCounts accumulate one batch without atomics.
type batchCounts struct {
	packets, bytes uint64
	drops          [numDrops]uint64
	any            bool
}

func (b *batchCounts) drop(r dropReason, n int) {
	b.drops[r] += uint64(n)
	b.any = true
}

func (b *batchCounts) flush(c *dirCounters) {
	if b.packets > 0 {
		c.packets.Add(b.packets)
		c.bytes.Add(b.bytes)
		b.packets, b.bytes = 0, 0
	}
	if b.any {
		for r, v := range b.drops {
			if v > 0 {
				c.drops[r].Add(v)
				b.drops[r] = 0
			}
		}
		b.any = false
	}
}
