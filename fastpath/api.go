package fastpath

import (
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vxtun/vxtun/config"
)

// Config is what a Forwarder needs to know about this node.
// (Contract shared by cmd/vxtun, bench and tests; the pipeline owner may add
// fields but should not rename these.)
type Config struct {
	// Backend selects VXLAN or flannel legacy UDP encapsulation.
	Backend config.Backend
	// VNI is our VXLAN network identifier (vxlan only).
	VNI uint32
	// ListenAddr is the local underlay address and port the UDP sockets
	// bind (port 0 means the backend default: 8472 vxlan, 8285 udp).
	ListenAddr netip.AddrPort
	// ListenAddr6, when valid, is a second, IPv6 underlay next to an IPv4
	// ListenAddr (--public-ipv6; port 0 means ListenAddr's): every worker
	// also receives and sends on sockets bound to it, for the peers whose
	// public IP is IPv6 (underlay6.go). The zero value: one underlay.
	ListenAddr6 netip.AddrPort
	// VtepMAC is our VTEP MAC: inner source MAC we send, inner destination
	// MAC we accept (vxlan only).
	VtepMAC net.HardwareAddr
	// VtepIP is our overlay address (<own subnet>.0); ARP requests for it are
	// answered (vxlan only).
	VtepIP netip.Addr
	// Subnets are this node's own overlay subnets (IPv4 and/or IPv6). An
	// inner packet from a peer is written to the TUN only if its
	// destination is a unicast address of one of them (and its source lies
	// in that peer's subnets); with none, every inner IP packet from peers
	// is dropped as foreign_destination. The first subnet of each family
	// gives the source address of the ICMP errors the forwarder makes
	// (<subnet>.0, the TUN's address).
	Subnets []netip.Prefix
	// ICMP limits the rate of the ICMP errors the forwarder writes into the
	// TUN (the zero value: the kernel's defaults).
	ICMP ICMPLimits
	// UnderlayMTU is the MTU of the underlay link; packets that would not
	// fit after encapsulation are answered with ICMP "fragmentation needed".
	UnderlayMTU int
	// SharedSourcePort sends from the listening sockets, so every
	// datagram leaves from the listen port (the behaviour before per-worker
	// ports; for underlay firewalls that expect it). By default each
	// worker sends from a socket of its own on an ephemeral port.
	SharedSourcePort bool
	// BusyPoll keeps one goroutine polling the TUN queues and sockets
	// without waiting, yielding the CPU between empty rounds, for as long
	// as the forwarder runs: lower and steadier latency for up to one CPU
	// while idle. The other goroutines then sleep off the runtime poller and
	// the sockets are opened outside it (udp.Options.Unpolled; open the TUN
	// with tun.Options.Unpolled too), so a packet wakes no thread. Without
	// it the goroutines sleep in the runtime poller as soon as their
	// direction is empty, unless IdleSpin is set. One spinner per process.
	BusyPoll bool
	// IdleSpin, when positive, is BusyPoll until no packet has come for
	// that long: then the goroutines sleep (outside the runtime poller, as
	// with BusyPoll) until the next packet, and polling starts again after
	// it — no CPU while idle (vxtun run --busy-poll --busy-poll-idle). 0 or
	// negative: no polling, the default. Measured with 3 × 1 000 pings at
	// 1 ms: 5 ms gave p50 23–24 µs, as BusyPoll; 50–400 µs ended before the
	// next probe and did not lower it. BusyPoll overrides it.
	IdleSpin time.Duration
	// PollAhead, with IdleSpin, keeps the spinner after IdleSpin without a
	// packet: it waits for the next one itself, in one wait for all the
	// directions, instead of handing them back to their owners, and when
	// packets come at a steady rate it ends that wait just before the next
	// is due, so it is polling when it comes (pollahead.go).
	PollAhead bool
	// LocalCPUs, one CPU per worker (TUN queue), runs worker i's owner
	// goroutine (one per direction with a spinner) on CPU LocalCPUs[i]
	// only, on a thread of its own that waits outside the runtime poller,
	// and makes the receiving sockets' SO_REUSEPORT group hand a datagram
	// to the socket of the CPU it is received on (udp.Options.LocalCPUs). Open the TUN with the same
	// tun.Options.LocalCPUs (and Unpolled), so that a packet is read on
	// the CPU that wrote it: a packet's wake-ups stay on one CPU
	// (localcpu.go). nil: no pinning, hash selection. A length other than
	// the number of workers is an error.
	LocalCPUs []int
	// Logger receives rare events (never per packet). nil means slog.Default().
	Logger *slog.Logger
}

// Spins reports whether c has a spinner (BusyPoll or IdleSpin).
func (c Config) Spins() bool { return c.BusyPoll || c.IdleSpin > 0 }

// Unpolled reports whether c's sockets are opened outside the runtime
// poller (a spinner, or LocalCPUs), as its TUN queues should be
// (tun.Options.Unpolled).
func (c Config) Unpolled() bool { return c.Spins() || len(c.LocalCPUs) > 0 }

// Stats is a snapshot of the forwarder's counters.
type Stats struct {
	// Packets and bytes count inner IP packets and their IP length (no
	// encapsulation overhead), so Tx of one node matches Rx of its peer.
	TxPackets, TxBytes uint64 // encapsulated and sent to the underlay
	RxPackets, RxBytes uint64 // decapsulated and written to the TUN
	// Drops counts dropped packets by reason (see the Drop* constants).
	Drops map[string]uint64
	// PeerDrops counts drops by peer name and reason, where there is a
	// peer, for the peers of the current peer set (a peer removed by
	// SetPeers leaves it; one that stays keeps its counts).
	PeerDrops map[string]map[string]uint64
	// UDPRxQueueOverflows is the sum over the workers' sockets of the
	// datagrams the kernel dropped for a full receive buffer
	// (udp.Conn.RxQueueOverflows): loss before any Drop* reason applies.
	UDPRxQueueOverflows uint64
	// Waits counts the times a forwarding goroutine blocked until a TUN
	// queue or socket was readable (an owner's wait for its direction, the
	// poll-ahead spinner's wait for several): each ends in a thread's
	// wake-up, the latency a packet pays when nothing is polling, so
	// Waits against the packet counts shows how often packets had to wake
	// the dataplane.
	Waits uint64
	// AheadWakes counts the poll-ahead spinner's waits that ended at their
	// timeout, ahead of a predicted burst, and AheadHits the bursts that
	// then found it polling (Config.PollAhead; 0 without).
	AheadWakes, AheadHits uint64
}

// The pipeline implements, in this package (signatures are the contract used
// by cmd/vxtun and bench):
//
//	// New creates a forwarder with one worker per TUN queue in devs; each
//	// worker opens its own UDP socket (SO_REUSEPORT) bound to
//	// cfg.ListenAddr in the calling goroutine's network namespace.
//	func New(cfg Config, devs []tun.Device) (*Forwarder, error)
//	// SetPeers atomically replaces the routing snapshot; invalid peers are
//	// an error and leave the old table in place.
//	func (f *Forwarder) SetPeers(peers []config.Peer) error
//	// Run forwards until ctx is done or a fatal error occurs, then stops all
//	// workers; it does not close devs.
//	func (f *Forwarder) Run(ctx context.Context) error
//	func (f *Forwarder) Stats() Stats
//	// Overhead is the bytes the encapsulation adds on the underlay the
//	// sockets are bound to (50/70 VXLAN, 28/48 legacy UDP).
//	func (f *Forwarder) Overhead() int
//	// Close releases sockets (idempotent).
//	func (f *Forwarder) Close() error
