package config

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
)

func TestParsePeers(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00:19::/48",
		"Backend": {"Type": "vxlan", "VNI": 7, "Port": 4789}}`)
	in := `{"Peers": [
		{"Name": "node2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24", "fd00:19:0:2::/64"], "VtepMAC": "0E:00:00:00:00:02"},
		{"Name": "node3", "PublicIP": "198.18.0.3", "Subnets": ["198.19.3.0/24"], "VtepMAC": "0e:00:00:00:00:03", "Port": 8472, "VNI": 1},
		{"Name": "node4", "PublicIP": "2001:db8::4", "Subnets": ["198.19.4.0/25", "198.19.4.128/25"], "VtepMAC": "0e-00-00-00-00-04"}
	]}`
	got, err := ParsePeers("peers.json", []byte(in), nc, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{
		{Name: "node2", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 4789, Backend: BackendVXLAN, VNI: 7,
			Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24"), netip.MustParsePrefix("fd00:19:0:2::/64")},
			VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 2}},
		{Name: "node3", PublicIP: netip.MustParseAddr("198.18.0.3"), Port: 8472, Backend: BackendVXLAN, VNI: 1,
			Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.3.0/24")},
			VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 3}},
		{Name: "node4", PublicIP: netip.MustParseAddr("2001:db8::4"), Port: 4789, Backend: BackendVXLAN, VNI: 7,
			Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.4.0/25"), netip.MustParsePrefix("198.19.4.128/25")},
			VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 4}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParsePeersUDPAndEmpty(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "udp"}}`)
	got, err := ParsePeers("peers.json", []byte(`{"Peers": [{"Name": "n2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"]}]}`), nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Backend != BackendUDP || got[0].Port != 8285 || got[0].VNI != 0 || got[0].VtepMAC != nil {
		t.Errorf("got %+v, want one udp peer on port 8285 without VNI and MAC", got)
	}
	for _, in := range []string{`{}`, `{"Peers": []}`, `{"Peers": null}`} {
		got, err := ParsePeers("peers.json", []byte(in), nc, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("%s: got %v, %v; want no peers and no error", in, got, err)
		}
	}
}

func TestParsePeersErrors(t *testing.T) {
	vx := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`)
	udp := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "udp"}}`)
	own := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	const a = `{"Name": "a", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:02"}`
	tests := []struct {
		name string
		nc   *NetConf
		in   string
		want string
	}{
		{"syntax", vx, "{\"Peers\": [\n" + a + ",\n]}",
			`peers.json:3:1: JSON syntax error: invalid character ']' looking for beginning of value`},
		{"unknown key", vx, "{\"Peers\": [\n{\"Name\": \"a\", \"PublicAddr\": \"198.18.0.2\"}]}",
			`peers.json:2:15: PublicAddr: unknown key`},
		{"unknown top-level key", vx, `{"Peer": []}`,
			`peers.json:1:2: Peer: unknown key`},
		{"wrong type", vx, "{\"Peers\": [\n{\"Name\": \"a\", \"Port\": \"8472\"}]}",
			`peers.json:2:23: Peers.Port: wrong type: got JSON string, want integer (int64)`},
		{"Subnets not a list", vx, `{"Peers": [{"Name": "a", "Subnets": "198.19.2.0/24"}]}`,
			`peers.json:1:37: Peers.Subnets: wrong type: got JSON string, want array`},
		{"missing name", vx, `{"Peers": [{"PublicIP": "198.18.0.2"}]}`,
			`peers.json: Peers[0].Name: missing`},
		{"duplicate name", vx, `{"Peers": [` + a + `, {"Name": "a", "PublicIP": "198.18.0.3"}]}`,
			`peers.json: Peers[1].Name: duplicate peer name "a" (also Peers[0])`},
		{"missing PublicIP", vx, `{"Peers": [{"Name": "a"}]}`,
			`peers.json: Peers[0].PublicIP: missing`},
		{"bad PublicIP", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0"}]}`,
			`peers.json: Peers[0].PublicIP: invalid IP address "198.18.0"`},
		{"broadcast PublicIP", vx, `{"Peers": [{"Name": "a", "PublicIP": "255.255.255.255"}]}`,
			`peers.json: Peers[0].PublicIP: 255.255.255.255 is not a unicast address`},
		{"PublicIP inside the network", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.19.5.5", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.0/24"]}]}`,
			`peers.json: Peers[0].PublicIP: public IP 198.19.5.5 is inside the overlay network 198.19.0.0/16: its packets would be encapsulated again (a loop)`},
		{"loopback PublicIP", vx, `{"Peers": [{"Name": "a", "PublicIP": "127.0.0.1", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.0/24"]}]}`,
			`peers.json: Peers[0].PublicIP: public IP 127.0.0.1 is a loopback address`},
		{"duplicate PublicIP and port", vx, `{"Peers": [` + a + `, {"Name": "b", "PublicIP": "198.18.0.2", "Port": 8472}]}`,
			`peers.json: Peers[1].PublicIP: 198.18.0.2:8472 is also peer "a"'s address`},
		{"port out of range", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "Port": 65536}]}`,
			`peers.json: Peers[0].Port: 65536 is out of range 1..65535`},
		{"VNI out of range", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VNI": 16777216}]}`,
			`peers.json: Peers[0].VNI: 16777216 is out of range 0..16777215`},
		{"VNI with udp", udp, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VNI": 1}]}`,
			`peers.json: Peers[0].VNI: only the vxlan backend has a VNI`},
		{"missing MAC", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"]}]}`,
			`peers.json: Peers[0].VtepMAC: missing (required by the vxlan backend)`},
		{"bad MAC", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:zz"}]}`,
			`peers.json: Peers[0].VtepMAC: invalid MAC address "0e:00:00:00:00:zz"`},
		{"multicast MAC", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "ff:ff:ff:ff:ff:ff"}]}`,
			`peers.json: Peers[0].VtepMAC: MAC address ff:ff:ff:ff:ff:ff is multicast, want unicast`},
		{"bad MAC with udp", udp, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "x"}]}`,
			`peers.json: Peers[0].VtepMAC: invalid MAC address "x"`},
		{"duplicate MAC", vx, `{"Peers": [` + a + `, {"Name": "b", "PublicIP": "198.18.0.3", "VtepMAC": "0e:00:00:00:00:02"}]}`,
			`peers.json: Peers[1].VtepMAC: 0e:00:00:00:00:02 is also peer "a"'s VtepMAC`},
		{"no subnets", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02"}]}`,
			`peers.json: Peers[0].Subnets: missing: a peer needs at least one subnet`},
		{"bad subnet", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.0/33"]}]}`,
			`peers.json: Peers[0].Subnets[0]: invalid CIDR "198.19.2.0/33"`},
		{"subnet host bits", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.1/24"]}]}`,
			`peers.json: Peers[0].Subnets[0]: 198.19.2.1/24 has host bits set (did you mean 198.19.2.0/24?)`},
		{"subnet outside network", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["10.0.0.0/24"]}]}`,
			`peers.json: Peers[0].Subnets[0]: 10.0.0.0/24 is outside the network 198.19.0.0/16`},
		{"subnet bigger than network", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.0.0.0/8"]}]}`,
			`peers.json: Peers[0].Subnets[0]: 198.0.0.0/8 is outside the network 198.19.0.0/16`},
		{"IPv6 subnet without IPv6", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["fd00::/64"]}]}`,
			`peers.json: Peers[0].Subnets[0]: fd00::/64 is IPv6 but EnableIPv6 is false in net-conf.json`},
		{"overlaps own subnet", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.1.128/25"]}]}`,
			`peers.json: Peers[0].Subnets[0]: 198.19.1.128/25 overlaps this node's own subnet 198.19.1.0/24`},
		{"duplicate subnet between peers", vx, `{"Peers": [` + a + `, {"Name": "b", "PublicIP": "198.18.0.3", "VtepMAC": "0e:00:00:00:00:03", "Subnets": ["198.19.2.0/24"]}]}`,
			`peers.json: Peers[1].Subnets[0]: 198.19.2.0/24 overlaps 198.19.2.0/24 of peer "a"`},
		{"overlapping subnet between peers", vx, `{"Peers": [` + a + `, {"Name": "b", "PublicIP": "198.18.0.3", "VtepMAC": "0e:00:00:00:00:03", "Subnets": ["198.19.0.0/22"]}]}`,
			`peers.json: Peers[1].Subnets[0]: 198.19.0.0/22 overlaps this node's own subnet 198.19.1.0/24`},
		{"overlap within a peer", vx, `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.0/24", "198.19.2.64/26"]}]}`,
			`peers.json: Peers[0].Subnets[1]: 198.19.2.64/26 overlaps 198.19.2.0/24 of the same peer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeers("peers.json", []byte(tt.in), tt.nc, own)
			if err == nil {
				t.Fatalf("got %+v, want error %q", got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got error\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func TestLoadPeers(t *testing.T) {
	nc := mustLoadNetConf(t)
	n, err := LoadNode("testdata/node.json")
	if err != nil {
		t.Fatal(err)
	}
	peers, err := LoadPeers("testdata/peers.json", nc, n.OwnSubnets())
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 || peers[0].Name != "node2" || peers[1].Subnets[0] != netip.MustParsePrefix("198.19.3.0/24") {
		t.Errorf("got %+v", peers)
	}
	if _, err := LoadPeers("testdata/none.json", nc, nil); err == nil {
		t.Error("missing file: got no error")
	}
}

func BenchmarkParsePeers1000(b *testing.B) {
	nc := mustNetConf(b, `{"Network": "198.19.0.0/16", "SubnetLen": 28, "Backend": {"Type": "vxlan"}}`)
	data := []byte(`{"Peers": [`)
	for i := range 1000 {
		if i > 0 {
			data = append(data, ',')
		}
		ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).Next()
		sn := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 4), byte(i << 4)}), 28)
		mac := net.HardwareAddr{0x0e, 0, 0, 0, byte(i >> 8), byte(i)}
		data = append(data, `{"Name":"n`+ip.String()+`","PublicIP":"`+ip.String()+`","Subnets":["`+sn.String()+`"],"VtepMAC":"`+mac.String()+`"}`...)
	}
	data = append(data, "]}"...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePeers("peers.json", data, nc, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParsePeersInSelf: with the node's own public IP and VTEP MAC in the
// scope, a peer carrying either is an error naming the key.
func TestParsePeersInSelf(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`)
	scope := PeerScope{Network: nc, Own: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		Self: netip.MustParseAddr("198.18.0.1"), SelfMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 1}}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"ok", `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.0/24"]}]}`, ""},
		{"our PublicIP", `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.1", "VtepMAC": "0e:00:00:00:00:02", "Subnets": ["198.19.2.0/24"]}]}`,
			`peers.json: Peers[0].PublicIP: public IP 198.18.0.1 is this node's own`},
		{"our VtepMAC", `{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "VtepMAC": "0e:00:00:00:00:01", "Subnets": ["198.19.2.0/24"]}]}`,
			`peers.json: Peers[0].VtepMAC: VtepMAC 0e:00:00:00:00:01 is this node's own`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePeersIn("peers.json", []byte(tc.in), scope)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got error %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ParsePeersIn("peers.json", []byte(`{"Peers": []}`), PeerScope{}); err == nil {
		t.Error("no network config: got no error, want one")
	}
}
