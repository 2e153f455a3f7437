package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// fakeVxtunEnv makes the test binary act as a stand-in vxtun: "run -h"
// documents the harness's flags; "run" reads the harness's config files
// with the config package, routes each peer's subnets straight over the
// underlay (no encapsulation) and waits for SIGTERM. It exercises the
// plug-in path of the harness (config files, command line, start, ready,
// CPU/RSS accounting, stop) without the real daemon.
const fakeVxtunEnv = "VXBENCH_FAKE_VXTUN"

func TestMain(m *testing.M) {
	if v := os.Getenv(fakeVxtunEnv); v == "1" || v == "die" {
		os.Exit(fakeVxtun(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeVxtun(args []string) int {
	if len(args) < 1 || args[0] != "run" {
		fmt.Fprintln(os.Stderr, "fake vxtun: want run")
		return 2
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	netConf := fs.String(VxtunFlags.NetConf[1:], "", "net-conf.json")
	node := fs.String(VxtunFlags.Node[1:], "", "node settings")
	peers := fs.String(VxtunFlags.Peers[1:], "", "static peers")
	fs.String("dataplane", "", "auto, userspace or kernel (ignored: the fake forwards in userspace)")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if os.Getenv(fakeVxtunEnv) == "die" {
		fmt.Fprintln(os.Stderr, "fake vxtun: dying as asked")
		return 1
	}
	nc, err := config.LoadNetConf(*netConf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake vxtun:", err)
		return 1
	}
	nd, err := config.LoadNode(*node)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake vxtun:", err)
		return 1
	}
	ps, err := config.LoadPeers(*peers, nc, nd.OwnSubnets())
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake vxtun:", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	for _, p := range ps {
		for _, s := range p.Subnets {
			if out, err := exec.Command("ip", "route", "add", s.String(), "via", p.PublicIP.String(), "dev", "ul0").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "fake vxtun: route %s: %v: %s\n", s, err, out)
				return 1
			}
		}
	}
	fmt.Fprintln(os.Stderr, "fake vxtun: up")
	<-sigs
	fmt.Fprintln(os.Stderr, "fake vxtun: stopping")
	return 0
}

// TestHarnessFakeVxtun runs a quick measurement of the vxtun-vxlan mode
// with the stand-in daemon.
func TestHarnessFakeVxtun(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "iperf3", "ping", "bridge", "ss")
	t.Setenv(fakeVxtunEnv, "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := QuickConfig()
	// The fake has no --busy-poll: that mode must come out unavailable.
	cfg.Modes = []string{ModeVxtunVXLAN, ModeVxtunBusyPoll}
	cfg.SearchSteps, cfg.PingCount = 0, 50
	cfg.OutDir, cfg.Vxtun = t.TempDir(), self
	cfg.SweepModes, cfg.Idle, cfg.ControlPlane.Peers = nil, time.Second, 0
	h, err := NewHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if bp := res.mode(ModeVxtunBusyPoll); bp.Failed || !bp.NotInDaemon || !strings.HasSuffix(bp.Unavailable, ": daemon has no --busy-poll (it exited refusing the flag)") {
		t.Errorf("busy-poll with a daemon without the flag: got failed=%v not-in-daemon=%v %q, want unavailable: daemon has no --busy-poll", bp.Failed, bp.NotInDaemon, bp.Unavailable)
	}
	m := res.mode(ModeVxtunVXLAN)
	if m.Unavailable != "" {
		t.Fatalf("got %q, want the fake daemon to run", m.Unavailable)
	}
	if v := m.Samples[MetricIdleCPU]; len(v) != 1 || v[0] < 0 {
		t.Errorf("got daemon idle samples %v, want one ≥ 0", v)
	}
	if v, ok := m.Median[MetricCPUPerGB]; !ok || v < 0 {
		t.Errorf("got CPU per GB %v (%v), want a figure ≥ 0", v, ok)
	}
	if v := m.Median[MetricRSS]; !(v > 0) {
		t.Errorf("got peak RSS %v MiB, want > 0", v)
	}
	if v := m.Median[MetricTCP1]; !(v > 0) {
		t.Errorf("got TCP %v Gbit/s, want > 0", v)
	}
	for _, n := range m.Notes {
		if strings.HasPrefix(n, "stop:") {
			t.Errorf("got note %q, want a clean stop", n)
		}
	}

	// A daemon that dies at once makes the mode fail (not unavailable, not
	// a hang), and the run's error says so.
	t.Setenv(fakeVxtunEnv, "die")
	cfg.Modes = []string{ModeVxtunVXLAN}
	h2, err := NewHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Close() })
	start := time.Now()
	res, err = h2.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), ModeVxtunVXLAN) {
		t.Errorf("dying daemon: got run error %v, want one naming %s", err, ModeVxtunVXLAN)
	}
	m = res.mode(ModeVxtunVXLAN)
	if !m.Failed || !strings.Contains(m.Unavailable, "dying as asked") {
		t.Errorf("dying daemon: got failed=%v %q, want failed with the daemon's log", m.Failed, m.Unavailable)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("dying daemon: took %v to notice, want < 15 s", d)
	}
}
