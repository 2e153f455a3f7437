package config

import (
	"net/netip"
	"testing"
)

func TestParsePeersHostGW(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "host-gw"}}`)
	in := `{"Peers": [{"Name": "n2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"]},
	                 {"Name": "n3", "PublicIP": "198.18.0.3", "Subnets": ["198.19.3.0/24"], "VtepMAC": "0e:00:00:00:00:03"}]}`
	got, err := ParsePeers("peers.json", []byte(in), nc, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d peers, want 2", len(got))
	}
	for _, p := range got {
		if p.Backend != BackendHostGW || p.Port != 0 || p.VNI != 0 {
			t.Errorf("peer %s: got backend %q port %d VNI %d, want host-gw, 0, 0", p.Name, p.Backend, p.Port, p.VNI)
		}
	}
	// A VNI makes no sense without VXLAN.
	_, err = ParsePeers("peers.json", []byte(`{"Peers": [{"Name": "n2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"], "VNI": 1}]}`), nc, nil)
	if want := "peers.json: Peers[0].VNI: only the vxlan backend has a VNI"; err == nil || err.Error() != want {
		t.Errorf("VNI on host-gw: got %v, want %q", err, want)
	}
}

func TestPeerCheckHostGW(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "host-gw"}}`)
	p := Peer{Name: "n2", PublicIP: netip.MustParseAddr("198.18.0.2"), Backend: BackendHostGW,
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}
	if err := p.Check(PeerScope{Backend: BackendHostGW, Network: nc}); err != nil {
		t.Errorf("host-gw peer without VtepMAC: got %v, want nil", err)
	}
	err := p.Check(PeerScope{Backend: BackendVXLAN, Network: nc})
	if want := `peer "n2": Backend: backend host-gw, this network uses vxlan`; err == nil || err.Error() != want {
		t.Errorf("host-gw peer in a vxlan network: got %v, want %q", err, want)
	}
}
