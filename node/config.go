package node

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/registry"
)

// DefaultVtepMACFile keeps the VTEP MAC when the peer source leases the
// subnet (etcd mode) and neither the node file nor Config.VtepMACFile
// names a file: such a node may run without a node file.
const DefaultVtepMACFile = "/var/lib/vxtun/vtep-mac"

// Config is every setting of a node, already parsed (cmd/vxtun builds it
// from flags and environment). Zero values mean "not set".
type Config struct {
	// NetConfFile is flannel's net-conf.json. Empty: read it from the peer
	// source when it keeps one (etcd), else config.DefaultNetConfPath.
	NetConfFile string
	// NodeFile is the node settings file. Empty: the node is described by
	// PublicIP and Iface alone.
	NodeFile string
	// Registry chooses the peer source.
	Registry registry.Settings

	// Overrides of the node file's settings.
	PublicIP    netip.Addr // with it, Iface only names the interface
	PublicIPv6  netip.Addr // a second, IPv6 underlay (with EnableIPv6)
	Iface       string     // alone: the interface's first IPv4 address is the public IP
	TunName     string
	Workers     int
	SubnetFile  string
	ListenPort  uint16
	VtepMACFile string // replaces the node file's VtepMAC and VtepMACFile

	// SkipForwardRules leaves the host firewall alone. By default the node
	// installs rules that accept forwarded traffic from and to the pod
	// networks (flanneld's --iptables-forward-rules), so that a FORWARD
	// policy of DROP (as Docker leaves hosts) does not cut pod traffic.
	SkipForwardRules bool
	// IPMasq turns on flanneld's --ip-masq (as the node file's IPMasq
	// does): masquerade pod traffic that leaves the pod network, and
	// FLANNEL_IPMASQ=true in subnet.env.
	IPMasq bool

	// SkipPeerFilter leaves datagrams from non-peers to the socket (where
	// the dataplane drops them as unknown_source). By default the node
	// drops them in the kernel (hostnet.Host.SetPeerFilter), kept in sync
	// with the peer set, so that a flood from elsewhere does not cost the
	// sockets' time.
	SkipPeerFilter bool

	// BusyPoll trades idle CPU for latency in the userspace dataplane:
	// one goroutine keeps polling the TUN queues and sockets instead of
	// sleeping (dataplane.Config.BusyPoll). Other dataplanes ignore it.
	BusyPoll bool
	// BusyPollIdle, with BusyPoll, stops the polling after this long
	// without a packet until the next one (0: polling never stops).
	BusyPollIdle time.Duration
	// BusyPollAhead, with BusyPollIdle, keeps one thread waiting for all
	// descriptors when idle and waking ahead of steady-rate packets
	// (dataplane.Config.BusyPollAhead).
	BusyPollAhead bool
	// CPULocal runs each userspace worker on one CPU, taking the packets
	// written and received there (dataplane.Config.CPULocal).
	CPULocal bool

	// DebugAddr serves /metrics and /healthz on host:port (empty: off).
	// The caller decides whether a non-loopback address is allowed; the
	// node warns when it is not loopback.
	DebugAddr string
	// DebugPprof adds the pprof handlers under /debug/pprof/ to the debug
	// server.
	DebugPprof bool
	// HealthzAddr serves flanneld's liveness endpoint on host:port (empty:
	// off): /healthz answers 200 while the node runs, from before it has a
	// lease or peers (the debug server's /healthz waits for forwarding),
	// and nothing else is served there.
	HealthzAddr string
	// Version is reported in the "vxtun running" line and vxtun_info.
	Version string
	// Logger receives the node's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Reload delivers reload requests (cmd sends one per SIGHUP): the peer
	// source re-reads its input if it is a registry.Reloader.
	Reload <-chan struct{}
	// Started, if set, is called each time the node forwards: after the
	// dataplane took its first peer set and subnet.env was written, just
	// before the "vxtun running" line (cmd releases held-back log lines).
	Started func()

	// Dataplane picks the dataplane when Opener is nil: dataplane.KindAuto
	// (also ""), KindUserspace or KindKernel (opener.go; the host-gw
	// backend has its own, DirectRouting wraps the userspace one).
	Dataplane string
	// Opener opens the dataplane; nil means the one for the backend and
	// Dataplane (opener.go), and then Check defaults to its check.
	Opener dataplane.Opener
	// Check, if set, is called with the dataplane's config before the peer
	// source is contacted, so that a missing device driver or a port in
	// use fails the start early.
	Check func(dataplane.Config) error
	// NewHost returns the host-network changer a dataplane gets (one per
	// dataplane; the dataplane closes it). nil means hostnet.New on Linux.
	NewHost func() hostnet.Host
	// NewSource creates the peer source; nil means registry.New (tests
	// substitute a fake).
	NewSource func(registry.Settings, registry.Node) (registry.Source, error)
}

// withDefaults fills in the defaults of the hooks.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NewHost == nil {
		c.NewHost = defaultHost
	}
	if c.NewSource == nil {
		c.NewSource = registry.New
	}
	if c.Version == "" {
		c.Version = "devel"
	}
	return c
}
