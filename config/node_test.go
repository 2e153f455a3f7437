package config

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Node
	}{
		{
			name: "minimal",
			in:   `{"PublicIP": "198.18.0.1"}`,
			want: Node{PublicIP: netip.MustParseAddr("198.18.0.1"), TunName: "vxtun0",
				Workers: runtime.NumCPU(), SubnetFile: "/run/flannel/subnet.env"},
		},
		{
			name: "everything",
			in: `{"PublicIP": "198.18.0.1", "Iface": "veth0", "Subnet": "198.19.1.0/24", "IPv6Subnet": "fd00:0:0:1::/64",
			      "TunName": "vx1", "VtepMAC": "0e:00:00:00:00:01", "Workers": 3,
			      "SubnetFile": "/tmp/x/subnet.env", "IPMasq": true, "ListenPort": 4789, "UnderlayMTU": 9000}`,
			want: Node{PublicIP: netip.MustParseAddr("198.18.0.1"), Iface: "veth0",
				Subnet: netip.MustParsePrefix("198.19.1.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:0:0:1::/64"),
				TunName: "vx1", VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 1}, Workers: 3,
				SubnetFile: "/tmp/x/subnet.env", IPMasq: true, ListenPort: 4789, UnderlayMTU: 9000},
		},
		{
			name: "iface only, MAC file",
			in:   `{"Iface": "eth0", "VtepMACFile": "/var/lib/vxtun/mac"}`,
			want: Node{Iface: "eth0", VtepMACFile: "/var/lib/vxtun/mac", TunName: "vxtun0",
				Workers: runtime.NumCPU(), SubnetFile: "/run/flannel/subnet.env"},
		},
		{
			name: "public IPv6 next to the IPv4 one",
			in:   `{"PublicIP": "198.18.0.1", "PublicIPv6": "2001:2::1"}`,
			want: Node{PublicIP: netip.MustParseAddr("198.18.0.1"), PublicIPv6: netip.MustParseAddr("2001:2::1"), TunName: "vxtun0",
				Workers: runtime.NumCPU(), SubnetFile: "/run/flannel/subnet.env"},
		},
		{
			name: "IPv4-mapped public IP is unmapped",
			in:   `{"PublicIP": "::ffff:198.18.0.9"}`,
			want: Node{PublicIP: netip.MustParseAddr("198.18.0.9"), TunName: "vxtun0",
				Workers: runtime.NumCPU(), SubnetFile: "/run/flannel/subnet.env"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNode("node.json", []byte(tt.in))
			if err != nil {
				t.Fatalf("ParseNode: %v", err)
			}
			tt.want.File = "node.json"
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseNodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"syntax", "{\n \"PublicIP\": \"198.18.0.1\"\n \"TunName\": \"x\"}",
			`node.json:3:2: JSON syntax error: invalid character '"' after object key:value pair`},
		{"unknown key", "{\n \"PublicIP\": \"198.18.0.1\",\n \"TunNmae\": \"x\"}",
			`node.json:3:2: TunNmae: unknown key`},
		{"wrong type", "{\"PublicIP\": \"198.18.0.1\", \"Workers\": \"4\"}",
			`node.json:1:39: Workers: wrong type: got JSON string, want integer (int)`},
		{"no address", `{"TunName": "x"}`,
			`node.json: PublicIP: missing: set PublicIP or Iface`},
		{"IPv4 PublicIPv6", `{"PublicIP": "198.18.0.1", "PublicIPv6": "198.18.0.2"}`,
			`node.json: PublicIPv6: 198.18.0.2 is not a global unicast IPv6 address`},
		{"link-local PublicIPv6", `{"PublicIP": "198.18.0.1", "PublicIPv6": "fe80::1"}`,
			`node.json: PublicIPv6: fe80::1 is not a global unicast IPv6 address`},
		{"bad PublicIPv6", `{"PublicIP": "198.18.0.1", "PublicIPv6": "2001:2::x"}`,
			`node.json: PublicIPv6: "2001:2::x" is not an IP address`},
		{"bad PublicIP", `{"PublicIP": "198.18.0.300"}`,
			`node.json: PublicIP: invalid IP address "198.18.0.300"`},
		{"unspecified PublicIP", `{"PublicIP": "0.0.0.0"}`,
			`node.json: PublicIP: 0.0.0.0 is unspecified`},
		{"multicast PublicIP", `{"PublicIP": "239.1.1.1"}`,
			`node.json: PublicIP: 239.1.1.1 is not a unicast address`},
		{"zone", `{"PublicIP": "fe80::1%eth0"}`,
			`node.json: PublicIP: fe80::1%eth0: zones are not supported`},
		{"bad Iface", `{"Iface": "a/b"}`,
			`node.json: Iface: interface name "a/b" contains '/', ':', a space or a control character`},
		{"long TunName", `{"PublicIP": "198.18.0.1", "TunName": "abcdefghijklmnop"}`,
			`node.json: TunName: interface name "abcdefghijklmnop" is longer than 15 bytes`},
		{"bad Subnet", `{"PublicIP": "198.18.0.1", "Subnet": "198.19.1.0"}`,
			`node.json: Subnet: invalid CIDR "198.19.1.0"`},
		{"Subnet host bits", `{"PublicIP": "198.18.0.1", "Subnet": "198.19.1.1/24"}`,
			`node.json: Subnet: 198.19.1.1/24 has host bits set (did you mean 198.19.1.0/24?)`},
		{"Subnet family", `{"PublicIP": "198.18.0.1", "Subnet": "fd00::/64"}`,
			`node.json: Subnet: fd00::/64 is not an IPv4 CIDR`},
		{"IPv6Subnet family", `{"PublicIP": "198.18.0.1", "IPv6Subnet": "198.19.1.0/24"}`,
			`node.json: IPv6Subnet: 198.19.1.0/24 is not an IPv6 CIDR`},
		{"bad MAC", `{"PublicIP": "198.18.0.1", "VtepMAC": "0e:00:00:00:00"}`,
			`node.json: VtepMAC: invalid MAC address "0e:00:00:00:00"`},
		{"multicast MAC", `{"PublicIP": "198.18.0.1", "VtepMAC": "01:00:5e:00:00:01"}`,
			`node.json: VtepMAC: MAC address 01:00:5e:00:00:01 is multicast, want unicast`},
		{"zero MAC", `{"PublicIP": "198.18.0.1", "VtepMAC": "00:00:00:00:00:00"}`,
			`node.json: VtepMAC: MAC address 00:00:00:00:00:00 is all zero`},
		{"long MAC", `{"PublicIP": "198.18.0.1", "VtepMAC": "02:00:00:00:00:00:00:01"}`,
			`node.json: VtepMAC: MAC address 02:00:00:00:00:00:00:01 is not 6 bytes`},
		{"MAC and MAC file", `{"PublicIP": "198.18.0.1", "VtepMAC": "0e:00:00:00:00:01", "VtepMACFile": "/x"}`,
			`node.json: VtepMAC: set VtepMAC or VtepMACFile, not both`},
		{"Workers", `{"PublicIP": "198.18.0.1", "Workers": -1}`,
			`node.json: Workers: -1 is out of range 0..1024`},
		{"ListenPort", `{"PublicIP": "198.18.0.1", "ListenPort": 70000}`,
			`node.json: ListenPort: 70000 is out of range 0..65535`},
		{"UnderlayMTU", `{"PublicIP": "198.18.0.1", "UnderlayMTU": 40}`,
			`node.json: UnderlayMTU: 40 is out of range 68..65535 (0 = from the interface)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNode("node.json", []byte(tt.in))
			if err == nil {
				t.Fatalf("got %+v, want error %q", got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got error\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func TestNodeValidate(t *testing.T) {
	vx := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`)
	udp := mustNetConf(t, `{"Network": "198.19.0.0/16", "Backend": {"Type": "udp"}}`)
	tests := []struct {
		name string
		nc   *NetConf
		node string
		want string
	}{
		{"ok vxlan", vx, `{"PublicIP": "198.18.0.1", "Subnet": "198.19.1.0/24", "VtepMACFile": "/x"}`, ""},
		{"ok udp without MAC", udp, `{"PublicIP": "198.18.0.1", "Subnet": "198.19.1.0/24"}`, ""},
		{"vxlan needs a MAC", vx, `{"PublicIP": "198.18.0.1"}`,
			`node.json: VtepMACFile: missing: the vxlan backend needs VtepMAC or VtepMACFile`},
		{"subnet outside network", vx, `{"PublicIP": "198.18.0.1", "Subnet": "10.0.1.0/24", "VtepMACFile": "/x"}`,
			`node.json: Subnet: 10.0.1.0/24 is outside the network 198.19.0.0/16`},
		{"IPv6 subnet without IPv6", vx, `{"PublicIP": "198.18.0.1", "IPv6Subnet": "fd00::/64", "VtepMACFile": "/x"}`,
			`node.json: IPv6Subnet: fd00::/64 is IPv6 but EnableIPv6 is false in net-conf.json`},
		{"PublicIP inside the network", vx, `{"PublicIP": "198.19.7.1", "VtepMACFile": "/x"}`,
			`node.json: PublicIP: underlay address 198.19.7.1 is inside the overlay network 198.19.0.0/16 in net-conf.json: its packets would loop through the tunnel`},
		{"underlay MTU too small for vxlan", vx, `{"PublicIP": "198.18.0.1", "UnderlayMTU": 100, "VtepMACFile": "/x"}`,
			`node.json: UnderlayMTU: 100 leaves no room for vxlan encapsulation: want at least 118`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode("node.json", []byte(tt.node))
			if err != nil {
				t.Fatal(err)
			}
			err = n.Validate(tt.nc)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNodeHelpers(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00::/48", "Backend": {"Type": "vxlan"}}`)
	n, err := ParseNode("node.json", []byte(`{"PublicIP": "198.18.0.1", "Subnet": "198.19.1.0/24", "IPv6Subnet": "fd00:0:0:1::/64"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("fd00:0:0:1::/64")}
	if got := n.OwnSubnets(); !reflect.DeepEqual(got, want) {
		t.Errorf("OwnSubnets: got %v, want %v", got, want)
	}
	if got := n.Port(nc); got != 8472 {
		t.Errorf("Port: got %d, want 8472", got)
	}
	n.ListenPort = 4789
	if got := n.Port(nc); got != 4789 {
		t.Errorf("Port with ListenPort: got %d, want 4789", got)
	}
	if _, err := n.ResolveVtepMAC(); err == nil {
		t.Error("ResolveVtepMAC with neither VtepMAC nor VtepMACFile: got no error")
	}
	n.VtepMACFile = filepath.Join(t.TempDir(), "mac")
	m1, err := n.ResolveVtepMAC()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := n.ResolveVtepMAC()
	if err != nil || m1.String() != m2.String() {
		t.Errorf("ResolveVtepMAC twice: got %v then %v (%v), want the same MAC", m1, m2, err)
	}
}

func TestResolveUnderlayLoopback(t *testing.T) {
	// Reads (never changes) the loopback interface of the current namespace.
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo interface: %v", err)
	}
	n, err := ParseNode("node.json", []byte(`{"Iface": "lo"}`))
	if err != nil {
		t.Fatal(err)
	}
	u, err := n.ResolveUnderlay()
	if err != nil {
		t.Fatal(err)
	}
	if u.IP != netip.MustParseAddr("127.0.0.1") || u.Iface != "lo" || u.MTU != WireMTU(lo.MTU) || !u.Local {
		t.Errorf("got %+v, want local 127.0.0.1 on lo with MTU %d", u, lo.MTU)
	}

	n, _ = ParseNode("node.json", []byte(`{"PublicIP": "127.0.0.1", "UnderlayMTU": 1500}`))
	u, err = n.ResolveUnderlay()
	if err != nil || u.Iface != "lo" || u.MTU != 1500 || !u.Local {
		t.Errorf("PublicIP on lo with UnderlayMTU: got %+v, %v; want local, lo, MTU 1500", u, err)
	}

	// 192.0.2.0/24 (TEST-NET-1) is on no interface here.
	n, _ = ParseNode("node.json", []byte(`{"PublicIP": "192.0.2.7"}`))
	if _, err := n.ResolveUnderlay(); !errors.Is(err, ErrNoUnderlayMTU) {
		t.Errorf("PublicIP on no interface: got %v, want ErrNoUnderlayMTU", err)
	}
	n, _ = ParseNode("node.json", []byte(`{"PublicIP": "192.0.2.7", "UnderlayMTU": 1400}`))
	if u, err := n.ResolveUnderlay(); err != nil || u.MTU != 1400 || u.Iface != "" || u.Local {
		t.Errorf("PublicIP on no interface with UnderlayMTU: got %+v, %v; want not local, MTU 1400", u, err)
	}
	// A NAT address with the interface named (flanneld's --public-ip with
	// --iface): the interface's MTU, the address not local.
	n, _ = ParseNode("node.json", []byte(`{"PublicIP": "192.0.2.7", "Iface": "lo"}`))
	if u, err := n.ResolveUnderlay(); err != nil || u.Iface != "lo" || u.MTU != WireMTU(lo.MTU) || u.Local {
		t.Errorf("NAT PublicIP with Iface lo: got %+v, %v; want lo, MTU %d, not local", u, err, lo.MTU)
	}
	n, _ = ParseNode("node.json", []byte(`{"Iface": "nosuchif0"}`))
	const want = `node.json: Iface: no interface "nosuchif0" in this network namespace`
	if _, err := n.ResolveUnderlay(); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("missing interface: got %v, want an error starting %q", err, want)
	}
}

func TestLoadNode(t *testing.T) {
	n, err := LoadNode("testdata/node.json")
	if err != nil {
		t.Fatal(err)
	}
	if n.PublicIP != netip.MustParseAddr("198.18.0.1") || n.Subnet != netip.MustParsePrefix("198.19.1.0/24") {
		t.Errorf("got %+v", n)
	}
	if err := n.Validate(mustLoadNetConf(t)); err != nil {
		t.Error(err)
	}
	if _, err := LoadNode(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want ErrNotExist", err)
	}
}

func mustNetConf(t testing.TB, s string) *NetConf {
	t.Helper()
	nc, err := ParseNetConf("net-conf.json", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func mustLoadNetConf(t testing.TB) *NetConf {
	t.Helper()
	nc, err := LoadNetConf("testdata/net-conf.json")
	if err != nil {
		t.Fatal(err)
	}
	return nc
}
