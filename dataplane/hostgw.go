package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vxtun/vxtun/config"
)

// hostGW is flannel's host-gw backend: no device, no encapsulation, a
// kernel route per peer through its public IP on the shared L2 underlay.
// The kernel forwards; vxtun only keeps the routes in line with the peers.
type hostGW struct {
	cfg Config
	log *slog.Logger
	rt  *peerRouter

	mu    sync.Mutex // serialises SetPeers and the periodic re-check
	peers []config.Peer

	closeOnce sync.Once
	closeErr  error
}

// HostGWOwner is the host-gw dataplane's route set in its hostnet.Host.
const HostGWOwner = "host-gw"

// ErrHostGWNAT is flanneld's refusal of a node whose public IP is not on
// its interface.
var ErrHostGWNAT = errors.New("your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend")

// OpenHostGW is the Opener of the host-gw dataplane. It changes nothing
// until SetPeers; it owns cfg.Host from here on (Close, or a failed Open,
// closes it).
func OpenHostGW(cfg Config) (Dataplane, error) {
	if cfg.Host == nil || cfg.NetConf == nil {
		return nil, errors.New("open host-gw dataplane: NetConf and Host are required")
	}
	if err := CheckHostGW(cfg); err != nil {
		_ = cfg.Host.Close()
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &hostGW{cfg: cfg, log: log, rt: newPeerRouter(cfg.Host, HostGWOwner, cfg.Underlay.Iface, log)}, nil
}

// CheckHostGW checks, before anything is changed, that host-gw can run:
// the public IP is an address of the underlay interface (routes go out of
// it, and peers route to that address).
func CheckHostGW(cfg Config) error {
	if !cfg.Underlay.Local || cfg.Underlay.Iface == "" {
		return fmt.Errorf("host-gw: %w (public IP %s is on no local interface)", ErrHostGWNAT, cfg.Underlay.IP)
	}
	return nil
}

// SetPeers checks the set (a malformed or foreign peer rejects it, the
// routes stay as they were) and routes every peer whose public IP is
// on-link; the others are refused one by one, logged once and counted
// (PeerDrops reason DropNotOnLink), and the rest keep working.
func (h *hostGW) SetPeers(peers []config.Peer) error {
	if err := checkPeerSet(peers, h.scope()); err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.applyLocked(peers); err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	h.peers = peers
	return nil
}

func (h *hostGW) applyLocked(peers []config.Peer) error {
	direct, refused, err := h.rt.apply(peers)
	if err != nil {
		return err
	}
	h.rt.record(peers, direct, refused, slog.LevelError, true)
	return nil
}

func (h *hostGW) scope() config.PeerScope {
	s := config.PeerScope{Backend: config.BackendHostGW, Network: h.cfg.NetConf, Self: h.cfg.Underlay.IP}
	for _, p := range []netip.Prefix{h.cfg.Subnet, h.cfg.Subnet6} {
		if p.IsValid() {
			s.Own = append(s.Own, p)
		}
	}
	return s
}

// Run re-applies the peer set every recheckInterval (routes deleted behind
// vxtun's back come back; a peer that became on-link is routed) until ctx
// is done.
func (h *hostGW) Run(ctx context.Context) error {
	t := time.NewTicker(recheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.mu.Lock()
			if err := h.applyLocked(h.peers); err != nil {
				h.log.Warn("re-apply peer routes", "err", err)
			}
			h.mu.Unlock()
		}
	}
}

// Stats has only the refusals: the kernel forwards, vxtun counts no packets.
func (h *hostGW) Stats() Stats {
	s := Stats{Drops: map[string]uint64{}}
	h.rt.peerDrops(&s, DropNotOnLink)
	return s
}

func (h *hostGW) Info() Info {
	return Info{Kind: "host-gw", Device: h.cfg.Underlay.Iface}
}

func (h *hostGW) Overhead() int { return 0 }

// Close removes the peer routes. Idempotent.
func (h *hostGW) Close() error {
	h.closeOnce.Do(func() {
		if err := h.cfg.Host.Close(); err != nil {
			h.closeErr = fmt.Errorf("remove peer routes: %w", err)
		}
	})
	return h.closeErr
}

// checkPeerSet checks every peer against scope and the set for duplicate
// names and subnets routed to two peers.
func checkPeerSet(peers []config.Peer, scope config.PeerScope) error {
	names := map[string]bool{}
	subnets := map[netip.Prefix]string{}
	for _, p := range peers {
		if err := p.Check(scope); err != nil {
			return err
		}
		if names[p.Name] {
			return fmt.Errorf("peer %q: duplicate name", p.Name)
		}
		names[p.Name] = true
		for _, sn := range p.Subnets {
			if other, ok := subnets[sn.Masked()]; ok {
				return fmt.Errorf("peer %q: subnet %s is also peer %q's", p.Name, sn, other)
			}
			subnets[sn.Masked()] = p.Name
		}
	}
	return nil
}
