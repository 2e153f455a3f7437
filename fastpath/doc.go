// Package fastpath is vxtun's forwarder: the routing table (longest-prefix
// match of the inner destination to a peer, in fastpath/routing), the
// TUN→encap→UDP and UDP→decap→TUN pipelines, batched UDP I/O (in
// fastpath/udp) and drop accounting.
//
// It may import encap (wire formats), tun (the device interface), config
// (peer data and its validation, Peer.Check), x/sys and x/net; never
// registry or anything above it. The node wraps a Forwarder as its
// userspace dataplane (New, SetPeers, Run, Stats, Overhead, Close).
//
// # Files
//
// One job per file, in the order packets pass through them:
//
//	forwarder.go     Forwarder: New, SetPeers, Run, Stats, Close
//	encapsulation.go the wire format, chosen once in New: vxlanEncap or
//	                 legacyUDP (overhead, encap into headroom, decap/check)
//	worker.go        a worker, its per-direction state and buffers
//	poll.go          the wait loop: per-direction tokens, the spinner
//	outbound.go      TUN read → route → encap → group by peer → GSO → sendmmsg
//	inbound.go       recvmmsg → peer check → decap → TUN write
//	filter.go        inner source the peer's, destination ours (inbound)
//	underlay6.go     a second, IPv6 underlay next to the IPv4 one
//	                 (Config.ListenAddr6): per-worker IPv6 sockets and
//	                 inbound goroutine, outbound messages sent by family
//	icmp.go          ICMP errors, fragmentation of non-DF IPv4, too-big answers
//	icmplimit.go     the kernel's ICMP rate limits (global, per destination)
//	arp.go           the ARP responder (VXLAN)
//	csum.go          completing partial inner checksums
//	drops.go         drop reasons and counters, per-peer counters
//	localcpu.go      Config.LocalCPUs: owners pinned, one CPU per worker
//
// Header fields are read through encap's views (encap.IPv4(pkt).Dst(), ...),
// never by raw offsets, and the pipeline never asks which backend it runs:
// it asks its encapsulation.
//
// # Pipeline
//
// A Forwarder has one worker per TUN queue; each worker owns its queue, a
// receiving UDP socket (SO_REUSEPORT, all bound to the same address), a
// send-only socket on a port of its own, and all its buffers, allocated in
// New. With Config.ListenAddr6 each worker also has an IPv6 socket pair and
// a second inbound goroutine (underlay6.go); a peer's public IP picks the
// family. Packets move between stages as vectors of
// buffers, never one at a time, and nothing is allocated or locked per packet
// in steady state (TestPipelineZeroAllocs asserts it).
//
// Outbound (one goroutine per worker): tun.Device.Read fills a batch with
// packets at offset Headroom (a TSO super-packet arrives split into
// MSS-sized segments) → route lookup on the snapshot loaded once per batch →
// encapsulation in place: the VXLAN and inner Ethernet headers are written
// into the headroom in front of each packet (legacy UDP mode sends the IP
// packet as it is) → the batch is grouped by peer, keeping order within a
// peer → udp.AppendGSO turns each peer's run of equal-size segments into one
// UDP GSO message whose segments are a gather list (no payload copy) → one
// sendmmsg.
//
// Inbound (one goroutine per worker): recvmmsg into 64 KiB buffers; a UDP
// GRO message is cut at its segment size → outer source must be a known
// peer → decapsulation; for VXLAN the checks are (I flag, flags and reserved bits, GBP tolerated, VNI,
// inner destination MAC ours, or broadcast for ARP) → the address filter:
// the inner source must lie in the sending peer's subnets (looked up in the
// batch's routing snapshot: the owning route must have the datagram's
// underlay address) and the destination must be a unicast address of
// Config.Subnets, else spoofed_source / foreign_destination → the inner packet is
// trimmed to its IP length and handed to tun.Device.Write in place (the slice
// starts at the VXLAN header, which serves as headroom), so the TUN's GRO
// coalesces it back into super-packets without a copy here.
//
// ARP requests for Config.VtepIP are answered, encapsulated back to the
// asking peer, so a kernel vxlan peer without a static neighbour entry works.
// An unroutable destination gets ICMP net unreachable (ICMPv6 no route)
// written back into the TUN; a packet that would not fit the underlay MTU
// after encapsulation gets ICMP fragmentation needed (IPv4 with DF set) or
// ICMPv6 packet too big, carrying the largest inner size that fits (also when
// the kernel refuses a send as too big because the path MTU to the peer has
// shrunk below UnderlayMTU: the size then comes from udp.Conn.PathMTU); an IPv4
// packet without DF is fragmented instead, as a router would (RFC 791; a
// header with options is dropped as too big; so is one refused by the
// kernel for a shrunken path MTU, as it was already encapsulated). The
// errors' source address is the node's own overlay address (the first of
// Config.Subnets of the family, <subnet>.0, the TUN's address); the kernel
// drops a packet with one of its own addresses as source unless accept_local
// is set on the TUN, which the dataplane does. ICMP errors pass the
// kernel's rate limits (icmplimit.go, Config.ICMP): a global token bucket
// (atomics) and one per destination (a map under a mutex: the only lock,
// taken only when an error is made); suppressed ones count as
// icmp_ratelimited.
//
// Inner checksums: a Linux sender whose packets never pass a NIC (kernel
// vxlan over veth) leaves the inner TCP/UDP checksum partial (pseudo-header
// sum only). Such checksums are recognised and completed before the TUN
// write; others are left to the kernel to verify.
//
// Outer source port: each worker sends from a send-only socket of its own
// (udp.Options.SendOnly) on an ephemeral port, so one peer's traffic leaves
// from as many source ports as there are workers (Forwarder.SourcePorts).
// The kernel already spreads inner flows over the TUN queues, i.e. the
// workers (by a flow hash: tun's steering program, so a flow keeps its
// worker whichever worker receives its replies; see the tun package doc),
// so the port is a per-worker flow hash in the sense of RFC 7348
// §5: the receiver's SO_REUSEPORT group and ECMP in the underlay spread one
// peer's flows by worker. Receivers (vxtun and the kernel) check the source
// address only, never the port. Config.SharedSourcePort sends from the
// listen port (8472, 4789 or 8285) instead, as before.
//
// # Waiting
//
// Each direction of a worker (TUN queue → outbound, socket → inbound) has
// an owner goroutine (the "one goroutine per worker" above) and a token
// (dir.mu in poll.go). Whoever holds the token reads the direction without
// waiting (tun.Queue.TryRead, udp.Conn.TryReadBatch) and handles the
// batch; the owner sleeps in the runtime poller (WaitRead) only without
// the token and only after its own read found the direction empty, so a
// packet that arrives later always wakes it. A goroutine whose direction
// went empty may become the process's one spinner (only with GOMAXPROCS >
// 1): it reads, in turn, its own direction and every direction of its
// forwarder whose owner sleeps (a busy owner keeps its work, so under load
// the directions stay spread over their goroutines and CPUs), yielding the
// CPU (sched_yield; not runtime.Gosched, see spinPoll) after each empty round, until Config.IdleSpin has passed since the last batch —
// or, with Config.BusyPoll, until Run ends. Without either (the default)
// no goroutine spins: an owner whose direction is empty sleeps at once. The owner sets dir.kick
// before trying for the token, and a spinner that held it reads again
// after letting go, so a wake-up the owner took while the spinner held the
// token is not lost; and WaitRead first asks the kernel (ppoll, no wait)
// whether something is queued, since the runtime poller forgets readiness
// it saw before the wait began. With a spinner running, a reply (a ping's, a TCP
// ACK) that comes back shortly after a packet went out, and the packet the
// kernel queues in the TUN while the inbound side writes (the local echo
// reply), is read by a goroutine that is already running instead of one
// that must be woken — on a VM often a halted vCPU.
//
// An owner that goes to sleep while a spinner runs sleeps off the poller
// (on dir.wake), not on its direction's readiness: a packet the spinner
// reads then wakes nobody. The spinner wakes it to take its direction back
// when it finds the direction non-empty handBack times in a row (a stream,
// not a lone ping or ACK: under load the directions spread over their
// goroutines and CPUs again), and wakes all of them when it stops. With
// Config.BusyPoll or IdleSpin the worker's sockets are also kept out of the runtime
// poller (udp.Options.Unpolled; the dataplane opens the TUN with
// tun.Options.Unpolled), because the runtime's epoll_wait thread would
// otherwise be woken for every datagram and TUN packet, even with no
// goroutine waiting: measured, that thread's wake-ups were the last
// cross-CPU wake-ups on a busy-polled ping's path (p50 60 → 30 µs).
// Owners outside the poller wait in a blocking ppoll of their own thread
// (internal/rawfd).
//
// With Config.PollAhead (and IdleSpin) the spinner does not stop after
// IdleSpin without a batch: it waits itself, in one ppoll (rawfd.Set) for
// its own direction and every direction whose owner sleeps, so the next
// packet wakes one thread, the one that then polls, and the owners stay
// off the poller. It records when bursts start (the first batch after a
// wait); when the gaps between them, or between every second one (a
// request and a late reply), were steady, it ends the wait aheadMargin
// before the next burst is due and polls until aheadMargin after it, so
// that burst finds it polling (pollahead.go). An owner that goes to sleep
// while the spinner waits sleeps on its own descriptor (the spinner's wait
// may have begun without it) and wakes the spinner (a rawfd.Waker in its
// set), which collects its set again with that descriptor in it.
//
// With Config.LocalCPUs (no spinner needed) every owner goroutine locks
// its thread and pins it to its worker's CPU before its first read, and
// waits outside the runtime poller in its own ppoll; the TUN steers an
// outgoing packet to the queue of the CPU that wrote it and the socket
// group hands a datagram to the socket of the CPU that received it, so a
// packet's wake-ups happen on the CPU it is on (localcpu.go). Without a
// spinner one owner goroutine takes all of a worker's directions and waits
// for them in one ppoll (localLoop): the kernel's answer to a packet it
// writes into the TUN (an echo reply, a TCP ACK) is on its queue when the
// write returns, and it reads that next, with no thread woken.
//
// A TUN device without TryRead (the fakes) is read by its owner with a
// blocking Read, as before, and is not polled.
//
// # Routing snapshots
//
// SetPeers builds an immutable routing.Table (routing.Update: incremental
// when only some peers' data changed) and publishes it atomically;
// workers load it once per batch and never lock. A packet routed in both the
// old and the new table is never dropped (the transfer test swaps peers every
// 2 ms during a TCP transfer and asserts zero drops).
//
// # Counters
//
// Each worker direction counts into plain fields during a batch and adds
// them to its own atomics once per batch (no counter is shared between
// goroutines). Per-peer drops are atomics in slots indexed by
// routing.Route.Index, which a peer keeps across SetPeers while it exists:
// at the start of a batch a direction whose table changed lays its slots
// out anew (kept for a peer that stays, fresh for a new one, let go for a
// removed one), or, after an incremental update (routing.Table.SameLayout),
// keeps them as they are without a pass over the peers; a drop is one
// atomic add, no lock, no map. Stats sums them,
// leaving out peers no longer in the peer set. Drop reasons are the Drop*
// constants.
//
// # Lifetime
//
// New opens the sockets in the calling goroutine's network namespace. Run
// may be called once; when its context ends it closes the sockets, waits for
// the inbound goroutines and returns. It does not close the TUN devices: an
// outbound goroutine blocked in Read leaves when its device is closed, or at
// once if the device has a SetReadDeadline method (tun.Queue has; Run clears
// the deadline again before it returns). The spinner checks for the end
// after every round, so shutdown is as prompt while spinning as while
// blocked. Close releases the
// sockets and is idempotent.
//
// fastpath does not import registry: peers arrive as config.Peer values.
package fastpath
