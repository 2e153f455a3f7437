package bench

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// The control-plane benchmark (RunControlPlane, controlplane_linux.go)
// measures what a node pays for a large peer set: applying a whole set,
// applying a one-peer change, and the daemon's memory. Its peers are
// flannel nodes of a cluster whose Network is ControlPlaneNetwork cut into
// /29s (5 000 subnets fit), with public IPs in 198.18.1.0–198.18.120.255
// (RFC 2544), never sent to: no traffic is routed to them.

// ControlPlaneNetwork and ControlPlaneSubnetLen are the net-conf.json of
// the control-plane benchmark; the node itself has ControlPlaneSubnet.
var (
	ControlPlaneNetwork = netip.MustParsePrefix("198.19.0.0/16")
	ControlPlaneSubnet  = netip.MustParsePrefix("198.19.0.8/29")
)

// The control-plane node's public IP (on the testbed's underlay) and VTEP
// MAC.
var (
	controlPlaneNodeIP  = netip.MustParseAddr("198.18.0.1")
	controlPlaneVtepMAC = net.HardwareAddr{0x0e, 0x76, 0x63, 0x70, 0xff, 0x01}
)

const ControlPlaneSubnetLen = 29

// ControlPlaneConfig says what RunControlPlane measures.
type ControlPlaneConfig struct {
	// Binary is the vxtun binary whose RSS is measured ("" skips the
	// daemon part).
	Binary string
	// Peers is the size of the peer set (default 5 000, at most
	// MaxControlPlanePeers).
	Peers int
	// Updates is the number of one-peer changes timed in process
	// (default 200); the daemon gets Reloads file reloads (default 20).
	Updates, Reloads int
	// Dir holds the daemon's config files and log ("" makes a temporary
	// directory, removed afterwards).
	Dir string
}

// MaxControlPlanePeers is the most peers the benchmark's address plan
// holds (/29s of ControlPlaneNetwork after the node's own).
const MaxControlPlanePeers = 8000

// ControlPlaneResult is one RunControlPlane run. Durations are wall time
// (noisy on a loaded machine); sizes are bytes.
type ControlPlaneResult struct {
	Peers int
	// FullSet is a whole Peers-peer set applied to a fresh userspace
	// dataplane (dataplane.Dataplane.SetPeers, every peer checked, the
	// tables built); FullSetFilter is the nftables peer filter created
	// for it (hostnet.Host.SetPeerFilter).
	FullSet, FullSetFilter time.Duration
	// UpdateP50 and UpdateP99 are one peer moved to another underlay
	// address, applied by the dataplane's SetPeers (Updates samples);
	// FilterP50 and FilterP99 the peer filter's transaction for it.
	UpdateP50, UpdateP99 time.Duration
	FilterP50, FilterP99 time.Duration
	// UpdateAllocBytes and UpdateAllocs are the heap the dataplane's
	// SetPeers allocates per one-peer update (mean).
	UpdateAllocBytes, UpdateAllocs float64
	// ReloadP50 and ReloadP99 are the daemon's: the peers file rewritten
	// with one peer moved, SIGHUP, until its /metrics count the update
	// (file read and parse, the node's apply, the peer filter; polled, so
	// ~0.1 ms coarser). Zero without Binary.
	ReloadP50, ReloadP99 time.Duration
	// BaselineRSS and BaselineHWM are the daemon's VmRSS and VmHWM with one
	// peer; StartHWM its VmHWM once it runs with Peers peers, RSS and HWM
	// after its reloads (each a parse of the whole file). Zero without
	// Binary.
	BaselineRSS, BaselineHWM int64
	StartHWM, RSS, HWM       int64
	// BaselineAnon and Anon are the anonymous part of BaselineRSS and RSS
	// (RssAnon: heap, stacks), the rest being mostly the binary's pages.
	BaselineAnon, Anon int64
}

// ControlPlanePeers returns n VXLAN peers for the control-plane benchmark:
// peer i is "node-NNNN" with public IP 198.18.<1+i/250>.<1+i%250>, subnet
// the (i+2)-th /29 of ControlPlaneNetwork (the first two are the network's
// first subnet and the node's own) and a VtepMAC of its own.
func ControlPlanePeers(n int) ([]config.Peer, error) {
	if n < 0 || n > MaxControlPlanePeers {
		return nil, fmt.Errorf("control-plane peers: %d out of range 0..%d", n, MaxControlPlanePeers)
	}
	base := ControlPlaneNetwork.Addr().As4()
	peers := make([]config.Peer, n)
	for i := range peers {
		off := (i + 2) << (32 - ControlPlaneSubnetLen)
		sub := [4]byte{base[0], base[1], byte(off >> 8), byte(off)}
		peers[i] = config.Peer{
			Name:     fmt.Sprintf("node-%04d", i),
			PublicIP: netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)}),
			Backend:  config.BackendVXLAN, VNI: 1,
			VtepMAC: net.HardwareAddr{0x0e, 0x76, 0x63, 0x70, byte(i >> 8), byte(i)},
			Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4(sub), ControlPlaneSubnetLen)},
		}
	}
	return peers, nil
}

// movePeer returns p on another underlay address (198.18.x.y ↔
// 198.18.x+100.y, still never sent to): what a node that moved, or a
// lease renewed with new data, changes.
func movePeer(p config.Peer) config.Peer {
	a := p.PublicIP.As4()
	if a[2] < 100 {
		a[2] += 100
	} else {
		a[2] -= 100
	}
	p.PublicIP = netip.AddrFrom4(a)
	return p
}

// controlPlaneNetConf is the benchmark's net-conf.json.
func controlPlaneNetConf() nettest.NetConf {
	return nettest.NetConf{Network: ControlPlaneNetwork.String(), SubnetLen: ControlPlaneSubnetLen,
		Backend: nettest.Backend{Type: string(config.BackendVXLAN)}}
}

// peersConf is peers as peers.json lists them.
func peersConf(peers []config.Peer) nettest.PeersConf {
	pc := nettest.PeersConf{Peers: make([]nettest.PeerConf, 0, len(peers))}
	for _, p := range peers {
		subs := make([]string, len(p.Subnets))
		for i, s := range p.Subnets {
			subs[i] = s.String()
		}
		pc.Peers = append(pc.Peers, nettest.PeerConf{Name: p.Name, PublicIP: p.PublicIP.String(),
			Subnets: subs, VtepMAC: p.VtepMAC.String()})
	}
	return pc
}

// durationPercentile is Percentile for durations (0 for no samples).
func durationPercentile(ds []time.Duration, p float64) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	v, _ := Percentile(xs, p)
	return time.Duration(v)
}

// parseMetrics returns the series without labels of a Prometheus text
// response (headers and comments skipped).
func parseMetrics(b []byte) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.ContainsAny(f[0], "{:") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m
}

// procStatusBytes reads a "Vm...:  N kB" line of /proc/PID/status.
func procStatusBytes(status []byte, key string) (int64, error) {
	for _, l := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(l, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 2 && f[1] == "kB" {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return kb * 1024, nil
			}
		}
		return 0, fmt.Errorf("status: bad %s line %q", key, l)
	}
	return 0, fmt.Errorf("status: no %s", key)
}
