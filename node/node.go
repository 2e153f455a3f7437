package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/registry"
)

// stopTimeout bounds the wait for a dataplane's Run to return after its
// context was cancelled.
const stopTimeout = 10 * time.Second

// Node is one vxtun node daemon. Create it with New and call Run once.
type Node struct {
	cfg Config
	log *slog.Logger
	src registry.Source // set by resolve

	// Read by the metrics collector at scrape time.
	backend    atomic.Value // string, once the network config is known
	cur        atomic.Pointer[running]
	host       atomic.Pointer[hostRef] // the node's own host (peer filter counter)
	skips      atomic.Pointer[skipRef] // the peer source, if it counts skipped leases
	forwarding atomic.Bool             // a dataplane runs with its peers (/healthz)
	peers      atomic.Int64
	updates    atomic.Uint64
	rejected   atomic.Uint64
	restarts   atomic.Uint64
}

// New checks cfg and returns a node that Run starts.
func New(cfg Config) (*Node, error) {
	if err := checkDataplane(cfg.Dataplane); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	cfg = cfg.withDefaults()
	if _, err := cfg.Registry.Traits(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return &Node{cfg: cfg, log: cfg.Logger}, nil
}

// hostRef holds the node's host (nil off Linux) for the metrics collector.
type hostRef struct{ h hostnet.Host }

// skipRef holds the peer source's skip counters for the metrics collector.
type skipRef struct{ c registry.SkipCounter }

// running is an open dataplane and its Run goroutine.
type running struct {
	dp     dataplane.Dataplane
	info   dataplane.Info
	cancel context.CancelFunc // nil until started
	done   chan struct{}      // closed when Run returned
	err    error              // Run's result, once done is closed
}

// Run resolves the settings (in lease mode: takes the lease), opens the
// dataplane, applies the first peer set, writes subnet.env and forwards
// until ctx is done (it then returns nil after removing what it made), the
// dataplane fails, the peer source fails, or a lease move comes with a
// changed network config. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.HealthzAddr != "" {
		stop, err := n.startHealthz()
		if err != nil {
			return err
		}
		defer stop()
	}
	s, err := n.resolve(ctx)
	if n.src != nil {
		defer closeSource(n.src)
	}
	if err != nil {
		return err
	}
	n.backend.Store(string(s.nc.Backend.Type))
	if n.cfg.DebugAddr != "" {
		stopDebug, err := n.startDebug()
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	host, err := n.openHost(s)
	if err != nil {
		return err
	}
	n.host.Store(&hostRef{host})
	defer n.closeHost(host)
	r, err := n.open(s)
	if err != nil {
		return err
	}

	// The peer source runs for the node's whole life, across dataplane
	// restarts; this goroutine owns the peer set.
	srcCtx, srcCancel := context.WithCancel(ctx)
	updates := make(chan registry.Update, 1)
	srcErr := make(chan error, 1)
	var srcWG sync.WaitGroup
	srcWG.Add(1)
	go func() {
		defer srcWG.Done()
		srcErr <- n.src.Run(srcCtx, updates)
	}()
	defer func() {
		srcCancel()
		srcWG.Wait()
	}()

	var peers []config.Peer
	// The first peer set, before the dataplane forwards.
	select {
	case <-ctx.Done():
		n.stop(r)
		return ctx.Err()
	case err := <-srcErr:
		n.stop(r)
		return fmt.Errorf("peer source: %w", err)
	case u := <-updates:
		for u.Rejected != nil {
			// Counted; the source logged why. Wait for a good one.
			n.rejected.Add(1)
			select {
			case <-ctx.Done():
				n.stop(r)
				return ctx.Err()
			case err := <-srcErr:
				n.stop(r)
				return fmt.Errorf("peer source: %w", err)
			case u = <-updates:
			}
		}
		peers = nextPeers(nil, u)
	}
	logged := false

	var leases <-chan registry.Lease
	if lh, ok := n.src.(registry.LeaseHolder); ok {
		leases = lh.LeaseChanges()
	}
	for {
		if r == nil {
			if r, err = n.open(s); err != nil {
				return err
			}
		}
		if err := n.applyMasq(host, s); err != nil {
			n.stop(r)
			return err
		}
		if err := n.start(r, peers); err != nil {
			n.stop(r)
			return err
		}
		if err := n.setPeerFilter(host, s.port, peers); err != nil {
			n.stop(r)
			return err
		}
		if !logged {
			n.logPeerChanges(nil, peers)
			logged = true
		}
		if err := n.writeSubnetEnv(s); err != nil {
			n.stop(r)
			return err
		}
		n.forwarding.Store(true)
		if n.cfg.Started != nil {
			n.cfg.Started()
		}
		n.log.Info("vxtun running", "version", n.cfg.Version, "backend", s.nc.Backend.Type,
			"tun", r.info.Device, "mtu", s.mtu, "offloads", r.info.Offloads,
			"workers", r.info.Workers, "listen", r.info.Listen,
			"subnet", s.subnet.String(), "network", s.nc.Network.String(), "peers", len(peers),
			"subnet-file", s.node.SubnetFile)

		restart, err := n.loop(ctx, s, r, host, &peers, updates, srcErr, leases)
		n.stop(r)
		if err != nil || !restart {
			if err == nil && ctx.Err() != nil {
				n.log.Info("stopped: removed the TUN device and its addresses and routes", "tun", r.info.Device)
			}
			return err
		}
		r = nil
		n.restarts.Add(1)
	}
}

// loop forwards until shutdown (restart false, err nil), a fatal error, or
// the lease moving to another subnet (restart true; s.subnet is the new one).
func (n *Node) loop(ctx context.Context, s *settings, r *running, host hostnet.Host, peers *[]config.Peer,
	updates <-chan registry.Update, srcErr <-chan error, leases <-chan registry.Lease) (restart bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-r.done:
			// Run returned by itself: stop at once with its error.
			err := r.err
			if err == nil {
				err = errors.New("stopped")
			}
			return false, fmt.Errorf("dataplane: %w", err)
		case err := <-srcErr:
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("peer source: %w", err)
		case u := <-updates:
			if u.Rejected != nil {
				// The source logged why; the peers in force stay.
				n.rejected.Add(1)
				continue
			}
			n.applyUpdate(r.dp, host, s.port, peers, u)
		case <-n.cfg.Reload:
			if rl, ok := n.src.(registry.Reloader); ok {
				// The source logs the outcome: one line per SIGHUP.
				n.log.Debug("SIGHUP: re-reading " + describe(n.src))
				rl.Reload()
			} else {
				n.log.Info("SIGHUP: nothing to reload (peers are watched)", "source", describe(n.src))
			}
		case l := <-leases:
			if l.Subnet == s.subnet && l.Subnet6 == s.subnet6 {
				n.log.Debug("lease confirmed", "lease", l.Name)
				if err := n.writeSubnetEnv(s); err != nil {
					n.log.Error("rewrite subnet.env", "err", err)
				}
				continue
			}
			if err := n.checkLeaseNetConf(s, l.NetConf); err != nil {
				return false, err
			}
			n.log.Warn("our lease moved to another subnet: restarting the dataplane",
				"old", s.subnet.String(), "new", l.Subnet.String())
			s.subnet, s.subnet6 = l.Subnet, l.Subnet6
			return true, nil
		}
	}
}

// openHost makes the host changes that belong to the node rather than to
// one dataplane (they stay across dataplane restarts): the forward-accept
// rules for the pod networks. It returns nil where there is no host
// (off Linux).
func (n *Node) openHost(s *settings) (hostnet.Host, error) {
	h := n.cfg.NewHost()
	if h == nil || n.cfg.SkipForwardRules {
		return h, nil
	}
	var nets []netip.Prefix
	if s.nc.EnableIPv4 {
		nets = append(nets, s.nc.Network)
	}
	if s.nc.EnableIPv6 {
		nets = append(nets, s.nc.IPv6Network)
	}
	if err := h.SetForwardAccept(nets); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("forward rules: %w%s (--iptables-forward-rules=false runs without them)", err, privHint(err))
	}
	n.log.Info("accepting forwarded pod traffic in the host firewall", "networks", fmt.Sprint(nets))
	return h, nil
}

// closeHost undoes what openHost did.
func (n *Node) closeHost(h hostnet.Host) {
	if h == nil {
		return
	}
	if err := h.Close(); err != nil {
		n.log.Warn("remove host firewall rules", "err", err)
	}
}

// open opens a dataplane for the current subnet.
func (n *Node) open(s *settings) (*running, error) {
	cfg := n.dataplaneConfig(s)
	cfg.Host = n.cfg.NewHost()
	open, _ := n.cfg.opener(s.nc)
	dp, err := open(cfg)
	if err != nil {
		return nil, err
	}
	return &running{dp: dp, info: dp.Info(), done: make(chan struct{})}, nil
}

// applyUpdate folds u (not a rejected one) into the set in force, *peers,
// and applies the result: to the dataplane (a refusal keeps the set in
// force, counted and logged), to the peer filter, and to *peers, logging
// who joined, left or changed. Its cost beyond the dataplane's and the
// filter's is what one update of a 5 000-peer set pays in the node
// (BenchmarkApplyUpdate).
func (n *Node) applyUpdate(dp dataplane.Dataplane, host hostnet.Host, port uint16, peers *[]config.Peer, u registry.Update) {
	next := nextPeers(*peers, u)
	if err := dp.SetPeers(next); err != nil {
		n.rejected.Add(1)
		n.log.Error("peer update rejected; keeping the current peers", "err", err)
		return
	}
	if err := n.setPeerFilter(host, port, next); err != nil {
		// The dataplane has the new set; the filter keeps the old one
		// until an update succeeds: new peers' datagrams are dropped
		// meanwhile, so this is an error.
		n.log.Error("peer filter not updated", "err", err)
	}
	n.logPeerChanges(*peers, next)
	*peers = next
	n.peers.Store(int64(len(next)))
	n.updates.Add(1)
	n.log.Debug("peers applied", "peers", len(next))
}

// start gives the dataplane its peers and starts its Run.
func (n *Node) start(r *running, peers []config.Peer) error {
	if err := r.dp.SetPeers(peers); err != nil {
		return err
	}
	n.peers.Store(int64(len(peers)))
	n.updates.Add(1)
	n.cur.Store(r)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.err = r.dp.Run(ctx)
		close(r.done)
	}()
	return nil
}

// stop ends the dataplane's Run (at once if it already returned) and
// closes the dataplane, which removes what it made.
func (n *Node) stop(r *running) {
	n.forwarding.Store(false)
	if r.cancel != nil {
		r.cancel()
		select {
		case <-r.done:
			if r.err != nil {
				n.log.Debug("dataplane ended", "err", r.err)
			}
		case <-time.After(stopTimeout):
			n.log.Warn("dataplane did not stop within " + stopTimeout.String())
		}
	}
	if err := r.dp.Close(); err != nil {
		n.log.Warn("close dataplane", "err", err)
	}
}

// writeSubnetEnv writes subnet.env for the current subnet(s).
func (n *Node) writeSubnetEnv(s *settings) error {
	e := config.SubnetEnvFor(s.nc, s.node, s.subnet, s.subnet6, s.mtu)
	if err := config.WriteSubnetEnv(s.node.SubnetFile, e); err != nil {
		return err
	}
	n.log.Debug("wrote subnet.env", "file", s.node.SubnetFile)
	return nil
}
