package dataplane

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/hostnet"
)

// Dataplane carries overlay packets between this node and its peers. The
// node opens one with an Opener, gives it peers, runs it, reads its
// counters and closes it. Implementations: the userspace TUN forwarder
// (userspace_linux.go), host-gw (hostgw.go) and DirectRouting over the
// userspace one (directrouting.go); later ones (kernel vxlan) are files
// beside them. dataplanetest has a fake.
type Dataplane interface {
	// SetPeers replaces the whole peer set. It is atomic: on error the
	// previous set stays in force and the error names the offending peer.
	// Safe to call concurrently with Run and Stats (calls are serialised).
	SetPeers(peers []config.Peer) error
	// Run forwards until ctx is done (it then returns nil) or a fatal
	// error stops it. It is called at most once.
	Run(ctx context.Context) error
	// Stats is a snapshot of the counters; safe at any time.
	Stats() Stats
	// Info describes the dataplane for logs and metrics.
	Info() Info
	// Overhead is the number of bytes the dataplane adds around an inner
	// packet on the underlay (0 for routing without encapsulation).
	Overhead() int
	// Close undoes everything Open did (devices, sockets, addresses,
	// routes). Idempotent; call it after Run has returned.
	Close() error
}

// Opener creates a Dataplane from cfg. Everything it changes on the host
// goes through cfg.Host; on error nothing is left behind.
type Opener func(cfg Config) (Dataplane, error)

// Config is what a dataplane needs to know about this node.
type Config struct {
	// NetConf is the cluster's network config (Network, IPv6Network,
	// Backend: type, VNI, port, GBP, DirectRouting).
	NetConf *config.NetConf
	// Subnet and Subnet6 are this node's own overlay subnets; either may
	// be the zero Prefix.
	Subnet, Subnet6 netip.Prefix
	// Underlay is this node's underlay address, interface and MTU.
	Underlay config.Underlay
	// ListenAddr is where the underlay UDP sockets bind.
	ListenAddr netip.AddrPort
	// ListenAddr6, when valid, is a second, IPv6 underlay next to an IPv4
	// ListenAddr (--public-ipv6): the userspace dataplane binds it too and
	// reaches peers with an IPv6 public IP over it.
	ListenAddr6 netip.AddrPort
	// VtepMAC is this node's VTEP MAC (vxlan).
	VtepMAC net.HardwareAddr
	// DeviceName is the overlay device (TUN or kernel vxlan) to create.
	DeviceName string
	// Workers is the number of TUN queues / forwarding workers (0: one per CPU).
	Workers int
	// MTU is the overlay MTU given to the device.
	MTU config.TunMTU
	// BusyPoll makes the userspace dataplane poll its TUN queues and
	// sockets without sleeping (fastpath.Config.BusyPoll): lower latency
	// for up to one CPU while idle. The kernel and host-gw dataplanes
	// ignore it.
	BusyPoll bool
	// BusyPollIdle, with BusyPoll, stops the polling after this long
	// without a packet until the next one (fastpath.Config.IdleSpin): no
	// CPU while idle. 0: the polling never stops.
	BusyPollIdle time.Duration
	// BusyPollAhead, with BusyPollIdle, makes the polling thread wait for
	// all descriptors itself when idle and wake just before a packet of
	// steady-rate traffic is due (fastpath.Config.PollAhead).
	BusyPollAhead bool
	// CPULocal pins worker i to the i-th CPU the process may run on and
	// steers to it the packets written (TUN) and received (socket) on
	// that CPU (fastpath.Config.LocalCPUs, tun.Options.LocalCPUs). The
	// kernel and host-gw dataplanes ignore it.
	CPULocal bool
	// Host makes every change to the host's network state.
	Host hostnet.Host
	// Logger receives rare events (never per packet); nil means slog.Default().
	Logger *slog.Logger
}

// Info describes an open dataplane.
type Info struct {
	Kind     string // "userspace", "host-gw", "userspace+direct-routing", later "kernel"
	Device   string // overlay device name
	Listen   string // underlay listen address, if any
	Offloads string // device offloads, if any
	Workers  int
}

// Stats is a snapshot of a dataplane's counters.
type Stats struct {
	// Packets and bytes count inner IP packets and their IP length (no
	// encapsulation overhead), so Tx of one node matches Rx of its peer.
	TxPackets, TxBytes uint64
	RxPackets, RxBytes uint64
	// Drops counts dropped packets by reason.
	Drops map[string]uint64
	// PeerDrops counts drops by peer name and reason, where there is a peer.
	PeerDrops map[string]map[string]uint64
	// DeviceBadFrames and DeviceWriteErrors are the overlay device's own
	// error counters (TUN: frames it could not parse, failed writes).
	DeviceBadFrames, DeviceWriteErrors uint64
	// DeviceOversizeGSO counts inner packets above the device MTU (a
	// kernel peer's tunnelled GSO super-packets arrive whole) written as
	// GSO super-packets, so the kernel segments them instead of dropping
	// them when it forwards.
	DeviceOversizeGSO uint64
	// DeviceGROBadChecksum counts inner packets the TUN's coalescer would
	// not merge because a checksum it would rewrite was wrong; they are
	// written alone, as received, and the kernel drops them.
	DeviceGROBadChecksum uint64
	// Losses the kernel has on the dataplane's behalf, which no drop
	// reason above sees: UDPRxQueueOverflows counts datagrams the kernel
	// dropped for a full receive buffer of the dataplane's sockets
	// (SO_RXQ_OVFL, summed over sockets); TunTxDropped counts packets
	// routed into the TUN that the kernel dropped because its queue to the
	// reader was full, TunRxDropped packets written to the TUN that the
	// kernel dropped on input (the link's tx_dropped / rx_dropped).
	UDPRxQueueOverflows, TunTxDropped, TunRxDropped uint64
	// Waits counts the times a userspace dataplane's forwarding goroutine
	// blocked until its TUN queue or socket was readable (each ends in a
	// thread's wake-up); PollAheadWakes and PollAheadHits count the
	// --busy-poll-ahead spinner's timed wake-ups ahead of a predicted
	// burst and the bursts they found polling (fastpath.Stats). 0 for the
	// kernel's dataplanes.
	Waits, PollAheadWakes, PollAheadHits uint64
}
