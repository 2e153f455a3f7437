package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/internal/nettest"
)

// The control-plane node: 198.18.0.1 on ul0, its underlay partner
// 198.18.0.2 in a namespace of its own.
var (
	cpListen   = netip.AddrPortFrom(controlPlaneNodeIP, config.DefaultPort(config.BackendVXLAN))
	cpDebug    = "127.0.0.1:9109"
	cpTunName  = "vxcp0"
	cpWaitPeer = 60 * time.Second
)

// RunControlPlane measures the control plane at cfg.Peers peers (see
// ControlPlaneResult) in two namespaces it makes and removes: in process,
// the real userspace dataplane (TUN, sockets, fastpath) and the nftables
// peer filter, through the seams the node drives; then, with cfg.Binary,
// a "vxtun run" daemon with a static peers file of one peer (the
// baseline) and of cfg.Peers peers, reloaded cfg.Reloads times with one
// peer moved. It needs root.
func RunControlPlane(ctx context.Context, cfg ControlPlaneConfig) (ControlPlaneResult, error) {
	if cfg.Peers == 0 {
		cfg.Peers = 5000
	}
	if cfg.Updates <= 0 {
		cfg.Updates = 200
	}
	if cfg.Reloads <= 0 {
		cfg.Reloads = 20
	}
	res := ControlPlaneResult{Peers: cfg.Peers}
	peers, err := ControlPlanePeers(cfg.Peers)
	if err != nil {
		return res, err
	}
	if cfg.Peers < 1 {
		return res, errors.New("control plane: need at least one peer")
	}
	if cfg.Binary != "" {
		if err := CheckVxtunBinary(ctx, cfg.Binary); err != nil {
			return res, err
		}
	}
	sfx := nettest.RandSuffix()
	node, err := nettest.CreateNS(ctx, "vxcp-"+sfx+"-node")
	if err != nil {
		return res, fmt.Errorf("control plane: %w", err)
	}
	defer node.Close()
	ul, err := nettest.CreateNS(ctx, "vxcp-"+sfx+"-ul")
	if err != nil {
		return res, fmt.Errorf("control plane: %w", err)
	}
	defer ul.Close()
	if err := nettest.ConnectVeth(node, "ul0", controlPlaneNodeIP.String()+"/24", ul, "ul0", "198.18.0.2/24", 1500); err != nil {
		return res, fmt.Errorf("control plane: %w", err)
	}
	if err := cpInProcess(ctx, node, peers, cfg.Updates, &res); err != nil {
		return res, fmt.Errorf("control plane in process: %w", err)
	}
	if cfg.Binary == "" {
		return res, nil
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vxcp-"); err != nil {
			return res, fmt.Errorf("control plane: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	if err := cpDaemon(ctx, node, cfg, filepath.Join(dir, "baseline"), peers[:1], 0, nil, &res.BaselineRSS, &res.BaselineHWM, &res.BaselineAnon, nil); err != nil {
		return res, fmt.Errorf("control plane daemon, 1 peer: %w", err)
	}
	var reloads []time.Duration
	if err := cpDaemon(ctx, node, cfg, filepath.Join(dir, "peers"), peers, cfg.Reloads, &res.StartHWM, &res.RSS, &res.HWM, &res.Anon, &reloads); err != nil {
		return res, fmt.Errorf("control plane daemon, %d peers: %w", cfg.Peers, err)
	}
	res.ReloadP50, res.ReloadP99 = durationPercentile(reloads, 50), durationPercentile(reloads, 99)
	return res, nil
}

// cpInProcess opens the userspace dataplane and a host for the peer filter
// in ns, applies peers whole, then updates one-peer changes, timing each.
func cpInProcess(ctx context.Context, ns *nettest.NS, peers []config.Peer, updates int, res *ControlPlaneResult) error {
	b, err := json.Marshal(controlPlaneNetConf())
	if err != nil {
		return err
	}
	nc, err := config.ParseNetConf("net-conf.json", b)
	if err != nil {
		return err
	}
	dcfg := dataplane.Config{
		NetConf: nc, Subnet: ControlPlaneSubnet,
		Underlay:   config.Underlay{IP: controlPlaneNodeIP, Iface: "ul0", MTU: 1500, Local: true},
		ListenAddr: cpListen, VtepMAC: controlPlaneVtepMAC, DeviceName: cpTunName, Workers: 1, MTU: 1450,
	}
	filter := hostnet.New()
	var dp dataplane.Dataplane
	if err := ns.Do(func() error {
		dcfg.Host = hostnet.New()
		var err error
		dp, err = dataplane.OpenUserspace(dcfg)
		return err
	}); err != nil {
		_ = ns.Do(filter.Close)
		return fmt.Errorf("open dataplane: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dp.Run(runCtx) }()
	defer func() {
		stop()
		<-done
		_ = ns.Do(dp.Close)
		_ = ns.Do(filter.Close)
	}()

	port := cpListen.Port()
	addrs := func(ps []config.Peer) []netip.Addr {
		a := make([]netip.Addr, len(ps))
		for i := range ps {
			a[i] = ps[i].PublicIP
		}
		return a
	}
	t0 := time.Now()
	if err := dp.SetPeers(peers); err != nil {
		return err
	}
	res.FullSet = time.Since(t0)
	if err := ns.Do(func() error {
		t0 := time.Now()
		err := filter.SetPeerFilter(port, addrs(peers))
		res.FullSetFilter = time.Since(t0)
		return err
	}); err != nil {
		return err
	}

	next := append([]config.Peer(nil), peers...)
	step := func(i int) {
		k := (i * 7919) % len(next) // spread over the set
		next[k] = movePeer(next[k])
	}
	// Allocations of SetPeers alone (nothing else allocates meanwhile:
	// the dataplane's workers are idle).
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range updates {
		step(i)
		if err := dp.SetPeers(next); err != nil {
			return err
		}
	}
	runtime.ReadMemStats(&m1)
	res.UpdateAllocBytes = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(updates)
	res.UpdateAllocs = float64(m1.Mallocs-m0.Mallocs) / float64(updates)

	// Timed: the dataplane's SetPeers, then the filter's transaction, as
	// the node applies an update.
	ds, fs := make([]time.Duration, 0, updates), make([]time.Duration, 0, updates)
	err = ns.Do(func() error {
		for i := range updates {
			if err := ctx.Err(); err != nil {
				return err
			}
			step(updates + i)
			t0 := time.Now()
			if err := dp.SetPeers(next); err != nil {
				return err
			}
			t1 := time.Now()
			if err := filter.SetPeerFilter(port, addrs(next)); err != nil {
				return err
			}
			ds, fs = append(ds, t1.Sub(t0)), append(fs, time.Since(t1))
		}
		return nil
	})
	if err != nil {
		return err
	}
	res.UpdateP50, res.UpdateP99 = durationPercentile(ds, 50), durationPercentile(ds, 99)
	res.FilterP50, res.FilterP99 = durationPercentile(fs, 50), durationPercentile(fs, 99)
	return nil
}

// cpDaemon runs "vxtun run" in ns with peers as its static peers file
// until its /metrics show them all, reads its VmHWM into *startHWM (if
// not nil), reloads it `reloads` times with one peer moved (appending each
// reload's time to *took), and reads its VmRSS, VmHWM and RssAnon before
// stopping it.
func cpDaemon(ctx context.Context, ns *nettest.NS, cfg ControlPlaneConfig, dir string, peers []config.Peer,
	reloads int, startHWM, rss, hwm, anon *int64, took *[]time.Duration) error {
	f := nettest.FilesIn(dir)
	node := nettest.NodeConf{PublicIP: controlPlaneNodeIP.String(), Iface: "ul0", Subnet: ControlPlaneSubnet.String(),
		TunName: cpTunName, VtepMAC: controlPlaneVtepMAC.String(), SubnetFile: f.SubnetEnv, Workers: 1, UnderlayMTU: 1500}
	if err := f.Write(controlPlaneNetConf(), node, peersConf(peers)); err != nil {
		return err
	}
	cmd := VxtunCommand{Binary: cfg.Binary, NetConf: f.NetConf, Node: f.Node, Peers: f.Peers,
		Extra: []string{"--dataplane", "userspace", "--debug-addr", cpDebug}}
	d := &nettest.Daemon{Name: "vxtun control plane", NS: ns, Argv: cmd.Argv(), Log: filepath.Join(dir, "vxtun.log")}
	if err := d.Start(); err != nil {
		return err
	}
	defer func() { _ = d.Stop(10 * time.Second) }()
	fail := func(err error) error {
		return fmt.Errorf("%w (log: %s)", err, strings.TrimSpace(d.LogTail(400)))
	}
	deadline := time.Now().Add(cpWaitPeer)
	for {
		m, err := cpMetrics(ns)
		if err == nil && m["vxtun_peers"] == float64(len(peers)) {
			break
		}
		if exited, _ := d.Exited(); exited {
			return fail(errors.New("daemon exited"))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("no %d peers in /metrics after %v (last error %v)", len(peers), cpWaitPeer, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if startHWM != nil {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID()))
		if err != nil {
			return fmt.Errorf("daemon status: %w", err)
		}
		if *startHWM, err = procStatusBytes(st, "VmHWM"); err != nil {
			return err
		}
	}
	next := append([]config.Peer(nil), peers...)
	for i := range reloads {
		m, err := cpMetrics(ns)
		if err != nil {
			return fail(err)
		}
		before := m["vxtun_peer_updates_total"]
		k := (i * 7919) % len(next)
		next[k] = movePeer(next[k])
		t0 := time.Now()
		if err := nettest.WriteJSON(f.Peers, peersConf(next)); err != nil {
			return err
		}
		if err := d.Signal(syscall.SIGHUP); err != nil {
			return fail(err)
		}
		for {
			m, err := cpMetrics(ns)
			if err != nil {
				return fail(err)
			}
			if m["vxtun_peer_updates_total"] > before {
				break
			}
			if time.Since(t0) > cpWaitPeer {
				return fail(fmt.Errorf("reload %d not applied after %v", i, cpWaitPeer))
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			// Each scrape costs the daemon work (its collector reads the
			// filter's counters from the kernel): poll, don't hammer.
			time.Sleep(2 * time.Millisecond)
		}
		*took = append(*took, time.Since(t0))
		// Let the file poller see the file before the next change, so it
		// never counts an update of its own in the next one's window.
		time.Sleep(50 * time.Millisecond)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID()))
	if err != nil {
		return fmt.Errorf("daemon status: %w", err)
	}
	if *rss, err = procStatusBytes(st, "VmRSS"); err != nil {
		return err
	}
	if *hwm, err = procStatusBytes(st, "VmHWM"); err != nil {
		return err
	}
	if *anon, err = procStatusBytes(st, "RssAnon"); err != nil {
		return err
	}
	return nil
}

// cpMetrics fetches the daemon's /metrics from inside ns (the debug server
// listens on the namespace's loopback) and returns its unlabelled series.
func cpMetrics(ns *nettest.NS) (map[string]float64, error) {
	var body []byte
	err := ns.Do(func() error {
		// Dialled here, on the thread in ns; net/http would dial from
		// another goroutine, in the host's namespace.
		c, err := net.DialTimeout("tcp", cpDebug, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: vxtun\r\n\r\n"); err != nil {
			return err
		}
		body, err = io.ReadAll(c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return parseMetrics(body), nil
}
