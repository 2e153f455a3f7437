package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/hostnet"
)

// kernelPoll is how often Run reads the device's counters (and notices
// that it has gone).
const kernelPoll = time.Second

// kernel is a kernel vxlan device that vxtun programs exactly as flanneld
// programs flannel.<VNI>; the kernel forwards, vxtun only keeps the
// device's neighbour entries, fdb entries and routes in line with the
// peers.
type kernel struct {
	cfg  Config
	log  *slog.Logger
	dev  hostnet.VXLAN
	info Info

	mu    sync.Mutex // serialises SetPeers; guards peers
	peers []hostnet.VXLANPeer

	statsMu sync.Mutex
	last    hostnet.LinkStats // the last counters read

	closeOnce sync.Once
	closeErr  error
}

// CheckKernel checks, before anything is changed, that the kernel
// dataplane can start: a vxlan network config over IPv4, and the UDP
// port free on every address (the kernel's vxlan socket binds the
// wildcard address).
func CheckKernel(cfg Config) error {
	if err := checkKernelConfig(cfg); err != nil {
		return fmt.Errorf("kernel dataplane: %w", err)
	}
	port := int(cfg.ListenAddr.Port())
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("kernel dataplane: udp port %d is already in use (another vxtun, flanneld or a kernel vxlan device?)", port)
		}
		return fmt.Errorf("kernel dataplane: bind udp port %d: %w", port, err)
	}
	return c.Close()
}

// OpenKernel is the Opener of the kernel dataplane: through cfg.Host it
// creates the vxlan device flannel.<VNI> (KernelDeviceName) as flanneld
// does — VNI, local = the public IP (when it is on this host), dev = the
// underlay interface, dstport = cfg.ListenAddr's port, nolearning, GBP
// from Backend.GBP, MTU cfg.MTU, address cfg.VtepMAC, <subnet>.0/32 — and
// brings it up. It forwards nothing itself. It owns cfg.Host from here
// on: Close, or a failed Open, closes it (which deletes the device).
func OpenKernel(cfg Config) (Dataplane, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Host == nil {
		return nil, errors.New("open kernel dataplane: Host is required")
	}
	if err := checkKernelConfig(cfg); err != nil {
		_ = cfg.Host.Close()
		return nil, fmt.Errorf("open kernel dataplane: %w", err)
	}
	vni := cfg.NetConf.Backend.VNI
	if vni == 0 {
		vni = config.DefaultVNI
	}
	d := hostnet.VXLAN{
		Name:        KernelDeviceName(vni),
		VNI:         vni,
		Dev:         cfg.Underlay.Iface,
		Port:        cfg.ListenAddr.Port(),
		MAC:         cfg.VtepMAC,
		MTU:         int(cfg.MTU),
		GBP:         cfg.NetConf.Backend.GBP,
		Addrs:       []netip.Prefix{netip.PrefixFrom(cfg.Subnet.Masked().Addr(), 32)},
		DisableIPv6: true,
	}
	if cfg.Underlay.Local {
		d.Local = cfg.Underlay.IP
	}
	if err := cfg.Host.AddVXLAN(d); err != nil {
		if cerr := cfg.Host.Close(); cerr != nil {
			log.Warn("undo a failed dataplane start", "err", cerr)
		}
		return nil, fmt.Errorf("open kernel dataplane: %w", err)
	}
	k := &kernel{cfg: cfg, log: log, dev: d, info: Info{
		Kind:     KindKernel,
		Device:   d.Name,
		Listen:   netip.AddrPortFrom(netip.IPv4Unspecified(), d.Port).String(),
		Offloads: "kernel",
	}}
	return k, nil
}

// SetPeers checks the whole set (config.Peer.Check, unique names and
// subnets; the VNI and port must be this node's: one kernel device has
// one of each; IPv4 subnets only) and then makes the device's entries
// those of peers. If the host refuses a change half-way, the previous
// set is put back.
func (k *kernel) SetPeers(peers []config.Peer) error {
	vps := make([]hostnet.VXLANPeer, 0, len(peers))
	scope := config.PeerScope{Backend: config.BackendVXLAN, Self: k.cfg.Underlay.IP, IPv4Only: true, Network: k.cfg.NetConf,
		Own: []netip.Prefix{k.cfg.Subnet}}
	for _, p := range peers {
		if err := p.Check(scope); err != nil {
			return fmt.Errorf("set peers: %w", err)
		}
		if p.VNI != 0 && p.VNI != k.dev.VNI {
			return fmt.Errorf("set peers: %w", &config.PeerError{Peer: p.Name, Field: "VNI", Kind: config.ErrForeignPeer,
				Msg: fmt.Sprintf("VNI %d, the kernel device %s has VNI %d", p.VNI, k.dev.Name, k.dev.VNI)})
		}
		if p.Port != 0 && p.Port != k.dev.Port {
			return fmt.Errorf("set peers: %w", &config.PeerError{Peer: p.Name, Field: "Port", Kind: config.ErrForeignPeer,
				Msg: fmt.Sprintf("port %d, the kernel device %s uses %d", p.Port, k.dev.Name, k.dev.Port)})
		}
		vp := hostnet.VXLANPeer{PublicIP: p.PublicIP.Unmap(), MAC: p.VtepMAC}
		for i, s := range p.Subnets {
			if !s.Addr().Is4() {
				return fmt.Errorf("set peers: %w", &config.PeerError{Peer: p.Name, Field: fmt.Sprintf("Subnets[%d]", i),
					Kind: config.ErrForeignPeer, Msg: fmt.Sprintf("IPv6 subnet %s: the kernel dataplane is IPv4 only", s)})
			}
			vp.Subnets = append(vp.Subnets, s.Masked())
		}
		vps = append(vps, vp)
	}
	// Names unique, no subnet routed to two peers: the routing table's
	// rules, as the userspace dataplane applies them.
	if _, err := routing.NewTable(peers); err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.cfg.Host.SetVXLANPeers(k.dev.Name, vps); err != nil {
		if rerr := k.cfg.Host.SetVXLANPeers(k.dev.Name, k.peers); rerr != nil {
			return fmt.Errorf("set peers: %w (and restoring the previous peers: %v)", err, rerr)
		}
		return fmt.Errorf("set peers: %w", err)
	}
	k.peers = vps
	return nil
}

// Run reads the device's counters every second until ctx is done; it
// returns an error if the device disappears (deleted behind vxtun's back:
// the node then stops instead of running without a dataplane).
func (k *kernel) Run(ctx context.Context) error {
	t := time.NewTicker(kernelPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := k.read(); errors.Is(err, hostnet.ErrNoSuchLink) {
				return fmt.Errorf("kernel vxlan device %s disappeared: %w", k.dev.Name, err)
			}
		}
	}
}

// read returns the device's counters, or the last ones read when they
// cannot be read (the device is gone after Close).
func (k *kernel) read() (hostnet.LinkStats, error) {
	s, err := k.cfg.Host.LinkStats(k.dev.Name)
	k.statsMu.Lock()
	defer k.statsMu.Unlock()
	if err != nil {
		return k.last, err
	}
	k.last = s
	return s, nil
}

// Stats are the device's link counters: packets and inner IP bytes (the
// vxlan device counts the frames it carries without their Ethernet
// header), and its drop and error counters as drop reasons.
func (k *kernel) Stats() Stats {
	ls, _ := k.read()
	return Stats{
		TxPackets: ls.TxPackets, TxBytes: ls.TxBytes,
		RxPackets: ls.RxPackets, RxBytes: ls.RxBytes,
		Drops: map[string]uint64{
			DropKernelTxDropped: ls.TxDropped, DropKernelRxDropped: ls.RxDropped,
			DropKernelTxErrors: ls.TxErrors, DropKernelRxErrors: ls.RxErrors,
		},
	}
}

func (k *kernel) Info() Info { return k.info }

func (k *kernel) Overhead() int { return config.Overhead(config.BackendVXLAN, false) }

// Close deletes the device (and with it its address, neighbour and fdb
// entries and routes) through the Host. Idempotent; Stats keeps the last
// counters read.
func (k *kernel) Close() error {
	k.closeOnce.Do(func() {
		_, _ = k.read()
		if err := k.cfg.Host.Close(); err != nil {
			k.closeErr = fmt.Errorf("remove kernel vxlan device %s: %w", k.dev.Name, err)
		}
	})
	return k.closeErr
}
