package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vxtun/vxtun/config"
)

// directRouting is vxlan with DirectRouting: an encapsulating dataplane
// (the userspace one) that knows every peer, plus a direct kernel route
// (as host-gw) for each peer whose public IP is on-link on the underlay
// interface. The route is more specific than the Network route through
// the TUN, so the kernel sends such a peer's traffic itself, unencapsulated;
// everything else enters the TUN and is encapsulated. Inbound VXLAN from a
// direct peer (one that does not route directly to us, e.g. a flanneld
// without DirectRouting) is still accepted: the inner dataplane knows it.
type directRouting struct {
	inner Dataplane
	rt    *peerRouter
	log   *slog.Logger

	mu    sync.Mutex // serialises SetPeers and the periodic re-check
	peers []config.Peer
}

// DirectRoutingOwner is DirectRouting's route set in its hostnet.Host.
const DirectRoutingOwner = "direct-routing"

// OpenDirectRouting is the Opener of vxlan with DirectRouting over the
// userspace dataplane.
func OpenDirectRouting(cfg Config) (Dataplane, error) {
	return OpenDirectRoutingWith(OpenUserspace)(cfg)
}

// OpenDirectRoutingWith returns an Opener of DirectRouting over the
// encapsulating dataplane that inner opens (it shares inner's
// cfg.Host, which inner's Close closes, removing the routes too).
func OpenDirectRoutingWith(inner Opener) Opener {
	return func(cfg Config) (Dataplane, error) {
		if cfg.Host == nil {
			return nil, errors.New("open direct routing: Host is required")
		}
		if cfg.Underlay.Iface == "" {
			_ = cfg.Host.Close()
			return nil, fmt.Errorf("DirectRouting needs the underlay interface (public IP %s is on no local interface; set Iface)", cfg.Underlay.IP)
		}
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		host := cfg.Host
		dp, err := inner(cfg)
		if err != nil {
			return nil, err
		}
		return &directRouting{inner: dp, log: log, rt: newPeerRouter(host, DirectRoutingOwner, cfg.Underlay.Iface, log)}, nil
	}
}

// SetPeers gives the inner dataplane every peer, then routes the on-link
// ones directly. If the routes cannot be set (the Host failed, not a
// single route), the inner dataplane gets the previous set back.
func (d *directRouting) SetPeers(peers []config.Peer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.inner.SetPeers(peers); err != nil {
		return err
	}
	if err := d.routeLocked(peers); err != nil {
		if rerr := d.inner.SetPeers(d.peers); rerr != nil {
			d.log.Error("restore the previous peers", "err", rerr)
		}
		return fmt.Errorf("set peers: %w", err)
	}
	d.peers = peers
	return nil
}

func (d *directRouting) routeLocked(peers []config.Peer) error {
	direct, refused, err := d.rt.apply(peers)
	if err != nil {
		return err
	}
	moved := d.rt.record(peers, direct, refused, slog.LevelDebug, false)
	for _, name := range moved {
		if direct[name] {
			d.log.Info("peer on our underlay subnet: routed directly", "peer", name)
		} else {
			d.log.Info("peer no longer on-link: routed through VXLAN", "peer", name)
		}
	}
	return nil
}

// Run runs the inner dataplane and re-applies the direct routes every
// recheckInterval. It returns what the inner Run returns.
func (d *directRouting) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.inner.Run(ctx) }()
	t := time.NewTicker(recheckInterval)
	defer t.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-t.C:
			d.mu.Lock()
			if err := d.routeLocked(d.peers); err != nil {
				d.log.Warn("re-apply direct routes", "err", err)
			}
			d.mu.Unlock()
		}
	}
}

func (d *directRouting) Stats() Stats { return d.inner.Stats() }

func (d *directRouting) Info() Info {
	i := d.inner.Info()
	i.Kind += "+direct-routing"
	return i
}

func (d *directRouting) Overhead() int { return d.inner.Overhead() }

// Close closes the inner dataplane, which closes the Host (routes included).
func (d *directRouting) Close() error { return d.inner.Close() }

// DirectPeers returns the names of the peers routed directly (tests, demo).
func DirectPeers(dp Dataplane) []string {
	switch d := dp.(type) {
	case *directRouting:
		return d.rt.directNames()
	case *hostGW:
		return d.rt.directNames()
	}
	return nil
}
