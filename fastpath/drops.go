package fastpath

import "sync/atomic"

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
)

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
}

// dirCounters are one direction of one worker. Only that direction's
// goroutine adds to them (once per batch, from a batchCounts), so the atomics
// are never contended; Stats reads them.
type dirCounters struct {
	packets, bytes atomic.Uint64
	drops          [numDrops]atomic.Uint64
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
