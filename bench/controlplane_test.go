package bench

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
)

// TestControlPlanePeers: the benchmark's peer set is one a node accepts
// (config's own parser and checks: unique names, addresses and MACs,
// subnets inside the Network and off the node's own), and movePeer keeps
// it so.
func TestControlPlanePeers(t *testing.T) {
	for _, n := range []int{1, 250, 5000, MaxControlPlanePeers} {
		peers, err := ControlPlanePeers(n)
		if err != nil {
			t.Fatalf("ControlPlanePeers(%d): %v", n, err)
		}
		for i := 0; i < n; i += 7 {
			peers[i] = movePeer(peers[i])
		}
		nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network":"198.19.0.0/16","SubnetLen":29,"Backend":{"Type":"vxlan"}}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(peersConf(peers))
		if err != nil {
			t.Fatal(err)
		}
		got, err := config.ParsePeersIn("peers.json", b, config.PeerScope{Network: nc,
			Own: []netip.Prefix{ControlPlaneSubnet}, Self: controlPlaneNodeIP, SelfMAC: controlPlaneVtepMAC})
		if err != nil {
			t.Fatalf("%d peers: ParsePeersIn: %v", n, err)
		}
		if len(got) != n {
			t.Fatalf("%d peers: got %d parsed, want %d", n, len(got), n)
		}
		for i := range got {
			if got[i].PublicIP != peers[i].PublicIP || got[i].Subnets[0] != peers[i].Subnets[0] {
				t.Fatalf("peer %d: got %v %v, want %v %v", i, got[i].PublicIP, got[i].Subnets, peers[i].PublicIP, peers[i].Subnets)
			}
			if a := got[i].PublicIP.As4(); a[0] != 198 || a[1] != 18 || a[2] == 0 {
				t.Fatalf("peer %d: public IP %v, want 198.18.1-255.x (not the testbed's /24)", i, got[i].PublicIP)
			}
		}
	}
	if _, err := ControlPlanePeers(MaxControlPlanePeers + 1); err == nil {
		t.Errorf("ControlPlanePeers(%d): got nil error, want out of range", MaxControlPlanePeers+1)
	}
}

func TestParseMetrics(t *testing.T) {
	body := "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" +
		"# HELP vxtun_peers Peers.\n# TYPE vxtun_peers gauge\nvxtun_peers 5000\n" +
		"vxtun_peer_updates_total 12\nvxtun_drops_total{reason=\"no_route\"} 3\n"
	m := parseMetrics([]byte(body))
	for k, want := range map[string]float64{"vxtun_peers": 5000, "vxtun_peer_updates_total": 12} {
		if m[k] != want {
			t.Errorf("%s: got %v, want %v", k, m[k], want)
		}
	}
	if len(m) != 2 {
		t.Errorf("got %d series %v, want 2 (labelled series and headers left out)", len(m), m)
	}
}

func TestProcStatusBytes(t *testing.T) {
	st := []byte("Name:\tvxtun\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n")
	for _, tc := range []struct {
		key  string
		want int64
		ok   bool
	}{{"VmHWM", 50 << 20, true}, {"VmRSS", 40 << 20, true}, {"VmSwap", 0, false}} {
		got, err := procStatusBytes(st, tc.key)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d, ok %v", tc.key, got, err, tc.want, tc.ok)
		}
	}
	if _, err := procStatusBytes([]byte("VmRSS: lots\n"), "VmRSS"); err == nil {
		t.Errorf("bad VmRSS line: got nil error, want one")
	}
}

func TestDurationPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 100}
	if got := durationPercentile(ds, 50); got != 3 {
		t.Errorf("p50: got %v, want 3", got)
	}
	if got := durationPercentile(ds, 99); got != 100 {
		t.Errorf("p99: got %v, want 100", got)
	}
	if got := durationPercentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing: got %v, want 0", got)
	}
}
