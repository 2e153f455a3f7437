package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// vxtunForTest returns $VXBENCH_VXTUN, else a vxtun binary built from
// this tree.
func vxtunForTest(tb testing.TB) string {
	bin := os.Getenv("VXBENCH_VXTUN")
	if bin == "" {
		bin = filepath.Join(tb.TempDir(), "vxtun")
		out, err := exec.Command("go", "build", "-o", bin, "../cmd/vxtun").CombinedOutput()
		if err != nil {
			tb.Fatalf("build vxtun: %v\n%s", err, out)
		}
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// TestRunControlPlane runs the control-plane benchmark small (500 peers)
// with a vxtun binary built from this tree (or $VXBENCH_VXTUN): every
// figure is measured, the daemon applied every reload, and the run leaves
// no namespace of its own behind (one an earlier, killed run left does not
// count). Timings are logged, not asserted.
func TestRunControlPlane(t *testing.T) {
	nettest.RequirePrivileged(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		if os.Getenv("VXTUN_REQUIRE_PRIV") == "1" {
			t.Fatalf("no /dev/net/tun: %v", err)
		}
		t.Skipf("no /dev/net/tun: %v", err)
	}
	bin := vxtunForTest(t)
	before := cpNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunControlPlane(ctx, ControlPlaneConfig{Binary: bin, Peers: 500, Updates: 20, Reloads: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Peers != 500 {
		t.Errorf("Peers: got %d, want 500", res.Peers)
	}
	for _, d := range []struct {
		name     string
		p50, p99 time.Duration
	}{{"full set", res.FullSet, res.FullSet}, {"full filter", res.FullSetFilter, res.FullSetFilter},
		{"update", res.UpdateP50, res.UpdateP99}, {"filter", res.FilterP50, res.FilterP99}, {"reload", res.ReloadP50, res.ReloadP99}} {
		if d.p50 <= 0 || d.p99 < d.p50 {
			t.Errorf("%s: got p50 %v p99 %v, want 0 < p50 ≤ p99", d.name, d.p50, d.p99)
		}
	}
	if res.BaselineAnon <= 0 || res.Anon <= 0 || res.Anon > res.RSS {
		t.Errorf("anonymous RSS: got baseline %d, %d of %d; want > 0 and within RSS", res.BaselineAnon, res.Anon, res.RSS)
	}
	if res.UpdateAllocBytes <= 0 || res.UpdateAllocs <= 0 {
		t.Errorf("update allocations: got %v B, %v allocs, want both > 0", res.UpdateAllocBytes, res.UpdateAllocs)
	}
	for _, m := range []struct {
		name     string
		rss, hwm int64
	}{{"baseline", res.BaselineRSS, res.BaselineHWM}, {"500 peers", res.RSS, res.HWM}, {"500 peers at start", res.StartHWM, res.StartHWM}} {
		if m.rss < 1<<20 || m.hwm < m.rss {
			t.Errorf("%s: got VmRSS %d VmHWM %d, want ≥ 1 MiB and HWM ≥ RSS", m.name, m.rss, m.hwm)
		}
	}
	if left := newCPNamespaces(t, before); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

// cpNamespaces is the set of control-plane namespaces (vxcp-…) that exist.
func cpNamespaces(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	ns := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "vxcp-") {
			ns[f[0]] = true
		}
	}
	return ns
}

// newCPNamespaces lists the control-plane namespaces that exist now and
// not in before: ones an earlier run left are not this run's.
func newCPNamespaces(t *testing.T, before map[string]bool) []string {
	t.Helper()
	var left []string
	for n := range cpNamespaces(t) {
		if !before[n] {
			left = append(left, n)
		}
	}
	return left
}

// BenchmarkControlPlane is RunControlPlane at 5 000 peers (the Kubernetes
// node limit), once per iteration: p50/p99 of a one-peer update in the
// dataplane and in the peer filter, the daemon's reload, the full set, the
// allocations per update and the daemon's RSS with one peer and with 5 000.
func BenchmarkControlPlane(b *testing.B) {
	nettest.RequirePrivileged(b)
	bin := vxtunForTest(b)
	var res ControlPlaneResult
	for b.Loop() {
		var err error
		if res, err = RunControlPlane(context.Background(), ControlPlaneConfig{Binary: bin, Peers: 5000}); err != nil {
			b.Fatal(err)
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	b.ReportMetric(us(res.UpdateP50), "update-p50-µs")
	b.ReportMetric(us(res.UpdateP99), "update-p99-µs")
	b.ReportMetric(us(res.FilterP50), "filter-p50-µs")
	b.ReportMetric(us(res.FilterP99), "filter-p99-µs")
	b.ReportMetric(us(res.ReloadP50), "reload-p50-µs")
	b.ReportMetric(us(res.ReloadP99), "reload-p99-µs")
	b.ReportMetric(us(res.FullSet), "full-set-µs")
	b.ReportMetric(us(res.FullSetFilter), "full-filter-µs")
	b.ReportMetric(res.UpdateAllocBytes, "update-B")
	b.ReportMetric(res.UpdateAllocs, "update-allocs")
	b.ReportMetric(mib(res.BaselineHWM), "baseline-hwm-MiB")
	b.ReportMetric(mib(res.StartHWM), "start-hwm-MiB")
	b.ReportMetric(mib(res.HWM), "hwm-MiB")
	b.ReportMetric(mib(res.RSS), "rss-MiB")
	b.ReportMetric(mib(res.BaselineAnon), "baseline-anon-MiB")
	b.ReportMetric(mib(res.Anon), "anon-MiB")
}
