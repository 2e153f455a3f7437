package bench

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// fakeTestbed is a testbed description without namespaces, for the pure
// command and config builders.
func fakeTestbed() *Testbed {
	tb := &Testbed{Mode: "x"}
	for i := 0; i < 2; i++ {
		idx := byte(i + 1)
		tb.Nodes[i] = &Node{Node: nettest.Node{Index: int(idx), Underlay: netip.AddrFrom4([4]byte{198, 18, 0, idx}),
			Subnet:  netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, idx, 0}), 24),
			Pod:     netip.AddrFrom4([4]byte{198, 19, idx, 1}),
			VtepMAC: net.HardwareAddr{0x0e, 0x76, 0x78, 0x62, 0x00, idx}}}
	}
	return tb
}

func TestFlannelVXLANCommands(t *testing.T) {
	tb := fakeTestbed()
	got := FlannelVXLANCommands(tb, tb.Nodes[0])
	want := []string{
		"ip link add flannel.1 address 0e:76:78:62:00:01 type vxlan id 1 local 198.18.0.1 dev ul0 dstport 8472 nolearning",
		"ip link set flannel.1 mtu 1450",
		"ip addr add 198.19.1.0/32 dev flannel.1",
		"ip link set flannel.1 up",
		"ip neigh replace 198.19.2.0 lladdr 0e:76:78:62:00:02 dev flannel.1 nud permanent",
		"bridge fdb replace 0e:76:78:62:00:02 dev flannel.1 dst 198.18.0.2 self permanent",
		"ip route replace 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d commands, want %d", len(got), len(want))
	}
	for i := range want {
		if g := strings.Join(got[i], " "); g != want[i] {
			t.Errorf("command %d: got %q, want %q", i, g, want[i])
		}
	}
}

func TestVxtunCommandAndConfig(t *testing.T) {
	c := VxtunCommand{Binary: "/x/vxtun", NetConf: "n.json", Node: "node.json", Peers: "p.json", Extra: []string{"-v"}}
	if got, want := strings.Join(c.Argv(), " "), "/x/vxtun run -net-conf n.json -node node.json -peers p.json -v"; got != want {
		t.Errorf("got argv %q, want %q", got, want)
	}
	tb := fakeTestbed()
	for _, b := range []config.Backend{config.BackendVXLAN, config.BackendUDP} {
		dir := t.TempDir()
		f, err := WriteVxtunConfig(tb, tb.Nodes[1], b, dir)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		peers, err := os.ReadFile(f.Peers)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(peers), `"198.19.1.0/24"`) || !strings.Contains(string(peers), `"198.18.0.1"`) {
			t.Errorf("%s: node 2's peers file does not name node 1:\n%s", b, peers)
		}
		if hasMAC := strings.Contains(string(peers), "VtepMAC"); hasMAC != (b == config.BackendVXLAN) {
			t.Errorf("%s: peers VtepMAC present = %v", b, hasMAC)
		}
	}
}

func TestCheckVxtunBinary(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := CheckVxtunBinary(ctx, filepath.Join(dir, "nope")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("missing binary: got %v, want ErrUnavailable", err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	stub := filepath.Join(dir, "stub")
	if err := os.WriteFile(stub, []byte("#!"+sh+"\necho 'vxtun: not built yet' >&2; exit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckVxtunBinary(ctx, stub); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "-peers") {
		t.Errorf("stub binary: got %v, want ErrUnavailable naming the missing flags", err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("#!"+sh+"\necho 'Usage of run:\n  -net-conf string\n  -node string\n  -peers string' >&2; exit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckVxtunBinary(ctx, good); err != nil {
		t.Errorf("binary documenting the flags: got %v, want nil", err)
	}
}

// TestHarnessSmoke runs the quick harness over veth and kernel vxlan on a
// real testbed: it checks the harness works, not the speed.
func TestHarnessSmoke(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "iperf3", "ping", "bridge", "ss")
	cfg := QuickConfig()
	cfg.Modes = []string{ModeVeth, ModeKernelVXLAN}
	cfg.SearchSteps = 1
	cfg.PingCount = 100
	cfg.OutDir = t.TempDir()
	// The scaling rows on kernel vxlan only: one thread searched, one
	// per CPU copied from the main rows; no control plane (no binary).
	cfg.SweepModes, cfg.SweepThreads = []string{ModeKernelVXLAN}, []int{1, runtime.NumCPU()}
	// And the one-CPU-per-node rows on kernel vxlan only.
	cfg.SplitModes = []string{ModeKernelVXLAN}
	cfg.Idle, cfg.ControlPlane.Peers = time.Second, 0
	h, err := NewHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), "vxb-"+h.runID) {
			t.Errorf("namespaces left behind:\n%s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, m := range res.Modes {
		if m.Unavailable != "" {
			t.Fatalf("%s: %s", m.Mode, m.Unavailable)
		}
		for _, k := range []string{MetricTCP1, MetricTCP4, MetricPingP50, MetricPingP99} {
			if v := m.Median[k]; !(v > 0) {
				t.Errorf("%s %s: got %v, want > 0", m.Mode, k, v)
			}
		}
		if _, ok := m.Median[MetricCPUPerGB]; ok {
			t.Errorf("%s: got a vxtun CPU figure for a kernel mode", m.Mode)
		}
		if len(m.Samples[MetricUDP64]) != 1 || len(m.Samples[MetricUDP1400]) != 1 {
			t.Errorf("%s: got UDP samples %v / %v, want one each", m.Mode, m.Samples[MetricUDP64], m.Samples[MetricUDP1400])
		}
	}
	kern, veth := res.mode(ModeKernelVXLAN), res.mode(ModeVeth)
	for _, k := range []string{SweepKey(64, 1), SweepKey(1400, 1)} {
		if len(kern.Samples[k]) != 1 || len(veth.Samples[k]) != 0 {
			t.Errorf("%s: got kernel-vxlan %v, veth %v; want one sample, none", k, kern.Samples[k], veth.Samples[k])
		}
	}
	for _, k := range []string{MetricSplitTCP1, MetricSplitPingP50, MetricSplitPingP99} {
		if len(kern.Samples[k]) != 1 || !(kern.Samples[k][0] > 0) || len(veth.Samples[k]) != 0 {
			t.Errorf("%s: got kernel-vxlan %v, veth %v; want one sample > 0, none", k, kern.Samples[k], veth.Samples[k])
		}
	}
	if !slices.Equal(res.Config.SplitModes, []string{ModeKernelVXLAN}) {
		t.Errorf("recorded split modes: got %v, want [kernel-vxlan]", res.Config.SplitModes)
	}
	for _, size := range []int{64, 1400} {
		main := MetricUDP64
		if size == 1400 {
			main = MetricUDP1400
		}
		if got, want := kern.Samples[SweepKey(size, runtime.NumCPU())], kern.Samples[main]; len(got) != 1 || got[0] != want[0] {
			t.Errorf("%d B with one thread per CPU: got %v, want the main row's %v", size, got, want)
		}
	}
	for _, m := range res.Modes {
		if v := m.Samples[MetricIdleMachine]; len(v) != 1 || v[0] < 0 {
			t.Errorf("%s: got idle machine samples %v, want one ≥ 0", m.Mode, v)
		}
		if _, ok := m.Median[MetricIdleCPU]; ok {
			t.Errorf("%s: got a daemon idle figure for a kernel mode", m.Mode)
		}
		if v, ok := m.Median[MetricMachineCPUPerMpps]; ok && !(v > 0) {
			t.Errorf("%s: got machine CPU per Mpps %v, want > 0", m.Mode, v)
		}
		if v := m.Median[MetricProj16]; !(v > 0) {
			t.Errorf("%s: got TCP projection %v, want > 0", m.Mode, v)
		}
	}
	if res.ControlPlane != nil {
		t.Errorf("got control plane %+v, want none with 0 peers", res.ControlPlane)
	}
	if q := res.mode(ModeKernelVXLAN).Ratio[MetricTCP1]; q != 1 {
		t.Errorf("kernel-vxlan tcp1 ratio to itself: got %v, want 1", q)
	}
	if _, ok := res.mode(ModeVeth).Ratio[MetricTCP1]; !ok {
		t.Errorf("veth has no tcp1 ratio")
	}
}

// TestVxtunModesUp brings the vxtun modes up (pod-to-pod ping) with a vxtun
// binary built from this tree (or $VXBENCH_VXTUN). The CI smoke run of
// `vxbench -quick` is what measures them.
func TestVxtunModesUp(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "iperf3", "bridge", "ss")
	bin := vxtunForTest(t)
	if err := CheckVxtunBinary(context.Background(), bin); err != nil {
		t.Fatalf("vxtun binary %s: %v", bin, err)
	}
	cfg := QuickConfig()
	cfg.Vxtun, cfg.OutDir = bin, t.TempDir()
	cfg.Modes = []string{ModeVxtunVXLAN, ModeVxtunUDP}
	h, err := NewHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range cfg.Modes {
		mode, err := newMode(name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mode.(*VxtunMode).h = h
		mr := &modeRun{mode: mode, res: newModeResult(name)}
		if err := h.setup(ctx, mr); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := mode.Stop(); err != nil {
			t.Errorf("%s: stop: %v", name, err)
		}
	}
}
