package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vxtun/vxtun/dataplane"
)

// Metrics is what /metrics reports: a snapshot taken at scrape time.
type Metrics struct {
	Version string
	Backend string
	Tun     string
	Stats   dataplane.Stats
	Peers   int

	PeerUpdates      uint64 // peer sets applied
	PeerUpdateErrors uint64 // peer sets the dataplane or the source rejected
	Restarts         uint64 // dataplane restarts (the lease moved)
	PeerFilterDrops  uint64 // datagrams from non-peers dropped in the kernel
	// SkippedLeases are the leases the peer source logged and skipped as
	// unusable, by reason (registry.SkipCounter; nil for a source that
	// does not count them).
	SkippedLeases map[string]uint64

	// Forwarding: a dataplane runs with its peers and subnet.env is
	// written (/healthz answers 200).
	Forwarding bool
}

// Metrics returns the node's counters and the current dataplane's Stats.
// Safe at any time, from any goroutine.
func (n *Node) Metrics() Metrics {
	m := Metrics{
		Version:          n.cfg.Version,
		Peers:            int(n.peers.Load()),
		PeerUpdates:      n.updates.Load(),
		PeerUpdateErrors: n.rejected.Load(),
		Restarts:         n.restarts.Load(),
		Forwarding:       n.forwarding.Load(),
	}
	if hr := n.host.Load(); hr != nil && hr.h != nil && !n.cfg.SkipPeerFilter {
		if d, err := hr.h.PeerFilterDrops(); err == nil {
			m.PeerFilterDrops = d
		}
	}
	if sr := n.skips.Load(); sr != nil {
		m.SkippedLeases = sr.c.SkippedLeases()
	}
	m.Backend, _ = n.backend.Load().(string)
	if r := n.cur.Load(); r != nil {
		m.Tun = r.info.Device
		m.Stats = r.dp.Stats()
	}
	return m
}

// The metrics: names, help and label sets are part of vxtun's interface
// (README "/metrics").
var (
	descInfo = prometheus.NewDesc("vxtun_info", "Build and configuration of this daemon.",
		[]string{"version", "backend", "tun"}, nil)
	descTxPackets = counterDesc("vxtun_tx_packets_total", "Packets encapsulated and sent to the underlay.")
	descTxBytes   = counterDesc("vxtun_tx_bytes_total", "Inner bytes encapsulated and sent to the underlay.")
	descRxPackets = counterDesc("vxtun_rx_packets_total", "Packets decapsulated and written to the TUN.")
	descRxBytes   = counterDesc("vxtun_rx_bytes_total", "Inner bytes decapsulated and written to the TUN.")
	descDrops     = prometheus.NewDesc("vxtun_drops_total", "Dropped packets by reason.", []string{"reason"}, nil)
	descPeerDrops = prometheus.NewDesc("vxtun_peer_drops_total", "Dropped packets by peer and reason.",
		[]string{"peer", "reason"}, nil)
	descPeers        = prometheus.NewDesc("vxtun_peers", "Peers in the routing table.", nil, nil)
	descUpdates      = counterDesc("vxtun_peer_updates_total", "Peer sets applied to the routing table.")
	descUpdateErrors = counterDesc("vxtun_peer_update_errors_total", "Peer sets rejected (the previous table stayed).")
	descFilterDrops  = counterDesc("vxtun_peer_filter_drops_total", "Datagrams to the underlay port from non-peers, dropped in the kernel by the peer filter.")
	descBadFrames    = counterDesc("vxtun_tun_bad_frames_total", "Frames from the TUN that could not be parsed or split.")
	descWriteErrors  = counterDesc("vxtun_tun_write_errors_total", "Packets the kernel refused on TUN write.")
	descOversizeGSO  = counterDesc("vxtun_tun_oversize_gso_total", "Inner packets above the TUN MTU written to the TUN as GSO super-packets.")
	descGROBadCsum   = counterDesc("vxtun_tun_gro_bad_checksum_total", "Inner packets with a wrong IPv4 or TCP/UDP checksum written to the TUN unmerged (the kernel drops them).")
	descRxqOverflows = counterDesc("vxtun_udp_rx_queue_overflows_total", "Datagrams the kernel dropped because a vxtun socket's receive buffer was full (SO_RXQ_OVFL).")
	descTunTxDropped = counterDesc("vxtun_tun_tx_dropped_total", "Packets the kernel routed into the TUN but dropped: its queue to vxtun was full (the link's tx_dropped).")
	descTunRxDropped = counterDesc("vxtun_tun_rx_dropped_total", "Packets vxtun wrote to the TUN that the kernel dropped on input (the link's rx_dropped).")
	descWaits        = counterDesc("vxtun_waits_total", "Times a forwarding thread of the userspace dataplane blocked until a TUN queue or socket had a packet; each ends in a wake-up, the latency a packet pays when nothing polls.")
	descAheadWakes   = counterDesc("vxtun_busy_poll_ahead_wakes_total", "Timed wake-ups of the --busy-poll-ahead spinner ahead of a predicted burst.")
	descAheadHits    = counterDesc("vxtun_busy_poll_ahead_hits_total", "Predicted bursts that found the --busy-poll-ahead spinner polling after a timed wake-up.")
	descRestarts     = counterDesc("vxtun_dataplane_restarts_total", "Dataplane restarts (the etcd lease moved to another subnet).")
	descSkipped      = prometheus.NewDesc("vxtun_etcd_skipped_leases_total",
		"etcd leases logged and skipped as unusable, by reason: loop (a public IP inside the network, loopback or this node's, or this node's VTEP MAC), other_backend, subnet (outside the network or overlapping this node's), malformed; counted each time a lease is read.",
		[]string{"reason"}, nil)
	allDescs = []*prometheus.Desc{descInfo, descTxPackets, descTxBytes, descRxPackets, descRxBytes, descDrops, descPeerDrops, descPeers, descUpdates, descUpdateErrors, descFilterDrops, descBadFrames, descWriteErrors, descOversizeGSO, descGROBadCsum, descRxqOverflows, descTunTxDropped, descTunRxDropped, descWaits, descAheadWakes, descAheadHits, descRestarts, descSkipped}
)

func counterDesc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

// collector is a prometheus.Collector that takes one Metrics snapshot per
// scrape: nothing is counted per packet for it.
type collector struct {
	snap func() Metrics
}

// NewCollector returns a collector of vxtun's metrics over snap (e.g.
// (*Node).Metrics), called once per scrape.
func NewCollector(snap func() Metrics) prometheus.Collector { return collector{snap: snap} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.snap()
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v uint64, labels ...string) {
		for i, l := range labels {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD") // peer names come from the registry
		}
		ch <- prometheus.MustNewConstMetric(d, t, float64(v), labels...)
	}
	metric(descInfo, prometheus.GaugeValue, 1, m.Version, m.Backend, m.Tun)
	metric(descTxPackets, prometheus.CounterValue, m.Stats.TxPackets)
	metric(descTxBytes, prometheus.CounterValue, m.Stats.TxBytes)
	metric(descRxPackets, prometheus.CounterValue, m.Stats.RxPackets)
	metric(descRxBytes, prometheus.CounterValue, m.Stats.RxBytes)
	for r, v := range m.Stats.Drops {
		metric(descDrops, prometheus.CounterValue, v, r)
	}
	for p, reasons := range m.Stats.PeerDrops {
		for r, v := range reasons {
			metric(descPeerDrops, prometheus.CounterValue, v, p, r)
		}
	}
	metric(descPeers, prometheus.GaugeValue, uint64(max(m.Peers, 0)))
	metric(descUpdates, prometheus.CounterValue, m.PeerUpdates)
	metric(descUpdateErrors, prometheus.CounterValue, m.PeerUpdateErrors)
	metric(descFilterDrops, prometheus.CounterValue, m.PeerFilterDrops)
	metric(descBadFrames, prometheus.CounterValue, m.Stats.DeviceBadFrames)
	metric(descWriteErrors, prometheus.CounterValue, m.Stats.DeviceWriteErrors)
	metric(descOversizeGSO, prometheus.CounterValue, m.Stats.DeviceOversizeGSO)
	metric(descGROBadCsum, prometheus.CounterValue, m.Stats.DeviceGROBadChecksum)
	metric(descRxqOverflows, prometheus.CounterValue, m.Stats.UDPRxQueueOverflows)
	metric(descTunTxDropped, prometheus.CounterValue, m.Stats.TunTxDropped)
	metric(descTunRxDropped, prometheus.CounterValue, m.Stats.TunRxDropped)
	metric(descWaits, prometheus.CounterValue, m.Stats.Waits)
	metric(descAheadWakes, prometheus.CounterValue, m.Stats.PollAheadWakes)
	metric(descAheadHits, prometheus.CounterValue, m.Stats.PollAheadHits)
	metric(descRestarts, prometheus.CounterValue, m.Restarts)
	for r, v := range m.SkippedLeases {
		metric(descSkipped, prometheus.CounterValue, v, r)
	}
}

// DebugOptions choose what the debug server serves beyond /metrics and
// /healthz.
type DebugOptions struct {
	// Pprof serves the pprof handlers under /debug/pprof/ (heap,
	// goroutines, the command line, CPU profiles): off unless asked for.
	Pprof bool
}

// DebugHandler serves /metrics (Prometheus text, from its own registry
// with only vxtun's collector: no Go or process collectors), /healthz
// (200 "ok" while forwarding, 503 before and after) and, with o.Pprof, the
// pprof handlers under /debug/pprof/.
func DebugHandler(snap func() Metrics, o DebugOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(snap))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !snap().Forwarding {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not forwarding")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	paths := "/metrics /healthz"
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		paths += " /debug/pprof/"
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "vxtun debug endpoint: "+paths)
	})
	return mux
}

// IsLoopbackAddr reports whether a host:port listens on loopback only
// ("localhost" counts; an empty or wildcard host does not).
func IsLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// startDebug serves DebugHandler on Config.DebugAddr.
func (n *Node) startDebug() (stop func(), err error) {
	l, err := net.Listen("tcp", n.cfg.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("debug server: %w", err)
	}
	if !IsLoopbackAddr(n.cfg.DebugAddr) {
		n.log.Warn("THE DEBUG SERVER IS REACHABLE FROM OTHER HOSTS: /metrics and /healthz (and pprof, if enabled) are served to anyone who can connect; bind it to loopback unless the network is trusted",
			"addr", l.Addr().String(), "pprof", n.cfg.DebugPprof)
	}
	n.log.Debug("debug server listening", "addr", l.Addr().String())
	return n.serveHTTP(l, DebugHandler(n.Metrics, DebugOptions{Pprof: n.cfg.DebugPprof}), "debug server"), nil
}
