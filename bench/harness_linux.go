package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// Config is what a Harness run measures.
type Config struct {
	Rounds      int           // ≥ 1; modes alternate within each round
	Duration    time.Duration // per TCP measurement (whole seconds, ≥ 1 s)
	UDPStep     time.Duration // per UDP rate-search trial (whole seconds, ≥ 1 s)
	SearchSteps int           // UDP search steps after the overload probe
	Resolution  float64       // UDP search stops when the bracket is this narrow (relative)
	PingCount   int           // probes at 1 ms intervals
	Modes       []string      // subset of AllModes, in alternation order
	// The scaling rows: UDP with each of SweepThreads generator threads on
	// the SweepModes (those of Modes that are in it), with at most
	// SweepSteps search steps after the overload probe.
	SweepModes   []string
	SweepThreads []int
	SweepSteps   int
	// SplitModes (those of Modes that are in it) also run TCP and ping with
	// one CPU per node (split_linux.go).
	SplitModes []string
	// Idle is the no-traffic window at the start of every round (whole
	// seconds; 0 = none).
	Idle time.Duration
	// ControlPlane is the control-plane benchmark run after the traffic
	// modes (Peers 0 = none; Binary is Vxtun, Dir OutDir/control-plane).
	ControlPlane ControlPlaneConfig
	OutDir       string    // configs, daemon logs; created
	Vxtun        string    // path to the vxtun binary
	ToolCache    string    // where peer overlays are built (outside the repository; "" = DefaultToolCache())
	VxtunArgs    []string  // extra "vxtun run" flags (e.g. --debug-addr for pprof)
	Quick        bool      // recorded in the results
	Command      string    // recorded in the results
	Log          io.Writer // progress; nil = discard
}

// FullConfig is the default full run.
func FullConfig() Config {
	return Config{Rounds: 3, Duration: 5 * time.Second, UDPStep: time.Second, SearchSteps: 7, Resolution: 0.03,
		PingCount: 1000, Modes: AllModes, SweepModes: SweepModes, SweepThreads: SweepThreads, SweepSteps: 3, SplitModes: SplitModes,
		Idle: 10 * time.Second, ControlPlane: ControlPlaneConfig{Peers: 5000, Updates: 200, Reloads: 20},
		OutDir: "bench/out", Vxtun: "bin/vxtun"}
}

// QuickConfig is the short bounded smoke run: it checks the harness works,
// not the speed.
func QuickConfig() Config {
	c := FullConfig()
	c.Rounds, c.Duration, c.SearchSteps, c.Resolution, c.PingCount, c.Quick = 1, time.Second, 3, 0.25, 200, true
	c.SweepSteps, c.Idle = 1, 2*time.Second
	c.ControlPlane = ControlPlaneConfig{Peers: 5000, Updates: 20, Reloads: 3}
	return c
}

func (c Config) validate() error {
	if c.Rounds < 1 || c.Duration < time.Second || c.UDPStep < time.Second || c.SearchSteps < 0 || c.PingCount < 1 || !(c.Resolution > 0) {
		return fmt.Errorf("bench config: bad values %+v", c)
	}
	if len(c.Modes) == 0 {
		return errors.New("bench config: no modes")
	}
	if c.ControlPlane.Peers < 0 || c.ControlPlane.Peers > MaxControlPlanePeers {
		return fmt.Errorf("bench config: control plane of %d peers (at most %d)", c.ControlPlane.Peers, MaxControlPlanePeers)
	}
	if c.SweepSteps < 0 || c.Idle < 0 {
		return fmt.Errorf("bench config: sweep steps %d, idle %v", c.SweepSteps, c.Idle)
	}
	for _, t := range c.SweepThreads {
		if t < 1 || t > genMaxStreams {
			return fmt.Errorf("bench config: %d generator threads (want 1..%d)", t, genMaxStreams)
		}
	}
	for kind, list := range map[string][]string{"sweep": c.SweepModes, "split": c.SplitModes} {
		for _, m := range list {
			if !slices.Contains(AllModes, m) {
				return fmt.Errorf("bench config: unknown %s mode %q", kind, m)
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range c.Modes {
		if seen[m] {
			return fmt.Errorf("bench config: mode %s twice", m)
		}
		seen[m] = true
		if _, err := newMode(m, c); err != nil {
			return err
		}
	}
	return nil
}

// newMode returns the Mode called name.
func newMode(name string, c Config) (Mode, error) {
	switch name {
	case ModeVeth:
		return VethMode{}, nil
	case ModeKernelVXLAN:
		return KernelVXLANMode{}, nil
	case ModeVxtunVXLAN:
		return &VxtunMode{Backend: config.BackendVXLAN, Binary: c.Vxtun, Extra: userspaceArgs(c)}, nil
	case ModeVxtunUDP:
		return &VxtunMode{Backend: config.BackendUDP, Binary: c.Vxtun, Extra: userspaceArgs(c)}, nil
	case ModeVxtunBusyPoll:
		return &VxtunMode{Backend: config.BackendVXLAN, Binary: c.Vxtun, Label: ModeVxtunBusyPoll,
			Extra: append(userspaceArgs(c), "--busy-poll"), Optional: []string{"--busy-poll"}, Exclusive: true}, nil
	case ModeVxtunBusyPollIdle:
		return &VxtunMode{Backend: config.BackendVXLAN, Binary: c.Vxtun, Label: ModeVxtunBusyPollIdle,
			Extra: append(userspaceArgs(c), "--busy-poll", "--busy-poll-idle", "5ms"), Optional: []string{"--busy-poll-idle"}, Exclusive: true}, nil
	case ModeVxtunBusyPollAhead:
		return &VxtunMode{Backend: config.BackendVXLAN, Binary: c.Vxtun, Label: ModeVxtunBusyPollAhead,
			Extra: append(userspaceArgs(c), "--busy-poll", "--busy-poll-idle", "200us", "--busy-poll-ahead"), Optional: []string{"--busy-poll-ahead"}, Exclusive: true}, nil
	case ModeVxtunCPULocal:
		return &VxtunMode{Backend: config.BackendVXLAN, Binary: c.Vxtun, Label: ModeVxtunCPULocal,
			Extra: append(userspaceArgs(c), "--cpu-local"), Optional: []string{"--cpu-local"}}, nil
	case ModeVxtunHostGW, ModeVxtunDirectRouting:
		return routedMode(name, c), nil
	case ModeVxtunKernel:
		return newVxtunKernelMode(c), nil
	case ModeWireGuardGo:
		return &WireGuardGoMode{Cache: c.toolCache()}, nil
	case ModeNebula:
		return &NebulaMode{Cache: c.toolCache()}, nil
	}
	return nil, fmt.Errorf("unknown mode %q (have %s)", name, strings.Join(AllModes, ", "))
}

// userspaceArgs are the "vxtun run" flags of the userspace vxtun modes:
// --dataplane userspace (the default, auto, would pick the kernel device).
func userspaceArgs(c Config) []string {
	return append([]string{"--dataplane", "userspace"}, c.VxtunArgs...)
}

func (c Config) toolCache() string {
	if c.ToolCache != "" {
		return c.ToolCache
	}
	return DefaultToolCache()
}

// Harness runs the benchmark. See the package doc for ownership.
type Harness struct {
	cfg   Config
	runID string
	log   io.Writer

	mu        sync.Mutex
	underlays []*nettest.Underlay
	daemons   []*nettest.Daemon
	closed    bool
}

// ErrClosed is returned when the harness was closed (e.g. by a signal).
var ErrClosed = errors.New("harness closed")

// NewHarness checks cfg and the tools the run needs.
func NewHarness(cfg Config) (*Harness, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := CheckTools(); err != nil {
		return nil, err
	}
	var id [3]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	return &Harness{cfg: cfg, runID: hex.EncodeToString(id[:]), log: log}, nil
}

// CheckTools reports missing external programs with the package to install.
func CheckTools() error {
	if err := nettest.CheckTools("ip", "bridge", "iperf3", "ping", "ss"); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the end-to-end benchmark needs root (network namespaces)")
	}
	return nil
}

func (h *Harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "vxbench: "+format+"\n", args...)
}

// newUnderlay builds an underlay that Close removes.
func (h *Harness) newUnderlay(ctx context.Context, cfg nettest.UnderlayConfig) (*nettest.Underlay, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.mu.Unlock()
	u, err := nettest.NewUnderlay(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.closed { // Close ran meanwhile and will not see u
		h.mu.Unlock()
		_ = u.Close()
		return nil, ErrClosed
	}
	h.underlays = append(h.underlays, u)
	h.mu.Unlock()
	return u, nil
}

// startDaemon starts d; Close stops it.
func (h *Harness) startDaemon(d *nettest.Daemon) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if err := d.Start(); err != nil {
		return err
	}
	h.daemons = append(h.daemons, d)
	return nil
}

// Close stops every daemon and deletes every namespace the harness made.
// It is safe to call from another goroutine and more than once.
func (h *Harness) Close() error {
	h.mu.Lock()
	h.closed = true
	daemons, underlays := h.daemons, h.underlays
	h.daemons, h.underlays = nil, nil
	h.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	for _, d := range daemons {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.Stop(3 * time.Second) }()
	}
	wg.Wait()
	for _, u := range underlays {
		if err := u.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// modeRun is a mode set up on its testbed.
type modeRun struct {
	mode   Mode
	tb     *Testbed
	server *nettest.Daemon // iperf3 -s in node B
	res    *ModeResult
}

const iperfPort = 5201

// Run sets every mode up, measures them alternating for cfg.Rounds rounds
// and returns the summarized results. Modes that cannot run are reported
// as unavailable; the returned error is non-nil when a mode failed (set up
// but broken) or the run was cancelled, with the results so far.
func (h *Harness) Run(ctx context.Context) (*Results, error) {
	start := time.Now()
	res := &Results{
		Machine:  DescribeMachine(h.cfg.Vxtun),
		Started:  start,
		Baseline: ModeKernelVXLAN,
		Metrics:  append(slices.Clone(Metrics), SweepMetrics(h.cfg.SweepThreads)...),
		Config: RunConfig{Rounds: h.cfg.Rounds, TCPSeconds: secs(h.cfg.Duration), UDPStepSecs: secs(h.cfg.UDPStep),
			SearchSteps: h.cfg.SearchSteps, PingCount: h.cfg.PingCount, Quick: h.cfg.Quick, Modes: h.cfg.Modes, Command: h.cfg.Command,
			SweepModes: h.cfg.sweepModes(), SweepThreads: h.cfg.SweepThreads, SweepSteps: h.cfg.SweepSteps,
			SplitModes: h.cfg.inModes(h.cfg.SplitModes), Projection: Proj16},
	}
	if h.cfg.Idle > 0 {
		res.Config.IdleSeconds = secs(h.cfg.Idle)
	}
	var runs []*modeRun
	var failed []string
	for _, name := range h.cfg.Modes {
		mode, _ := newMode(name, h.cfg)
		if a, ok := mode.(interface{ attach(*Harness) }); ok {
			a.attach(h)
		}
		mr := &modeRun{mode: mode, res: newModeResult(name)}
		res.Modes = append(res.Modes, mr.res)
		if err := h.setup(ctx, mr); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			mr.res.Unavailable = err.Error()
			mr.res.NotInDaemon = errors.Is(err, ErrNotInDaemon)
			if !errors.Is(err, ErrUnavailable) {
				mr.res.Unavailable = "failed: " + err.Error()
				mr.res.Failed = true
				failed = append(failed, name)
			}
			h.logf("%s: %s", name, mr.res.Unavailable)
			// What it started must not run on beside the others (a
			// busy-polling daemon would take their CPU).
			if err := mode.Stop(); err != nil {
				mr.res.Notes = append(mr.res.Notes, "stop: "+err.Error())
			}
			continue
		}
		if n, ok := mode.(interface{ Note() string }); ok {
			mr.res.Notes = append(mr.res.Notes, n.Note())
		}
		if err := setPaused(mr, true); err != nil {
			return res, err
		}
		runs = append(runs, mr)
	}
	for round := 1; round <= h.cfg.Rounds; round++ {
		if h.cfg.Idle > 0 {
			if err := h.idle(ctx, runs); err != nil {
				res.Elapsed = time.Since(start).Seconds()
				res.Summarize()
				return res, err
			}
		}
		for _, mr := range runs {
			if mr.res.Unavailable != "" {
				continue
			}
			h.logf("round %d/%d: %s", round, h.cfg.Rounds, mr.mode.Name())
			err := setPaused(mr, false)
			if err == nil {
				err = h.measure(ctx, mr)
			}
			if perr := setPaused(mr, true); err == nil {
				err = perr
			}
			if err != nil {
				if ctx.Err() != nil {
					res.Elapsed = time.Since(start).Seconds()
					res.Summarize()
					return res, ctx.Err()
				}
				mr.res.Unavailable = fmt.Sprintf("failed in round %d: %v", round, err)
				mr.res.Failed = true
				failed = append(failed, mr.mode.Name())
				h.logf("%s: %s", mr.mode.Name(), mr.res.Unavailable)
			}
		}
	}
	for _, mr := range runs {
		if err := mr.mode.Stop(); err != nil {
			mr.res.Notes = append(mr.res.Notes, "stop: "+err.Error())
		}
	}
	// The control plane last, with the testbeds quiet.
	res.ControlPlane = h.controlPlane(ctx)
	if cp := res.ControlPlane; cp != nil && cp.Failed {
		h.logf("control plane: %s", cp.Unavailable)
		failed = append(failed, "control plane")
	}
	res.Elapsed = time.Since(start).Seconds()
	res.Summarize()
	if len(failed) > 0 {
		return res, fmt.Errorf("modes failed: %s", strings.Join(failed, ", "))
	}
	return res, nil
}

func secs(d time.Duration) int { return max(1, int(math.Round(d.Seconds()))) }

// setup builds the testbed of mr, sets the mode up and starts iperf3 -s.
func (h *Harness) setup(ctx context.Context, mr *modeRun) error {
	name := mr.mode.Name()
	dir, err := filepath.Abs(filepath.Join(h.cfg.OutDir, name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("out dir: %w", err)
	}
	tb, err := newTestbed(ctx, h, name, dir)
	if err != nil {
		return err
	}
	mr.tb = tb
	if err := mr.mode.Setup(ctx, tb); err != nil {
		return err
	}
	if err := waitOverlay(ctx, tb, 10*time.Second, mr.mode.Check); err != nil {
		return err
	}
	return h.startServer(ctx, mr)
}

// startServer (re)starts the iperf3 server in node B and waits until it
// listens.
func (h *Harness) startServer(ctx context.Context, mr *modeRun) error {
	b := mr.tb.Nodes[1]
	if mr.server != nil {
		_ = mr.server.Stop(2 * time.Second)
	}
	d := nettest.IperfServer(b.NS, b.Pod, iperfPort, filepath.Join(mr.tb.Dir, "iperf3-server.log"))
	if err := h.startDaemon(d); err != nil {
		return err
	}
	mr.server = d
	return nettest.WaitListen(ctx, d, iperfPort)
}

// iperf runs one iperf3 client test from node A to node B's pod address;
// on a failure it restarts the server and tries once more.
func (h *Harness) iperf(ctx context.Context, mr *modeRun, seconds int, args ...string) (nettest.IperfResult, error) {
	a, b := mr.tb.Nodes[0], mr.tb.Nodes[1]
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			if err := h.startServer(ctx, mr); err != nil {
				return nettest.IperfResult{}, err
			}
		}
		r, err := nettest.RunIperf3(ctx, a.NS, a.Pod, b.Pod, iperfPort, seconds, args...)
		if err := ctx.Err(); err != nil {
			return nettest.IperfResult{}, err
		}
		if err == nil {
			return r, nil
		}
		lastErr = err
		h.logf("%s: %v (retrying)", mr.mode.Name(), lastErr)
	}
	return nettest.IperfResult{}, lastErr
}

// cpuSeconds sums the CPU time of pids.
func cpuSeconds(pids []int) (float64, error) {
	var sum float64
	for _, p := range pids {
		s, err := nettest.ProcCPU(p)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// measure runs every workload once on mr and appends the samples.
func (h *Harness) measure(ctx context.Context, mr *modeRun) error {
	r := mr.res
	add := func(k string, v float64) { r.Samples[k] = append(r.Samples[k], v) }
	pids := mr.mode.PIDs()
	check := func() error {
		if err := mr.mode.Check(); err != nil {
			return err
		}
		return ctx.Err()
	}

	// TCP, with the vxtun processes' CPU time and the whole machine's
	// (/proc/stat: every mode, kernel ones included) across the TCP tests.
	cpu0, err := cpuSeconds(pids)
	if err != nil {
		return err
	}
	mcpu0, err := ReadMachineCPU()
	if err != nil {
		return err
	}
	tsec := secs(h.cfg.Duration)
	t1, err := h.iperf(ctx, mr, tsec)
	if err != nil {
		return fmt.Errorf("tcp 1 stream: %w", err)
	}
	add(MetricTCP1, t1.RecvBps/1e9)
	t4, err := h.iperf(ctx, mr, tsec, "-P", "4")
	if err != nil {
		return fmt.Errorf("tcp 4 streams: %w", err)
	}
	add(MetricTCP4, t4.RecvBps/1e9)
	// Scaling with streams (the CPU figures cover all four tests).
	var t2, t8 nettest.IperfResult
	if t2, err = h.iperf(ctx, mr, tsec, "-P", "2"); err != nil {
		return fmt.Errorf("tcp 2 streams: %w", err)
	}
	add(MetricTCP2, t2.RecvBps/1e9)
	if t8, err = h.iperf(ctx, mr, tsec, "-P", "8"); err != nil {
		return fmt.Errorf("tcp 8 streams: %w", err)
	}
	add(MetricTCP8, t8.RecvBps/1e9)
	cpu1, err := cpuSeconds(pids)
	if err != nil {
		return fmt.Errorf("vxtun cpu: %w", err)
	}
	mcpu1, err := ReadMachineCPU()
	if err != nil {
		return err
	}
	if gb := float64(t1.RecvBytes+t2.RecvBytes+t4.RecvBytes+t8.RecvBytes) / 1e9; gb > 0 {
		if cpu := mcpu1.Sub(mcpu0) / gb; cpu > 0 {
			add(MetricMachineCPUPerGB, cpu)
			if p, ok := Proj16.Project(cpu, modeSpread(mr.mode.Name())); ok {
				add(MetricProj16, 8*p)
			}
		}
		if len(pids) > 0 {
			add(MetricCPUPerGB, (cpu1-cpu0)/gb)
		}
	}
	h.logf("  tcp1 %.2f, tcp2 %.2f, tcp4 %.2f, tcp8 %.2f Gbit/s", t1.RecvBps/1e9, t2.RecvBps/1e9, t4.RecvBps/1e9, t8.RecvBps/1e9)
	if err := check(); err != nil {
		return err
	}

	// Ping.
	p50, p99, loss, ws, err := h.ping(ctx, mr)
	if err != nil {
		return err
	}
	add(MetricPingP50, p50)
	add(MetricPingP99, p99)
	if loss > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("ping lost %d probes", loss))
	}
	h.logf("  ping p50 %.1f µs p99 %.1f µs", p50, p99)
	if rtts := float64(h.cfg.PingCount - loss); ws != nil && rtts > 0 {
		add(MetricPingWakeups, float64(ws.Wakeups)/rtts)
		add(MetricPingCrossWakeups, float64(ws.Cross)/rtts)
		lat, ok := Percentile(ws.CrossLatency, 50)
		if ok {
			add(MetricPingCrossWakeLat, lat)
		}
		h.logf("  ping wake-ups per round trip %.2f, cross-CPU %.2f (p50 %.1f µs from wake-up to running)", float64(ws.Wakeups)/rtts, float64(ws.Cross)/rtts, lat)
	}
	if err := check(); err != nil {
		return err
	}

	// UDP RFC 2544 rates, one generator thread per CPU, and the CPU cost
	// per packet at the 64-byte rate found.
	main := map[int]searchOutcome{}
	for _, u := range []struct {
		key  string
		size int
	}{{MetricUDP64, 64}, {MetricUDP1400, 1400}} {
		sr, err := h.udpSearch(ctx, mr, u.size, udpProbeRate(u.size), 0, h.cfg.SearchSteps)
		if err != nil && !errors.Is(err, errNoPass) {
			return fmt.Errorf("udp %d B: %w", u.size, err)
		}
		main[u.size] = searchOutcome{sr, err}
		h.udpRate(mr, u.key, u.size, sr, err)
		if err := check(); err != nil {
			return err
		}
	}
	if best := main[64].sr.Best; main[64].err == nil && best.Received > 0 {
		f := perMpps(best, 64, runtime.NumCPU())
		add(MetricMachineCPUPerMpps, f.machine)
		if p, ok := Proj16.Project(f.machine, modeSpread(mr.mode.Name())); ok {
			add(MetricProj16UDP, p)
		}
		if len(pids) > 0 {
			add(MetricCPUPerMpps, f.own)
		}
	}
	if slices.Contains(h.cfg.SweepModes, mr.mode.Name()) {
		if err := h.sweep(ctx, mr, main, runtime.NumCPU()); err != nil {
			return err
		}
	}
	if slices.Contains(h.cfg.SplitModes, mr.mode.Name()) {
		if err := h.split(ctx, mr); err != nil {
			return fmt.Errorf("one CPU per node: %w", err)
		}
		if err := check(); err != nil {
			return err
		}
	}

	// Peak memory of the vxtun processes.
	if len(pids) > 0 {
		var peak int64
		for _, p := range pids {
			rss, err := nettest.ProcPeakRSS(p)
			if err != nil {
				return err
			}
			peak = max(peak, rss)
		}
		add(MetricRSS, float64(peak)/(1<<20))
	}
	return nil
}

// ping sends PingCount probes at 1 ms from pod A to pod B after a short
// warm-up and returns p50 and p99 in µs and the number lost.
func (h *Harness) ping(ctx context.Context, mr *modeRun) (p50, p99 float64, lost int, ws *WakeStats, err error) {
	a, b := mr.tb.Nodes[0], mr.tb.Nodes[1]
	if err := pingWarmUp(ctx, a, b); err != nil {
		return 0, 0, 0, nil, err
	}
	// The wake-ups on the path, from a scheduler trace of the probes.
	wt, terr := StartWakeTrace(mr.mode.PIDs())
	p50, p99, lost, err = pingProbes(ctx, a, b, h.cfg.PingCount)
	if wt != nil {
		var st WakeStats
		if st, terr = wt.Stop(); terr == nil {
			ws = &st
		}
	}
	if terr != nil && !slices.Contains(mr.res.Notes, terr.Error()) {
		mr.res.Notes = append(mr.res.Notes, terr.Error())
	}
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return p50, p99, lost, ws, nil
}

// pingWarmUp sends a few probes from pod A to pod B (ARP, caches).
func pingWarmUp(ctx context.Context, a, b *Node) error {
	if _, err := nettest.Ping(ctx, a.NS, a.Pod, b.Pod, "-W", "1", "-c", "5", "-i", "0.01"); err != nil {
		return fmt.Errorf("ping warm-up: %w", err)
	}
	return nil
}

// pingProbes sends n probes at 1 ms from pod A to pod B and returns p50
// and p99 in µs and the number lost.
func pingProbes(ctx context.Context, a, b *Node, n int) (p50, p99 float64, lost int, err error) {
	deadline := strconv.Itoa(n/1000 + 10)
	pctx, cancel := context.WithTimeout(ctx, time.Duration(n/1000+20)*time.Second)
	defer cancel()
	// Lost probes make ping exit non-zero; they are counted, not fatal.
	pr, err := nettest.Ping(pctx, a.NS, a.Pod, b.Pod, "-W", "1", "-c", strconv.Itoa(n), "-i", "0.001", "-w", deadline)
	if len(pr.RTTs) == 0 {
		return 0, 0, 0, fmt.Errorf("ping: no replies of %d: %v", pr.Transmitted, err)
	}
	us := make([]float64, len(pr.RTTs))
	for i, d := range pr.RTTs {
		us[i] = float64(d) / float64(time.Microsecond)
	}
	p50, _ = Percentile(us, 50)
	p99, _ = Percentile(us, 99)
	return p50, p99, pr.Transmitted - pr.Received, nil
}

// genPort is the UDP port the generator's receiver binds in node B.
const genPort = 5301

// udpSearch finds the RFC 2544 rate for size-byte UDP payloads with the
// bench's own generator (RunGen with threads paced sendmmsg threads, 0 =
// one per CPU), not iperf3, whose single thread bounded the kernel path;
// at most steps trials after the overload probe. Each trial also records
// the mode's processes' CPU.
func (h *Harness) udpSearch(ctx context.Context, mr *modeRun, size int, maxRate float64, threads, steps int) (SearchResult, error) {
	a, b := mr.tb.Nodes[0], mr.tb.Nodes[1]
	pids := mr.mode.PIDs()
	trial := func(ctx context.Context, rate float64) (Trial, error) {
		cpu0, err := cpuSeconds(pids)
		if err != nil {
			return Trial{}, err
		}
		g, err := RunGen(ctx, a.NS, b.NS, a.Pod, b.Pod, genPort, GenConfig{Size: size, Rate: rate, Threads: threads, Duration: h.cfg.UDPStep})
		if err != nil {
			return Trial{}, err
		}
		t := Trial{Sent: g.SentBps(size), Received: g.RecvBps(size), LossPercent: g.LossPercent(), Busy: g.Busy}
		if cpu1, err := cpuSeconds(pids); err == nil && g.Elapsed > 0 {
			t.ProcBusy = (cpu1 - cpu0) / g.Elapsed.Seconds()
		}
		return t, nil
	}
	cfg := SearchConfig{Max: maxRate, LossLimit: 0.1, Resolution: h.cfg.Resolution, MaxSteps: steps, GeneratorSlack: 0.1}
	return SearchRate(ctx, cfg, trial)
}

// DescribeMachine collects the machine description for the results.
func DescribeMachine(vxtun string) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown", Commit: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("iperf3", "--version").Output(); err == nil {
		m.Iperf3, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
		if i := strings.Index(m.Iperf3, " ("); i > 0 {
			m.Iperf3 = m.Iperf3[:i]
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			m.Commit += " (dirty tree)"
		}
	}
	if vxtun != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, vxtun, "version").Output(); err == nil {
			m.Vxtun, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
		}
	}
	return m
}
