package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/tun"
)

// DropOversize counts inner packets above the TUN MTU that the TUN could
// not write as a GSO super-packet (not TCP/UDP, or the device has no
// offloads): writing them plain would only make the kernel drop them when
// it forwards (frag-needed to a sender whose MTU is already right).
const DropOversize = "oversize"

// userspace is the TUN device, its link configuration (through
// Config.Host) and the fastpath forwarder.
type userspace struct {
	cfg   Config
	log   *slog.Logger
	multi *tun.Multi
	fwd   *fastpath.Forwarder // nil until OpenUserspace made it

	closeOnce sync.Once
	closeErr  error
}

// OpenUserspace is the Opener of the userspace dataplane: it opens the TUN
// device cfg.DeviceName with cfg.Workers queues, turns IPv6 off on it when
// there is no IPv6 subnet, gives it its MTU, transmit queue length,
// <subnet>.0 address(es) and a route for the Network(s) through cfg.Host,
// and creates the forwarder (one UDP socket per queue on cfg.ListenAddr).
// It owns cfg.Host from here on: Close, or a failed Open, closes it.
func OpenUserspace(cfg Config) (Dataplane, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.NetConf == nil || cfg.Host == nil {
		return nil, errors.New("open userspace dataplane: NetConf and Host are required")
	}
	spin := spinConfig(cfg)
	if cfg.CPULocal {
		spin.LocalCPUs = localCPUs(cfg.Workers, log)
	}
	// A busy-polled or pinned queue stays out of the runtime poller (see
	// fastpath.Config.Unpolled).
	multi, err := tun.Open(cfg.DeviceName, cfg.Workers, tun.Options{Unpolled: spin.Unpolled(), LocalCPUs: spin.LocalCPUs})
	if err != nil {
		_ = cfg.Host.Close()
		return nil, explainTunError(err)
	}
	if spin.LocalCPUs != nil && multi.Offloads()&tun.OffloadLocalCPU == 0 {
		// Pinned workers without the TUN's CPU steering would only lose
		// the spreading of the flow hash.
		log.Warn("cpu-local workers: the TUN's steering program did not load (needs CAP_BPF or CAP_SYS_ADMIN); workers run unpinned")
		spin.LocalCPUs = nil
	}
	u := &userspace{cfg: cfg, log: log, multi: multi}
	fail := func(err error) (Dataplane, error) {
		if cerr := u.Close(); cerr != nil {
			log.Warn("undo a failed dataplane start", "err", cerr)
		}
		return nil, err
	}
	var addrs, routes []netip.Prefix
	if cfg.Subnet.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(cfg.Subnet.Masked().Addr(), 32))
		routes = append(routes, cfg.NetConf.Network)
	}
	if cfg.Subnet6.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(cfg.Subnet6.Masked().Addr(), 128))
		routes = append(routes, cfg.NetConf.IPv6Network)
	} else {
		// No IPv6 overlay: keep the kernel from sending router
		// solicitations and MLD reports into the TUN (they would only be
		// counted as no_route drops). Harmless when it fails: a kernel
		// without IPv6 has no such file.
		key := "net/ipv6/conf/" + multi.Name() + "/disable_ipv6"
		if err := cfg.Host.SetSysctl(key, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Debug("disable IPv6 on the TUN", "err", err)
		}
	}
	if err := cfg.Host.ConfigureLink(hostLink(multi.Name(), int(cfg.MTU), addrs, routes)); err != nil {
		return fail(err)
	}
	fc := fastpath.Config{
		Backend:     cfg.NetConf.Backend.Type,
		VNI:         cfg.NetConf.Backend.VNI,
		ListenAddr:  cfg.ListenAddr,
		ListenAddr6: cfg.ListenAddr6,
		VtepMAC:     cfg.VtepMAC,
		UnderlayMTU: int(cfg.Underlay.MTU),
		BusyPoll:    spin.BusyPoll,
		IdleSpin:    spin.IdleSpin,
		PollAhead:   spin.PollAhead,
		LocalCPUs:   spin.LocalCPUs,
		Logger:      log,
	}
	if cfg.Subnet.IsValid() {
		fc.VtepIP = cfg.Subnet.Masked().Addr()
		// ICMP errors the forwarder makes come from <subnet>.0, an address
		// of this host: without accept_local the kernel drops them as martians.
		if err := cfg.Host.SetSysctl("net/ipv4/conf/"+multi.Name()+"/accept_local", "1"); err != nil {
			log.Warn("accept_local on the TUN (ICMP errors from its address will be dropped)", "err", err)
		}
	}
	for _, sn := range []netip.Prefix{cfg.Subnet, cfg.Subnet6} {
		if sn.IsValid() {
			fc.Subnets = append(fc.Subnets, sn)
		}
	}
	if u.fwd, err = fastpath.New(fc, multi.Devices()); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fail(fmt.Errorf("udp port %d is already in use: %w", cfg.ListenAddr.Port(), err))
		}
		return fail(err)
	}
	if spin.LocalCPUs != nil {
		log.Info("cpu-local workers: each runs on one CPU and takes the packets written and received there (--cpu-local)", "cpus", fmt.Sprint(spin.LocalCPUs))
	}
	switch {
	case spin.PollAhead:
		log.Info("busy polling: one thread polls the TUN queues and sockets instead of sleeping; after --busy-poll-idle without a packet it waits for all of them, and wakes ahead of steady-rate packets (--busy-poll-ahead)", "busy_poll_idle", spin.IdleSpin)
	case spin.IdleSpin > 0:
		log.Info("busy polling: one thread polls the TUN queues and sockets instead of sleeping, until no packet came for --busy-poll-idle", "busy_poll_idle", spin.IdleSpin)
	case spin.BusyPoll:
		log.Info("busy polling: one thread polls the TUN queues and sockets instead of sleeping (--busy-poll)")
	}
	return u, nil
}

// spinConfig is the forwarder's polling for cfg: BusyPoll, stopping after
// BusyPollIdle without a packet when that is set (IdleSpin); nothing
// without BusyPoll.
func spinConfig(cfg Config) fastpath.Config {
	switch {
	case !cfg.BusyPoll:
		return fastpath.Config{}
	case cfg.BusyPollIdle > 0:
		return fastpath.Config{IdleSpin: cfg.BusyPollIdle, PollAhead: cfg.BusyPollAhead}
	}
	return fastpath.Config{BusyPoll: true}
}

// CheckUserspace checks, before anything is changed, that the userspace
// dataplane can start: the TUN driver is there and cfg.ListenAddr can be
// bound. The port is bound without SO_REUSEPORT for a moment, so a port
// held by another process (another vxtun, flanneld, a kernel vxlan device)
// is reported instead of shared.
func CheckUserspace(cfg Config) error {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("no TUN support: %w (load the tun module: modprobe tun)", err)
	}
	for _, addr := range []netip.AddrPort{cfg.ListenAddr, cfg.ListenAddr6} {
		if !addr.IsValid() {
			continue
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("udp port %d on %s is already in use (another vxtun, flanneld or a kernel vxlan device?)", addr.Port(), addr.Addr())
			}
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				return fmt.Errorf("cannot bind %s: the address is not on this host", addr)
			}
			return fmt.Errorf("bind %s: %w", addr, err)
		}
		c.Close()
	}
	return nil
}

// explainTunError adds the likely cause to a failure to open the TUN.
func explainTunError(err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (vxtun needs root or CAP_NET_ADMIN)", err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV):
		return fmt.Errorf("%w (no TUN support: load the tun module)", err)
	case errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("%w (is the interface name taken by another device or another vxtun?)", err)
	}
	return err
}

func (u *userspace) SetPeers(peers []config.Peer) error { return u.fwd.SetPeers(peers) }

func (u *userspace) Run(ctx context.Context) error { return u.fwd.Run(ctx) }

func (u *userspace) Stats() Stats {
	fs := u.fwd.Stats()
	s := Stats{
		TxPackets: fs.TxPackets, TxBytes: fs.TxBytes,
		RxPackets: fs.RxPackets, RxBytes: fs.RxBytes,
		Drops:     make(map[string]uint64, len(fs.Drops)+8),
		PeerDrops: fs.PeerDrops,
	}
	// Every reason, zero or not, so /metrics shows a series per reason
	// from the start (a counter that appears only once non-zero confuses
	// rate()).
	for _, r := range fastpath.DropReasons() {
		s.Drops[r] = 0
	}
	s.Drops[DropOversize] = 0
	for r, n := range fs.Drops {
		s.Drops[r] = n
	}
	for _, q := range u.multi.Queues() {
		qs := q.Stats()
		s.DeviceBadFrames += qs.BadFrames
		s.DeviceWriteErrors += qs.WriteErrors
		s.DeviceOversizeGSO += qs.OversizeGSO
		s.DeviceGROBadChecksum += qs.GROBadChecksum
		s.Drops[DropOversize] += qs.OversizeDropped
	}
	s.UDPRxQueueOverflows = fs.UDPRxQueueOverflows
	s.Waits, s.PollAheadWakes, s.PollAheadHits = fs.Waits, fs.AheadWakes, fs.AheadHits
	if ls, err := u.multi.LinkStats(); err == nil {
		s.TunTxDropped, s.TunRxDropped = ls.TxDropped, ls.RxDropped
	}
	return s
}

func (u *userspace) Info() Info {
	listen := u.fwd.LocalAddr().String()
	if a := u.fwd.LocalAddr6(); a.IsValid() {
		listen += " " + a.String()
	}
	return Info{
		Kind:     "userspace",
		Device:   u.multi.Name(),
		Listen:   listen,
		Offloads: u.multi.Offloads().String(),
		Workers:  len(u.multi.Queues()),
	}
}

func (u *userspace) Overhead() int {
	return config.Overhead(u.cfg.NetConf.Backend.Type, u.cfg.Underlay.IP.Is6() || u.cfg.ListenAddr6.IsValid())
}

// Close removes the link configuration, closes the TUN (which removes the
// device) and the forwarder's sockets. Idempotent; Stats and Info stay
// callable afterwards (the counters keep their last values).
func (u *userspace) Close() error {
	u.closeOnce.Do(func() {
		var errs []error
		if err := u.cfg.Host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("remove link configuration: %w", err))
		}
		if err := u.multi.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close tun: %w", err))
		}
		if u.fwd != nil {
			_ = u.fwd.Close()
		}
		u.closeErr = errors.Join(errs...)
	})
	return u.closeErr
}

// hostLink is the link configuration of the TUN.
func hostLink(name string, mtu int, addrs, routes []netip.Prefix) hostnet.Link {
	return hostnet.Link{Name: name, MTU: mtu, TxQueueLen: tun.TxQueueLen, Addrs: addrs, Routes: routes}
}
