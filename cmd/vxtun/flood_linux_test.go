package main

// A flood of datagrams from a host that is no peer, on the underlay of two
// vxtun nodes (issue 11, item 6): the peer filter drops it in the kernel,
// before vxtun's sockets see it. Testbed: a switch namespace with bridge
// br0, node1 and node2 running vxtun with a pod each behind cni0, node3 the
// attacker at 198.18.0.3 on the same L2.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vxtun/vxtun/internal/nettest"
)

const floodDebug = "127.0.0.1:9090"

type floodBed struct {
	owner testing.TB // the test or benchmark that made the bed: daemons live as long as it
	nss   [3]*nettest.NS
	files [2]nettest.ConfigFiles
	vx    [2]*nettest.Daemon
	pods  [2]*nettest.Pod
}

func newFloodBed(tb testing.TB) *floodBed {
	tb.Helper()
	nettest.RequirePrivileged(tb)
	nettest.RequireCommand(tb, "ping")
	nettest.RequireCNI(tb)
	b := &floodBed{owner: tb}
	sw := nettest.NewNS(tb, "fsw")
	sw.Run("ip", "link", "add", "br0", "type", "bridge")
	sw.Run("ip", "link", "set", "br0", "up")
	for i := range b.nss {
		ns := nettest.NewNS(tb, fmt.Sprintf("f%d", i+1))
		port := fmt.Sprintf("f%d", i+1)
		nettest.Veth(tb, sw, port, "", ns, "ul0", nettest.UnderlayAddr(i+1).String()+"/24")
		sw.Run("ip", "link", "set", port, "master", "br0")
		b.nss[i] = ns
	}
	for k := range b.vx {
		me, other := nettest.PlanNode(k+1), nettest.PlanNode(2-k)
		b.files[k] = nettest.FilesIn(tb.TempDir())
		err := b.files[k].Write(nettest.NetConf{Network: nettest.OverlayNetwork, Backend: nettest.Backend{Type: "vxlan"}},
			nettest.NodeConf{PublicIP: me.Underlay.String(), Iface: nettest.UnderlayIface, Subnet: me.Subnet.String(),
				VtepMAC: me.VtepMAC.String(), SubnetFile: filepath.Join(b.files[k].Dir, "subnet.env"), IPMasq: true, Workers: 2},
			nettest.PeersOf(true, other))
		if err != nil {
			tb.Fatal(err)
		}
		b.start(tb, k, true)
	}
	for k := range b.pods {
		pn := nettest.NodePods(tb, b.nss[k], filepath.Join(b.files[k].Dir, "subnet.env"))
		b.pods[k] = pn.NewPod(tb, fmt.Sprintf("fp%d", k+1))
	}
	b.waitPing(tb)
	return b
}

// start starts vxtun on node k+1 and waits for its subnet.env.
func (b *floodBed) start(tb testing.TB, k int, filter bool) {
	tb.Helper()
	args := append([]string{vxtunBin, "run"}, b.files[k].Args()...)
	args = append(args, "--debug-addr", floodDebug, fmt.Sprintf("--peer-filter=%t", filter))
	env := filepath.Join(b.files[k].Dir, "subnet.env")
	_ = os.Remove(env)
	b.vx[k] = nettest.StartDaemon(b.owner, &nettest.Daemon{Name: fmt.Sprintf("vxtun%d", k+1), NS: b.nss[k], Argv: args})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(env); err == nil {
			return
		}
		if err := nettest.CheckRunning(b.vx[k]); err != nil {
			tb.Fatal(err)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("vxtun on node%d wrote no subnet.env within 15 s:\n%s", k+1, b.vx[k].Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart stops vxtun on node k+1 and starts it again with the filter on
// or off.
func (b *floodBed) restart(tb testing.TB, k int, filter bool) {
	tb.Helper()
	if err := b.vx[k].Stop(10 * time.Second); err != nil {
		tb.Fatalf("stop vxtun on node%d: %v", k+1, err)
	}
	b.start(tb, k, filter)
	b.waitPing(tb)
}

func (b *floodBed) waitPing(tb testing.TB) {
	tb.Helper()
	err := nettest.WaitPing(context.Background(), b.pods[0].NS, b.pods[0].Addr.Addr(), b.pods[1].Addr.Addr(), 15*time.Second,
		func() error { return nettest.CheckRunning(b.vx[0], b.vx[1]) })
	if err != nil {
		tb.Fatal(err)
	}
}

// counters returns node2's kernel (peer filter) and vxtun (unknown_source)
// drop counters.
func (b *floodBed) counters(tb testing.TB) (kernel, vxtun float64) {
	tb.Helper()
	m := metrics(tb, b.nss[1], floodDebug)
	return m["vxtun_peer_filter_drops_total"], m["vxtun_drops_total/unknown_source"]
}

// floodFrame is a VXLAN datagram's payload as a peer would send it to
// node2: VNI 1, node2's VTEP MAC, an inner IPv4/UDP packet to its pod.
func floodFrame() []byte {
	f := []byte{0x08, 0, 0, 0, 0, 0, 1, 0}
	f = append(f, nettest.NodeMAC(2)...)
	f = append(f, 0x0e, 0x76, 0x78, 0, 0, 0x63, 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0}
	ip = append(ip, nettest.PodAddr(3).AsSlice()...)
	ip = append(ip, nettest.PodAddr(2).AsSlice()...)
	ip = append(ip, 0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0)
	return append(f, ip...)
}

// flood sends VXLAN datagrams from node3 to node2's port at about pps (0:
// as fast as it can) until count are sent or ctx ends; it returns how many
// went out.
func (b *floodBed) flood(ctx context.Context, pps, count int) (int, error) {
	const batch = 64
	sent := 0
	err := b.nss[2].Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: nettest.UnderlayAddr(3).AsSlice()})
		if err != nil {
			return err
		}
		defer c.Close()
		pc := ipv4.NewPacketConn(c)
		dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(nettest.UnderlayAddr(2), 8472))
		msgs := make([]ipv4.Message, batch)
		frame := floodFrame()
		for i := range msgs {
			msgs[i] = ipv4.Message{Buffers: [][]byte{frame}, Addr: dst}
		}
		start := time.Now()
		for sent < count && ctx.Err() == nil {
			n, err := pc.WriteBatch(msgs[:min(batch, count-sent)], 0)
			if err != nil {
				return fmt.Errorf("flood after %d datagrams: %w", sent, err)
			}
			sent += n
			if pps > 0 {
				if ahead := time.Duration(float64(sent)/float64(pps)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		return nil
	})
	return sent, err
}

// waitCounter polls node2's counters until get returns at least want or
// 5 s pass, and returns the last value.
func (b *floodBed) waitCounter(tb testing.TB, want float64, get func(kernel, vxtun float64) float64) float64 {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := get(b.counters(tb))
		if v >= want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPeerFilterDropsFlood: datagrams from a non-peer are counted by the
// kernel's peer filter and never reach vxtun (its unknown_source counter
// stays); with --peer-filter=false they reach vxtun and are dropped there.
// Pod traffic flows after each flood.
func TestPeerFilterDropsFlood(t *testing.T) {
	b := newFloodBed(t)
	const count, pps = 20000, 50000 // paced, so that no datagram is lost on the way
	for _, filter := range []bool{true, false} {
		t.Run(fmt.Sprintf("filter=%t", filter), func(t *testing.T) {
			if !filter {
				b.restart(t, 1, false)
			}
			k0, v0 := b.counters(t)
			sent, err := b.flood(context.Background(), pps, count)
			if err != nil {
				t.Fatal(err)
			}
			var kernel, vxtun float64
			if filter {
				kernel = b.waitCounter(t, k0+float64(sent), func(k, _ float64) float64 { return k }) - k0
				_, v := b.counters(t)
				vxtun = v - v0
			} else {
				vxtun = b.waitCounter(t, v0+float64(sent), func(_, v float64) float64 { return v }) - v0
				k, _ := b.counters(t)
				kernel = k - k0
			}
			t.Logf("sent %d; dropped by the kernel's peer filter %.0f, by vxtun (unknown_source) %.0f", sent, kernel, vxtun)
			switch {
			case filter && (kernel < 0.99*float64(sent) || vxtun != 0):
				t.Errorf("filter on: kernel drops %.0f, vxtun drops %.0f; want >= %.0f (99%% of %d) and 0",
					kernel, vxtun, 0.99*float64(sent), sent)
			case !filter && (kernel != 0 || vxtun < 0.9*float64(sent)):
				t.Errorf("filter off: kernel drops %.0f, vxtun drops %.0f; want 0 and >= %.0f (90%% of %d)",
					kernel, vxtun, 0.9*float64(sent), sent)
			}
			b.waitPing(t)
		})
	}
}

// BenchmarkPeerFilterFlood: TCP throughput between the pods of node1 and
// node2 while node3 floods node2's port from a non-peer address, with the
// peer filter off and on (and without a flood, for reference). Each
// iteration moves floodXfer bytes; the flood runs at floodPPS (the rate of
// issue 11's measurement) for as long as the transfer takes.
//
//	go test -run '^$' -bench PeerFilterFlood -benchtime 3x ./cmd/vxtun
func BenchmarkPeerFilterFlood(b *testing.B) {
	const floodPPS, floodXfer = 373000, 512 << 20
	bed := newFloodBed(b)
	filterOn := true
	for _, mode := range []struct {
		name          string
		flood, filter bool
	}{
		{"flood=none/filter=on", false, true},
		{"flood=none/filter=off", false, false},
		{"flood=373kpps/filter=off", true, false},
		{"flood=373kpps/filter=on", true, true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			if mode.filter != filterOn {
				bed.restart(b, 1, mode.filter)
				filterOn = mode.filter
			}
			k0, v0 := bed.counters(b)
			cpu0, err := nettest.ProcCPU(bed.vx[1].PID())
			if err != nil {
				b.Fatal(err)
			}
			var moved int64
			var took time.Duration
			sent := 0
			for i := 0; b.Loop(); i++ {
				ctx, cancel := context.WithCancel(context.Background())
				floodDone := make(chan int, 1)
				if mode.flood {
					go func() {
						n, err := bed.flood(ctx, floodPPS, 1<<40)
						if err != nil && ctx.Err() == nil {
							b.Error(err)
						}
						floodDone <- n
					}()
					time.Sleep(200 * time.Millisecond) // the flood is on when the transfer starts
				} else {
					floodDone <- 0
				}
				x := nettest.Transfer{Src: bed.pods[0].Addr.Addr(), Dst: bed.pods[1].Addr.Addr(), Port: 6000 + i,
					Size: floodXfer, Seed: uint64(i), Timeout: 60 * time.Second}
				r, err := x.Send(context.Background(), bed.pods[0].NS, bed.pods[1].NS)
				cancel()
				sent += <-floodDone
				if err != nil {
					b.Fatal(err)
				}
				moved += r.Bytes
				took += r.Elapsed
			}
			b.StopTimer()
			time.Sleep(500 * time.Millisecond) // let the counters settle
			k1, v1 := bed.counters(b)
			cpu1, err := nettest.ProcCPU(bed.vx[1].PID())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(floodXfer)
			// node2's vxtun CPU time per GB received: what the flood costs it.
			b.ReportMetric((cpu1-cpu0)/(float64(moved)/1e9), "rx-CPU-s/GB")
			b.ReportMetric(float64(moved)*8/took.Seconds()/1e9, "Gbit/s")
			b.ReportMetric(float64(sent), "flood-datagrams")
			b.ReportMetric(k1-k0, "kernel-drops")
			b.ReportMetric(v1-v0, "vxtun-drops")
		})
	}
}
