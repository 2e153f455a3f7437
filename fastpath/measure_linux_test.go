package fastpath

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestMeasure prints ping RTT and single-stream TCP throughput (iperf3)
// between two vxtun nodes (VXLAN and legacy UDP), between vxtun and a kernel
// vxlan node (both directions), and between two kernel vxlan nodes for
// reference, all on the same two-namespace veth testbed. It is a measurement,
// not a check of speed: it runs only with VXTUN_MEASURE=1 and fails only if
// the tools fail.
//
//	VXTUN_MEASURE=1 go test -run TestMeasure -v ./fastpath/
func TestMeasure(t *testing.T) {
	if os.Getenv("VXTUN_MEASURE") != "1" {
		t.Skip("set VXTUN_MEASURE=1 to measure")
	}
	nettest.RequireCommand(t, "iperf3", "ping", "ss")
	ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	for _, tc := range []struct {
		name     string
		vxA, vxB bool
		backend  config.Backend
	}{
		{"vxtun-vxtun vxlan", true, true, config.BackendVXLAN},
		{"vxtun-vxtun udp", true, true, config.BackendUDP},
		{"vxtun-kernel vxlan", true, false, config.BackendVXLAN},
		{"kernel-kernel vxlan", false, false, config.BackendVXLAN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := nettest.NewTwoHosts(t)
			if tc.vxA {
				startVXTUN(t, h.A, 1, ua, tc.backend, 0, 1500, []config.Peer{peerFor(2, ub, tc.backend, 0)})
			} else {
				kernelNode(t, h.A, 1, ua, 8472, 2, ub, nettest.NodeMAC(2))
			}
			if tc.vxB {
				startVXTUN(t, h.B, 2, ub, tc.backend, 0, 1500, []config.Peer{peerFor(1, ua, tc.backend, 0)})
			} else {
				kernelNode(t, h.B, 2, ub, 8472, 1, ua, nettest.NodeMAC(1))
			}
			t.Logf("%s ping A→B (200 × 50 ms): %s", tc.name, ping(t, h.A, nettest.PodAddr(1), nettest.PodAddr(2), 200))
			t.Logf("%s TCP A→B: %.2f Gbit/s", tc.name, iperf(t, h.A, h.B, nettest.PodAddr(1), nettest.PodAddr(2)))
			t.Logf("%s TCP B→A: %.2f Gbit/s", tc.name, iperf(t, h.B, h.A, nettest.PodAddr(2), nettest.PodAddr(1)))
		})
	}
}

// iperf runs a 5-second single-stream iperf3 TCP test from client ns to
// server ns and returns the received rate in Gbit/s.
func iperf(t *testing.T, client, server *nettest.NS, src, dst netip.Addr) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := nettest.IperfServer(server, dst, 5201, "")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	if err := nettest.WaitListen(ctx, srv, 5201); err != nil {
		t.Fatal(err)
	}
	r, err := nettest.RunIperf3(ctx, client, src, dst, 5201, 5)
	if err != nil {
		t.Fatalf("iperf3: %v", err)
	}
	return r.RecvBps / 1e9
}
