// Package node is the vxtun node daemon as a library: Config (every
// setting, already parsed) → New → (*Node).Run.
//
// Run resolves the settings (node file merged with the Config's overrides,
// the network config from its file or the peer source, underlay address
// and MTU, a second, IPv6 underlay (underlay6.go: --public-ipv6), UDP
// port, VTEP MAC), creates the one peer source
// (registry.New), takes the subnet lease if the source is a
// registry.LeaseHolder, opens the dataplane through Config.Opener (by
// default the one for the backend and Config.Dataplane, opener.go: the
// userspace TUN forwarder, the kernel vxlan device, vxlan DirectRouting
// over the userspace one, or host-gw routes), applies peer sets (a rejected
// one leaves the previous one in force and is counted, whether the
// dataplane or the source refused it) and logs who joined, left or changed,
// keeps the host's peer filter (datagrams from non-peers dropped in the
// kernel, hostnet.Host.SetPeerFilter) in step with the peer set, writes subnet.env,
// restarts the dataplane with the new subnet when the lease moves, and
// serves /metrics and /healthz (pprof only with Config.DebugPprof) on
// Config.DebugAddr, and flanneld's liveness /healthz alone on
// Config.HealthzAddr (healthz.go). It stops when its context
// ends, and at once, with the error, when the dataplane or the peer source
// fails. Signals are the caller's: cmd/vxtun cancels the context on
// SIGTERM and sends on Config.Reload on SIGHUP.
//
// Ownership: the Node owns its peer source, the peer set, the lease, its
// own hostnet.Host (forward rules, peer filter) and the dataplane it opened
// (and, through it, the hostnet.Host it gave it); all are released before
// Run returns. subnet.env stays, as with flanneld.
//
// Imports: config, registry, dataplane, hostnet, internal/backoff,
// prometheus client_golang. Not fastpath or tun: the dataplane seam hides
// them.
//
// Peer updates: Run's goroutine keeps the set in force sorted by name and
// folds each update into a copy of it (nextPeers: a few events by binary
// search, no map and no sort; a full set is sorted only when it is not
// already), gives it to the dataplane, then to the peer filter, and logs
// the joins, leaves and changes from one merge pass over the old and new
// sets. At 5 000 peers one peer's change costs the node one copy of the
// set (~0.7 MB) beyond the dataplane's and the filter's work
// (BenchmarkApplyUpdate).
//
// Concurrency: Run's goroutine owns the peer set, the lease and the
// dataplane; the peer source and the dataplane's Run have goroutines of
// their own and talk to it over channels. Metrics (and the /metrics
// collector) may be called from any goroutine: it reads only atomics,
// settings fixed before the debug server starts, the Stats and Info of
// the current dataplane, the host's peer filter counter and the peer
// source's skipped-lease counts (registry.SkipCounter, safe from any
// goroutine).
package node
