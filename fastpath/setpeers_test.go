package fastpath

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/tun"
)

// scalePeers returns n VXLAN peers as a flannel cluster of n nodes has
// them: node i at 198.18.<i/250>.<i%250+1> with subnet
// 10.<i/256>.<i%256>.0/24 in Network 10.0.0.0/8 and 2001:2:0:<i>::/64 in
// IPv6Network 2001:2::/48 (RFC 5180).
func scalePeers(n int) []config.Peer {
	peers := make([]config.Peer, n)
	for i := range peers {
		peers[i] = config.Peer{
			Name:     fmt.Sprintf("node-%d", i),
			PublicIP: netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)}),
			Backend:  config.BackendVXLAN, VNI: 1,
			VtepMAC: net.HardwareAddr{0x0e, 0x76, 0x78, 0, byte(i >> 8), byte(i)},
			Subnets: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, byte(i >> 8), byte(i)}), 64),
			},
		}
	}
	return peers
}

// newScaleForwarder is a one-worker VXLAN forwarder on loopback with a fake
// device, dual-stack so IPv6 subnets are accepted.
func newScaleForwarder(t testing.TB) *Forwarder {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	f, err := New(Config{Backend: config.BackendVXLAN, VNI: 1, ListenAddr: netip.AddrPortFrom(lo, freeUDPPort(t, lo)),
		VtepMAC: mac1, VtepIP: netip.MustParseAddr("198.19.1.0"), Logger: quietLog},
		[]tun.Device{newFakeDev("scale", func([][]byte, int) {})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// reportLatency reports the p50 and p99 of ds in µs.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// procStatusKiB reads a "Vm...:" figure of /proc/self/status in bytes, or 0.
func procStatusKiB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// BenchmarkSetPeers: applying a peer set of n peers to a forwarder that
// has none (full), and the same set with one peer's underlay changed to a
// forwarder that has the set (update: what a lease renewal or a moved node
// costs). Reports p50/p99 per SetPeers and, for full, the heap and RSS the
// table holds.
func BenchmarkSetPeers(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		peers := scalePeers(n)
		b.Run(fmt.Sprintf("full/peers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var ds []time.Duration
			for b.Loop() {
				b.StopTimer()
				f := newScaleForwarder(b)
				b.StartTimer()
				t0 := time.Now()
				if err := f.SetPeers(peers); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
				b.StopTimer()
				f.Close()
				b.StartTimer()
			}
			reportLatency(b, ds)
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			f := newScaleForwarder(b)
			if err := f.SetPeers(peers); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(m1.HeapInuse-min(m0.HeapInuse, m1.HeapInuse))/(1<<20), "forwarder-heap-MiB")
		})
		b.Run(fmt.Sprintf("update/peers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			f := newScaleForwarder(b)
			if err := f.SetPeers(peers); err != nil {
				b.Fatal(err)
			}
			next := slices.Clone(peers)
			var ds []time.Duration
			for i := 0; b.Loop(); i++ {
				k := i % n
				p := next[k]
				a := p.PublicIP.As4()
				a[1] ^= 1 // 198.18.x.y ↔ 198.19.x.y: the node moved
				next[k].PublicIP = netip.AddrFrom4(a)
				t0 := time.Now()
				if err := f.SetPeers(next); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			reportLatency(b, ds)
		})
	}
}

// TestRSSAt5000Peers runs a forwarder with 5 000 peers, applies 100
// updates, in a fresh process (this test binary again), and checks its
// peak RSS (VmHWM) stays within 64 MiB: what a node of a 5 000-node
// cluster pays for its peer table, plus the Go runtime and the test binary.
func TestRSSAt5000Peers(t *testing.T) {
	if os.Getenv("VXTUN_RSS_HELPER") == "1" {
		f := newScaleForwarder(t)
		peers := scalePeers(5000)
		if err := f.SetPeers(peers); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			a := peers[i].PublicIP.As4()
			a[1] ^= 1
			peers[i].PublicIP = netip.AddrFrom4(a)
			if err := f.SetPeers(peers); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Printf("vmhwm=%.0f\n", procStatusKiB("VmHWM"))
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory multiplies RSS; run without -race")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRSSAt5000Peers$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VXTUN_RSS_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var hwm float64
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "vmhwm="); ok {
			hwm, _ = strconv.ParseFloat(v, 64)
		}
	}
	if hwm == 0 {
		t.Fatalf("helper printed no vmhwm:\n%s", out)
	}
	t.Logf("peak RSS with 5000 peers and 100 updates: %.1f MiB", hwm/(1<<20))
	if limit := 64.0 * (1 << 20); hwm > limit {
		t.Errorf("got peak RSS %.1f MiB, want ≤ 64 MiB", hwm/(1<<20))
	}
}
