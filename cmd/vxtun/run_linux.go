package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/registry"
	"github.com/vxtun/vxtun/tun"
)

// defaultVtepMACFile keeps the VTEP MAC in etcd mode when neither the node
// file nor --vtep-mac-file names a file.
const defaultVtepMACFile = "/var/lib/vxtun/vtep-mac"

// runMain is "vxtun run". It returns the exit code.
func runMain(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parseRunFlags(args, getenv, io.Discard)
	if errors.Is(err, flag.ErrHelp) {
		newRunFlags(&runOptions{}, stderr).Usage()
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vxtun run: %s (see vxtun run -h)\n", oneLine(err.Error()))
		return 2
	}
	level, _ := parseLevel(o.LogLevel)
	// Until the daemon runs, info and debug lines are held back: a startup
	// error is then the only line printed. Warnings pass at once (e.g.
	// etcd not reachable yet).
	startup := newStartupHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	log := slog.New(startup)

	// Signals are caught from the start: SIGTERM during startup aborts it
	// and undoes what was done.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	hup := make(chan struct{}, 1)
	go func() {
		for s := range sigc {
			if s == syscall.SIGHUP {
				select {
				case hup <- struct{}{}:
				default:
				}
				continue
			}
			log.Info("shutting down", "signal", s.String())
			cancel()
		}
	}()

	d := &daemon{opts: o, log: log, startup: startup, hup: hup}
	err = d.run(ctx)
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		fmt.Fprintf(stderr, "vxtun: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// daemon is one "vxtun run".
type daemon struct {
	opts    *runOptions
	log     *slog.Logger
	startup *startupHandler
	hup     <-chan struct{}

	nc       *config.NetConf
	node     *config.Node
	underlay config.Underlay
	mac      net.HardwareAddr
	subnet   netip.Prefix // own IPv4 subnet
	subnet6  netip.Prefix // own IPv6 subnet (static mode only)
	mtu      config.TunMTU
	port     uint16

	static *registry.StaticSource
	etcd   *registry.EtcdSource

	dp       atomic.Pointer[dataplane] // current dataplane, for /metrics
	peers    atomic.Int64
	updates  atomic.Uint64
	rejected atomic.Uint64
	restarts atomic.Uint64
}

// dataplane is the TUN device, its link configuration and the forwarder.
type dataplane struct {
	multi  *tun.Multi
	link   hostnet.Host
	fwd    *fastpath.Forwarder
	cancel context.CancelFunc
	done   chan error // receives Run's result once
}

func (d *daemon) run(ctx context.Context) error {
	if err := d.loadConfig(ctx); err != nil {
		return err
	}
	if d.etcd != nil {
		defer d.etcd.Close()
	}
	if d.opts.DebugAddr != "" {
		stopDebug, err := d.startDebug()
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	dp, err := d.openDataplane()
	if err != nil {
		return err
	}

	// The peer source runs for the daemon's whole life, across dataplane
	// restarts; the main loop owns the peer set.
	srcCtx, srcCancel := context.WithCancel(ctx)
	updates := make(chan registry.Update, 1)
	srcErr := make(chan error, 1)
	var src registry.Source = d.static
	if d.etcd != nil {
		src = d.etcd
	}
	var srcWG sync.WaitGroup
	srcWG.Add(1)
	go func() {
		defer srcWG.Done()
		srcErr <- src.Run(srcCtx, updates)
	}()
	defer func() {
		srcCancel()
		srcWG.Wait()
	}()

	peerSet := map[string]config.Peer{}
	var peers []config.Peer
	// The first peer set, before the dataplane forwards.
	select {
	case <-ctx.Done():
		d.stopDataplane(dp)
		return ctx.Err()
	case err := <-srcErr:
		d.stopDataplane(dp)
		return fmt.Errorf("peer source: %w", err)
	case u := <-updates:
		peers = registry.Apply(peerSet, u)
	}

	var leases <-chan registry.Lease
	if d.etcd != nil {
		leases = d.etcd.LeaseChanges()
	}
	for {
		if dp == nil {
			if dp, err = d.openDataplane(); err != nil {
				return err
			}
		}
		if err := d.runDataplane(dp, peers); err != nil {
			d.stopDataplane(dp)
			return err
		}
		if err := d.writeSubnetEnv(); err != nil {
			d.stopDataplane(dp)
			return err
		}
		d.startup.flush()
		d.log.Info("vxtun running", "version", versionString(), "backend", d.nc.Backend.Type,
			"tun", dp.multi.Name(), "mtu", d.mtu, "offloads", dp.multi.Offloads().String(),
			"workers", len(dp.multi.Queues()), "listen", dp.fwd.LocalAddr().String(),
			"subnet", d.subnet.String(), "network", d.nc.Network.String(), "peers", len(peers),
			"subnet-file", d.node.SubnetFile)

		restart, err := d.loop(ctx, dp, peerSet, &peers, updates, srcErr, leases)
		d.stopDataplane(dp)
		if err != nil || !restart {
			if err == nil && ctx.Err() != nil {
				d.log.Info("stopped: removed the TUN device and its addresses and routes", "tun", dp.multi.Name())
			}
			return err
		}
		dp = nil
		d.restarts.Add(1)
	}
}

// loop forwards until shutdown (restart false, err nil), a fatal error, or
// the etcd lease moving to another subnet (restart true).
func (d *daemon) loop(ctx context.Context, dp *dataplane, peerSet map[string]config.Peer, peers *[]config.Peer,
	updates <-chan registry.Update, srcErr <-chan error, leases <-chan registry.Lease) (restart bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-dp.done:
			if err == nil {
				err = errors.New("forwarder stopped")
			}
			return false, fmt.Errorf("forwarder: %w", err)
		case err := <-srcErr:
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("peer source: %w", err)
		case u := <-updates:
			next := registry.Apply(peerSet, u)
			if err := dp.fwd.SetPeers(next); err != nil {
				d.rejected.Add(1)
				d.log.Error("peer update rejected; keeping the current peers", "err", err)
				// Keep peerSet in line with the table in force.
				clear(peerSet)
				for _, p := range *peers {
					peerSet[p.Name] = p
				}
				continue
			}
			*peers = next
			d.peers.Store(int64(len(next)))
			d.updates.Add(1)
			d.log.Debug("peers applied", "peers", len(next))
		case <-d.hup:
			if d.static != nil {
				d.log.Info("SIGHUP: re-reading the peers file", "file", d.opts.Peers)
				d.static.Reload()
			} else {
				d.log.Info("SIGHUP: nothing to reload in etcd mode (peers are watched)")
			}
		case l := <-leases:
			if l.Subnet == d.subnet {
				d.log.Debug("lease confirmed", "lease", l.Name)
				if err := d.writeSubnetEnv(); err != nil {
					d.log.Error("rewrite subnet.env", "err", err)
				}
				continue
			}
			if err := d.checkLeaseNetConf(l.NetConf); err != nil {
				return false, err
			}
			d.log.Warn("our lease moved to another subnet: restarting the dataplane",
				"old", d.subnet.String(), "new", l.Subnet.String())
			d.subnet = l.Subnet
			return true, nil
		}
	}
}

// checkLeaseNetConf refuses a new lease taken under a network config that
// the running dataplane was not set up for: its subnet may lie outside the
// routed Network, or the encapsulation may differ. The daemon then exits, so
// that a restart reads the new config. With --net-conf only the Network and
// the backend type are compared, as at startup.
func (d *daemon) checkLeaseNetConf(nc *config.NetConf) error {
	if nc == nil {
		return nil
	}
	same := nc.Network == d.nc.Network && nc.Backend.Type == d.nc.Backend.Type
	if d.opts.NetConf == "" {
		same = same && nc.SubnetLen == d.nc.SubnetLen && nc.Backend == d.nc.Backend
	}
	if same {
		return nil
	}
	return fmt.Errorf("network config in etcd changed (Network %s, backend %+v; running with Network %s, backend %+v): restart vxtun to apply it",
		nc.Network, nc.Backend, d.nc.Network, d.nc.Backend)
}

// loadConfig reads and validates every setting, and in etcd mode reads the
// network config and takes the lease.
func (d *daemon) loadConfig(ctx context.Context) error {
	o := d.opts
	var err error
	if o.Node != "" {
		if d.node, err = config.LoadNode(o.Node); err != nil {
			return err
		}
	} else {
		// etcd mode without a node file: the node is described by flags.
		j, err := json.Marshal(struct{ PublicIP, Iface string }{o.PublicIP, o.Iface})
		if err != nil {
			return fmt.Errorf("node from flags: %w", err)
		}
		if d.node, err = config.ParseNode("command line", j); err != nil {
			return err
		}
	}
	n := d.node
	switch {
	case o.PublicIP != "":
		ip, err := netip.ParseAddr(o.PublicIP)
		if err != nil {
			return fmt.Errorf("--public-ip %q: %w", o.PublicIP, err)
		}
		n.PublicIP = ip.Unmap()
		if o.Iface != "" {
			n.Iface = o.Iface
		}
	case o.Iface != "":
		n.Iface = o.Iface
		n.PublicIP = netip.Addr{} // from the interface
	}
	if o.Tun != "" {
		n.TunName = o.Tun
	}
	if o.Workers > 0 {
		n.Workers = o.Workers
	}
	if o.SubnetFile != "" {
		n.SubnetFile = o.SubnetFile
	}
	if o.ListenPort > 0 {
		n.ListenPort = uint16(o.ListenPort)
	}
	if o.VtepMACFile != "" {
		n.VtepMAC, n.VtepMACFile = nil, o.VtepMACFile
	}
	if d.underlay, err = n.ResolveUnderlay(); err != nil {
		return err
	}
	if !d.underlay.IP.IsValid() {
		return fmt.Errorf("no underlay address: set PublicIP, --public-ip or --iface")
	}

	if o.etcdMode() {
		return d.loadEtcd(ctx)
	}
	path := o.NetConf
	if path == "" {
		path = config.DefaultNetConfPath
	}
	if d.nc, err = config.LoadNetConf(path); err != nil {
		return err
	}
	if err := n.Validate(d.nc); err != nil {
		return err
	}
	if d.nc.EnableIPv4 && !n.Subnet.IsValid() {
		return fmt.Errorf("%s: Subnet: missing: static mode needs this node's subnet", n.File)
	}
	if d.nc.EnableIPv6 && !n.IPv6Subnet.IsValid() {
		return fmt.Errorf("%s: IPv6Subnet: missing: EnableIPv6 is set in %s", n.File, d.nc.File)
	}
	d.subnet, d.subnet6 = n.Subnet, n.IPv6Subnet
	if err := d.finishConfig(); err != nil {
		return err
	}
	// Check the peers file now, so a bad one is a startup error.
	if _, err := config.LoadPeers(o.Peers, d.nc, n.OwnSubnets()); err != nil {
		return err
	}
	d.static = registry.NewStaticSource(o.Peers, d.nc, n.OwnSubnets(), registry.StaticOptions{Logger: d.log})
	return nil
}

// finishConfig resolves the VTEP MAC, the MTU and the port and checks that
// the device can be created and the port bound.
func (d *daemon) finishConfig() error {
	n := d.node
	if d.nc.Backend.Type == config.BackendVXLAN {
		mac, err := n.ResolveVtepMAC()
		if err != nil {
			return err
		}
		d.mac = mac
	}
	d.mtu = d.nc.TunMTU(d.underlay.MTU, d.underlay.IP.Is6())
	if d.mtu < config.MinTunMTU {
		return fmt.Errorf("underlay MTU %d leaves no room for %s encapsulation", d.underlay.MTU, d.nc.Backend.Type)
	}
	d.port = n.Port(d.nc)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("no TUN support: %w (load the tun module: modprobe tun)", err)
	}
	return checkPort(d.listenAddr())
}

// listenAddr is the underlay address the forwarder binds: the public IP
// when it is assigned here, else the wildcard (the public IP is then a NAT
// address, as flanneld's --public-ip allows).
func (d *daemon) listenAddr() netip.AddrPort {
	ip := d.underlay.IP
	if !d.underlay.Local {
		ip = netip.IPv4Unspecified()
		if d.underlay.IP.Is6() {
			ip = netip.IPv6Unspecified()
		}
	}
	return netip.AddrPortFrom(ip, d.port)
}

// checkPort binds addr without SO_REUSEPORT for a moment, so that a port
// held by another process (another vxtun, flanneld, a kernel vxlan device)
// is reported instead of shared.
func checkPort(addr netip.AddrPort) error {
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
	return c.Close()
}

// loadEtcd is loadConfig's etcd part.
func (d *daemon) loadEtcd(ctx context.Context) error {
	o, n := d.opts, d.node
	if n.Subnet.IsValid() || n.IPv6Subnet.IsValid() {
		return fmt.Errorf("%s: Subnet: must not be set in etcd mode (the subnet comes from the lease)", n.File)
	}
	if !d.underlay.IP.Is4() {
		return fmt.Errorf("etcd mode needs an IPv4 public IP, got %s", d.underlay.IP)
	}
	eo := registry.EtcdOptions{
		Endpoints: o.endpoints(),
		Prefix:    o.EtcdPrefix,
		CertFile:  o.EtcdCertFile, KeyFile: o.EtcdKeyFile, CAFile: o.EtcdCAFile,
		Username: o.EtcdUsername, Password: o.EtcdPassword,
		PublicIP: d.underlay.IP,
		LeaseTTL: o.EtcdLeaseTTL,
		Logger:   d.log,
	}
	var err error
	if o.NetConf != "" {
		if d.nc, err = config.LoadNetConf(o.NetConf); err != nil {
			return err
		}
	} else {
		// Read the network config first: the backend decides whether a
		// VTEP MAC is needed in the lease.
		probe, err := registry.NewEtcdSource(eo)
		if err != nil {
			return err
		}
		d.nc, err = retry(ctx, d.log, "read network config from etcd", func() (*config.NetConf, error) {
			return probe.NetConf(ctx)
		})
		probe.Close()
		if err != nil {
			return err
		}
	}
	if d.nc.Backend.Type == config.BackendVXLAN && n.VtepMAC == nil && n.VtepMACFile == "" {
		n.VtepMACFile = defaultVtepMACFile
	}
	if err := n.Validate(d.nc); err != nil {
		return err
	}
	if err := d.finishConfig(); err != nil {
		return err
	}
	eo.VtepMAC = d.mac
	if d.etcd, err = registry.NewEtcdSource(eo); err != nil {
		return err
	}
	lease, err := retry(ctx, d.log, "acquire subnet lease", func() (registry.Lease, error) {
		return d.etcd.Acquire(ctx)
	})
	if err != nil {
		d.etcd.Close()
		d.etcd = nil
		return err
	}
	if o.NetConf != "" && (lease.NetConf.Network != d.nc.Network || lease.NetConf.Backend.Type != d.nc.Backend.Type) {
		d.etcd.Close()
		d.etcd = nil
		return fmt.Errorf("--net-conf %s (Network %s, backend %s) disagrees with etcd's %s/config (Network %s, backend %s)",
			o.NetConf, d.nc.Network, d.nc.Backend.Type, eo.Prefix, lease.NetConf.Network, lease.NetConf.Backend.Type)
	}
	if o.NetConf == "" {
		d.nc = lease.NetConf
	}
	d.subnet = lease.Subnet
	d.log.Info("holding subnet lease", "lease", lease.Name, "subnet", lease.Subnet.String(), "reservation", lease.Reservation)
	return nil
}

// retry calls fn until it succeeds or ctx ends, with backoff, logging each
// failure.
func retry[T any](ctx context.Context, log *slog.Logger, what string, fn func() (T, error)) (T, error) {
	bo := 250 * time.Millisecond
	for {
		v, err := fn()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		log.Warn(what+" (retrying)", "err", err, "retry-in", bo)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(bo):
		}
		bo = min(2*bo, 10*time.Second)
	}
}

// openDataplane opens and configures the TUN and creates the forwarder.
// On error everything it made is undone.
func (d *daemon) openDataplane() (*dataplane, error) {
	n := d.node
	multi, err := tun.Open(n.TunName, n.Workers, tun.Options{})
	if err != nil {
		return nil, explainTunError(err)
	}
	dp := &dataplane{multi: multi, done: make(chan error, 1)}
	fail := func(err error) (*dataplane, error) {
		d.stopDataplane(dp)
		return nil, err
	}
	var addrs, routes []netip.Prefix
	if d.subnet.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(d.subnet.Masked().Addr(), 32))
		routes = append(routes, d.nc.Network)
	}
	if d.subnet6.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(d.subnet6.Masked().Addr(), 128))
		routes = append(routes, d.nc.IPv6Network)
	}
	if !d.subnet6.IsValid() {
		// No IPv6 overlay: keep the kernel from sending router
		// solicitations and MLD reports into the TUN (they would only be
		// counted as no_route drops).
		disableIPv6(multi.Name(), d.log)
	}
	dp.link = hostnet.New()
	if err = dp.link.ConfigureLink(hostnet.Link{Name: multi.Name(), MTU: int(d.mtu), TxQueueLen: tun.TxQueueLen, Addrs: addrs, Routes: routes}); err != nil {
		return fail(err)
	}
	cfg := fastpath.Config{
		Backend:     d.nc.Backend.Type,
		VNI:         d.nc.Backend.VNI,
		ListenAddr:  d.listenAddr(),
		VtepMAC:     d.mac,
		UnderlayMTU: int(d.underlay.MTU),
		Logger:      d.log,
	}
	if d.subnet.IsValid() {
		cfg.VtepIP = d.subnet.Masked().Addr()
	}
	if dp.fwd, err = fastpath.New(cfg, multi.Devices()); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fail(fmt.Errorf("udp port %d is already in use: %w", d.port, err))
		}
		return fail(err)
	}
	return dp, nil
}

// runDataplane gives the forwarder its peers and starts it.
func (d *daemon) runDataplane(dp *dataplane, peers []config.Peer) error {
	if err := dp.fwd.SetPeers(peers); err != nil {
		return err
	}
	d.peers.Store(int64(len(peers)))
	d.updates.Add(1)
	d.dp.Store(dp)
	ctx, cancel := context.WithCancel(context.Background())
	dp.cancel = cancel
	go func() { dp.done <- dp.fwd.Run(ctx) }()
	return nil
}

// stopDataplane stops the forwarder and removes what openDataplane made.
func (d *daemon) stopDataplane(dp *dataplane) {
	if dp.cancel != nil {
		dp.cancel()
		select {
		case err := <-dp.done:
			if err != nil {
				d.log.Debug("forwarder ended", "err", err)
			}
		case <-time.After(10 * time.Second):
			d.log.Warn("forwarder did not stop within 10s")
		}
	}
	if dp.link != nil {
		if err := dp.link.Close(); err != nil {
			d.log.Warn("remove link configuration", "err", err)
		}
	}
	if dp.multi != nil {
		if err := dp.multi.Close(); err != nil {
			d.log.Warn("close tun", "err", err)
		}
	}
	if dp.fwd != nil {
		_ = dp.fwd.Close()
	}
}

// disableIPv6 turns IPv6 off on our own TUN device (it goes away with the
// device). Failure is harmless: a kernel without IPv6 has no such file.
func disableIPv6(name string, log *slog.Logger) {
	path := "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6"
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Debug("disable IPv6 on the TUN", "err", err)
	}
}

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

// writeSubnetEnv writes subnet.env for the current subnet.
func (d *daemon) writeSubnetEnv() error {
	e := config.SubnetEnvFor(d.nc, d.node, d.subnet, d.subnet6, d.mtu)
	if err := config.WriteSubnetEnv(d.node.SubnetFile, e); err != nil {
		return err
	}
	d.log.Debug("wrote subnet.env", "file", d.node.SubnetFile)
	return nil
}

// startDebug serves /metrics and /debug/pprof on --debug-addr.
func (d *daemon) startDebug() (stop func(), err error) {
	l, err := net.Listen("tcp", d.opts.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("debug server: %w", err)
	}
	srv := &http.Server{Handler: newDebugMux(d.snapshot), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("debug server", "err", err)
		}
	}()
	d.log.Debug("debug server listening", "addr", l.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// snapshot collects the counters for /metrics.
func (d *daemon) snapshot() metricsSnapshot {
	s := metricsSnapshot{
		Version:          versionString(),
		Peers:            int(d.peers.Load()),
		PeerUpdates:      d.updates.Load(),
		PeerUpdateErrors: d.rejected.Load(),
		Restarts:         d.restarts.Load(),
	}
	if d.nc != nil {
		s.Backend = string(d.nc.Backend.Type)
	}
	if dp := d.dp.Load(); dp != nil {
		s.Tun = dp.multi.Name()
		s.Stats = dp.fwd.Stats()
		for _, q := range dp.multi.Queues() {
			st := q.Stats()
			s.TunBadFrames += st.BadFrames
			s.TunWriteErrors += st.WriteErrors
		}
	}
	return s
}
