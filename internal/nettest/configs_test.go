package nettest

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
)

// The files the writers produce are exactly these, and config's readers
// (the reference for the formats) accept them with the values meant.
func TestConfigWriters(t *testing.T) {
	n1, n2, n3 := PlanNode(1), PlanNode(2), PlanNode(3)
	tests := []struct {
		name      string
		nc        NetConf
		node      NodeConf
		peers     PeersConf
		wantNC    string
		wantNode  string
		wantPeers string
		backend   config.Backend
		peerNames []string
	}{
		{
			name: "vxlan, two peers",
			nc:   NetConf{Network: OverlayNetwork, Backend: Backend{Type: "vxlan", VNI: 1, Port: 8472}},
			node: NodeConf{PublicIP: n1.Underlay.String(), Iface: UnderlayIface, Subnet: n1.Subnet.String(),
				VtepMAC: n1.VtepMAC.String(), Workers: 2},
			peers:     PeersOf(true, n2, n3),
			wantNC:    `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}`,
			wantNode:  `{"PublicIP":"198.18.0.1","Iface":"ul0","Subnet":"198.19.1.0/24","VtepMAC":"0e:76:78:00:00:01","Workers":2}`,
			wantPeers: `{"Peers":[{"Name":"node2","PublicIP":"198.18.0.2","Subnets":["198.19.2.0/24"],"VtepMAC":"0e:76:78:00:00:02"},{"Name":"node3","PublicIP":"198.18.0.3","Subnets":["198.19.3.0/24"],"VtepMAC":"0e:76:78:00:00:03"}]}`,
			backend:   config.BackendVXLAN,
			peerNames: []string{"node2", "node3"},
		},
		{
			name:      "udp, no MACs, no peers",
			nc:        NetConf{Network: OverlayNetwork, SubnetLen: 24, SubnetMin: "198.19.1.0", SubnetMax: "198.19.9.0", Backend: Backend{Type: "udp"}},
			node:      NodeConf{Iface: UnderlayIface, Subnet: n2.Subnet.String(), UnderlayMTU: 1400},
			peers:     PeersOf(false),
			wantNC:    `{"Network":"198.19.0.0/16","SubnetLen":24,"SubnetMin":"198.19.1.0","SubnetMax":"198.19.9.0","Backend":{"Type":"udp"}}`,
			wantNode:  `{"Iface":"ul0","Subnet":"198.19.2.0/24","UnderlayMTU":1400}`,
			wantPeers: `{"Peers":[]}`,
			backend:   config.BackendUDP,
		},
	}
	for _, tt := range tests {
		f := FilesIn(filepath.Join(t.TempDir(), "node"))
		if err := f.Write(tt.nc, tt.node, tt.peers); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, c := range []struct{ path, want string }{{f.NetConf, tt.wantNC}, {f.Node, tt.wantNode}, {f.Peers, tt.wantPeers}} {
			b, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := compact(string(b)); got != c.want {
				t.Errorf("%s: %s: got %s, want %s", tt.name, filepath.Base(c.path), got, c.want)
			}
		}
		nc, err := config.LoadNetConf(f.NetConf)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if nc.Backend.Type != tt.backend || nc.Network != netip.MustParsePrefix(OverlayNetwork) {
			t.Errorf("%s: net-conf read back as %s %v, want %s %s", tt.name, nc.Backend.Type, nc.Network, tt.backend, OverlayNetwork)
		}
		nd, err := config.LoadNode(f.Node)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ps, err := config.LoadPeers(f.Peers, nc, nd.OwnSubnets())
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if strings.Join(names, ",") != strings.Join(tt.peerNames, ",") {
			t.Errorf("%s: peers read back as %v, want %v", tt.name, names, tt.peerNames)
		}
		if _, err := os.Stat(f.Peers + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("%s: temporary file left behind (stat: %v)", tt.name, err)
		}
	}
	if got, want := strings.Join(FilesIn("/d").Args(), " "), "--net-conf /d/net-conf.json --node /d/node.json --peers /d/peers.json"; got != want {
		t.Errorf("Args: got %q, want %q", got, want)
	}
}

// compact removes the indentation WriteJSON adds (no value here holds a
// space).
func compact(s string) string { return strings.Join(strings.Fields(s), "") }
