package config

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseNetConfDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want NetConf
	}{
		{
			name: "kube-flannel default",
			in:   `{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.244.0.0/16"),
				SubnetLen:  24,
				SubnetMin:  netip.MustParseAddr("10.244.1.0"),
				SubnetMax:  netip.MustParseAddr("10.244.255.0"),
				Backend:    BackendConf{Type: BackendVXLAN, VNI: 1, Port: 8472},
			},
		},
		{
			name: "no Backend means udp, as in flannel",
			in:   `{"Network": "198.19.0.0/16"}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("198.19.0.0/16"),
				SubnetLen:  24,
				SubnetMin:  netip.MustParseAddr("198.19.1.0"),
				SubnetMax:  netip.MustParseAddr("198.19.255.0"),
				Backend:    BackendConf{Type: BackendUDP, Port: 8285},
			},
		},
		{
			name: "small network gets prefix+2 subnets",
			in:   `{"Network": "10.0.0.0/26", "Backend": {"Type": "UDP", "Port": 9000}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.0.0.0/26"),
				SubnetLen:  28,
				SubnetMin:  netip.MustParseAddr("10.0.0.16"),
				SubnetMax:  netip.MustParseAddr("10.0.0.48"),
				Backend:    BackendConf{Type: BackendUDP, Port: 9000},
			},
		},
		{
			name: "/23 network gets /25 subnets",
			in:   `{"Network": "10.0.0.0/23", "Backend": {"Type": "vxlan"}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.0.0.0/23"),
				SubnetLen:  25,
				SubnetMin:  netip.MustParseAddr("10.0.0.128"),
				SubnetMax:  netip.MustParseAddr("10.0.1.128"),
				Backend:    BackendConf{Type: BackendVXLAN, VNI: 1, Port: 8472},
			},
		},
		{
			name: "explicit everything, lower-case keys",
			in: `{"network": "10.5.0.0/16", "subnetLen": 20, "subnetMin": "10.5.16.0", "subnetMax": "10.5.32.0",
			      "EnableNFTables": true,
			      "backend": {"type": "vxlan", "vni": 4096, "port": 4789, "gbp": true, "directRouting": true, "mtu": 1400, "Learning": false}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.5.0.0/16"),
				SubnetLen:  20,
				SubnetMin:  netip.MustParseAddr("10.5.16.0"),
				SubnetMax:  netip.MustParseAddr("10.5.32.0"),
				Backend:    BackendConf{Type: BackendVXLAN, VNI: 4096, Port: 4789, GBP: true, DirectRouting: true, MTU: 1400},
			},
		},
		{
			name: "host-gw: no VNI, no port, no MTU override (flannel ignores Port, DirectRouting and MTU there)",
			in:   `{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw", "Port": 9000, "DirectRouting": true, "MTU": 1400}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.244.0.0/16"),
				SubnetLen:  24,
				SubnetMin:  netip.MustParseAddr("10.244.1.0"),
				SubnetMax:  netip.MustParseAddr("10.244.255.0"),
				Backend:    BackendConf{Type: BackendHostGW},
			},
		},
		{
			name: "udp ignores DirectRouting, as flannel's udp backend does",
			in:   `{"Network": "10.244.0.0/16", "Backend": {"Type": "udp", "DirectRouting": true}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.244.0.0/16"),
				SubnetLen:  24,
				SubnetMin:  netip.MustParseAddr("10.244.1.0"),
				SubnetMax:  netip.MustParseAddr("10.244.255.0"),
				Backend:    BackendConf{Type: BackendUDP, Port: 8285},
			},
		},
		{
			name: "explicit VNI 0 is kept",
			in:   `{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 0}}`,
			want: NetConf{
				EnableIPv4: true,
				Network:    netip.MustParsePrefix("10.244.0.0/16"),
				SubnetLen:  24,
				SubnetMin:  netip.MustParseAddr("10.244.1.0"),
				SubnetMax:  netip.MustParseAddr("10.244.255.0"),
				Backend:    BackendConf{Type: BackendVXLAN, VNI: 0, Port: 8472},
			},
		},
		{
			name: "dual stack",
			in: `{"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00:10:244::/56",
			      "Backend": {"Type": "vxlan"}}`,
			want: NetConf{
				EnableIPv4:    true,
				EnableIPv6:    true,
				Network:       netip.MustParsePrefix("10.244.0.0/16"),
				SubnetLen:     24,
				SubnetMin:     netip.MustParseAddr("10.244.1.0"),
				SubnetMax:     netip.MustParseAddr("10.244.255.0"),
				IPv6Network:   netip.MustParsePrefix("fd00:10:244::/56"),
				IPv6SubnetLen: 64,
				IPv6SubnetMin: netip.MustParseAddr("fd00:10:244:1::"),
				IPv6SubnetMax: netip.MustParseAddr("fd00:10:244:ff::"),
				Backend:       BackendConf{Type: BackendVXLAN, VNI: 1, Port: 8472},
			},
		},
		{
			name: "IPv6 only, small network",
			in: `{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::/120",
			      "Backend": {"Type": "vxlan"}}`,
			want: NetConf{
				EnableIPv6:    true,
				IPv6Network:   netip.MustParsePrefix("fd00::/120"),
				IPv6SubnetLen: 122,
				IPv6SubnetMin: netip.MustParseAddr("fd00::40"),
				IPv6SubnetMax: netip.MustParseAddr("fd00::c0"),
				Backend:       BackendConf{Type: BackendVXLAN, VNI: 1, Port: 8472},
			},
		},
		{
			name: "IPv6 explicit subnet len and bounds",
			in: `{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::/48", "IPv6SubnetLen": 80,
			      "IPv6SubnetMin": "fd00:0:0:1::", "IPv6SubnetMax": "fd00:0:0:2::", "Backend": {"Type": "vxlan"}}`,
			want: NetConf{
				EnableIPv6:    true,
				IPv6Network:   netip.MustParsePrefix("fd00::/48"),
				IPv6SubnetLen: 80,
				IPv6SubnetMin: netip.MustParseAddr("fd00:0:0:1::"),
				IPv6SubnetMax: netip.MustParseAddr("fd00:0:0:2::"),
				Backend:       BackendConf{Type: BackendVXLAN, VNI: 1, Port: 8472},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetConf("net-conf.json", []byte(tt.in))
			if err != nil {
				t.Fatalf("ParseNetConf: %v", err)
			}
			tt.want.File = "net-conf.json"
			if *got != tt.want {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseNetConfErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty file", ``,
			`net-conf.json:1:1: JSON syntax error: unexpected end of JSON input`},
		{"syntax error line and column", "{\n  \"Network\": \"10.244.0.0/16\",\n  \"Backend\": {,}\n}",
			`net-conf.json:3:15: JSON syntax error: invalid character ',' looking for beginning of object key string`},
		{"truncated", "{\n  \"Network\": \"10.244.0.0/16\"\n",
			`net-conf.json:3:1: JSON syntax error: unexpected end of JSON input`},
		{"trailing garbage", `{"Network": "10.244.0.0/16"} x`,
			`net-conf.json:1:30: JSON syntax error: invalid character 'x' after top-level value`},
		{"wrong type", "{\n  \"Network\": 10\n}",
			`net-conf.json:2:14: Network: wrong type: got JSON number, want string`},
		{"wrong type nested", "{\"Network\": \"10.244.0.0/16\",\n \"Backend\": {\"Type\": \"vxlan\", \"VNI\": \"1\"}}",
			`net-conf.json:2:38: Backend.VNI: wrong type: got JSON string, want integer (int64)`},
		{"top level array", `[]`,
			`net-conf.json:1:1: (top level): wrong type: got JSON array, want object`},
		{"missing Network", `{"Backend": {"Type": "vxlan"}}`,
			`net-conf.json: Network: missing (required when EnableIPv4 is true)`},
		{"bad Network", `{"Network": "10.244.0.0"}`,
			`net-conf.json: Network: invalid CIDR "10.244.0.0"`},
		{"IPv6 Network", `{"Network": "fd00::/48"}`,
			`net-conf.json: Network: "fd00::/48" is not an IPv4 CIDR`},
		{"both families off", `{"EnableIPv4": false}`,
			`net-conf.json: EnableIPv4: both EnableIPv4 and EnableIPv6 are false`},
		{"network with host bits", `{"Network": "10.244.1.0/16"}`,
			`net-conf.json: Network: 10.244.1.0/16 has host bits set (did you mean 10.244.0.0/16?)`},
		{"IPv6 network with host bits", `{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::1:0/48"}`,
			`net-conf.json: IPv6Network: fd00::1:0/48 has host bits set (did you mean fd00::/48?)`},
		{"network too small", `{"Network": "10.0.0.0/29"}`,
			`net-conf.json: Network: 10.0.0.0/29 is too small: the shortest useful prefix is /28`},
		{"SubnetLen too long", `{"Network": "10.0.0.0/16", "SubnetLen": 31}`,
			`net-conf.json: SubnetLen: /31 is too long: must be at most /30`},
		{"SubnetLen too short", `{"Network": "10.0.0.0/16", "SubnetLen": 17}`,
			`net-conf.json: SubnetLen: /17 in 10.0.0.0/16 leaves room for fewer than four subnets: must be at least /18`},
		{"SubnetLen negative", `{"Network": "10.0.0.0/16", "SubnetLen": -1}`,
			`net-conf.json: SubnetLen: -1 is negative`},
		{"SubnetMin outside", `{"Network": "10.0.0.0/16", "SubnetMin": "10.1.0.0"}`,
			`net-conf.json: SubnetMin: 10.1.0.0 is outside the network 10.0.0.0/16`},
		{"SubnetMin bad", `{"Network": "10.0.0.0/16", "SubnetMin": "ten"}`,
			`net-conf.json: SubnetMin: invalid IP address "ten"`},
		{"SubnetMax unaligned", `{"Network": "10.0.0.0/16", "SubnetMax": "10.0.7.1"}`,
			`net-conf.json: SubnetMax: 10.0.7.1 is not on a /24 boundary`},
		{"SubnetMin unaligned", `{"Network": "10.0.0.0/16", "SubnetMin": "10.0.7.128"}`,
			`net-conf.json: SubnetMin: 10.0.7.128 is not on a /24 boundary`},
		{"SubnetMax below SubnetMin", `{"Network": "10.0.0.0/16", "SubnetMin": "10.0.9.0", "SubnetMax": "10.0.8.0"}`,
			`net-conf.json: SubnetMax: 10.0.8.0 is below SubnetMin 10.0.9.0`},
		{"IPv6 missing network", `{"Network": "10.0.0.0/16", "EnableIPv6": true}`,
			`net-conf.json: IPv6Network: missing (required when EnableIPv6 is true)`},
		{"IPv6 network too small", `{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::/125"}`,
			`net-conf.json: IPv6Network: fd00::/125 is too small: the shortest useful prefix is /124`},
		{"IPv6 SubnetLen too long", `{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::/48", "IPv6SubnetLen": 127}`,
			`net-conf.json: IPv6SubnetLen: /127 is too long: must be at most /126`},
		{"IPv6 SubnetMin family", `{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::/48", "IPv6SubnetMin": "10.0.0.0"}`,
			`net-conf.json: IPv6SubnetMin: 10.0.0.0 is not an IPv6 address`},
		{"Networks unsupported", `{"Network": "10.0.0.0/16", "Networks": ["10.1.0.0/16"]}`,
			`net-conf.json: Networks: multiple cluster CIDRs are not supported; use Network`},
		{"wireguard", `{"Network": "10.0.0.0/16", "Backend": {"Type": "wireguard"}}`,
			`net-conf.json: Backend.Type: backend type not supported by vxtun: "wireguard" (vxtun implements "vxlan", "udp" and "host-gw")`},
		{"empty backend type", `{"Network": "10.0.0.0/16", "Backend": {"VNI": 1}}`,
			`net-conf.json: Backend.Type: missing (want "vxlan", "udp" or "host-gw")`},
		{"VNI too big", `{"Network": "10.0.0.0/16", "Backend": {"Type": "vxlan", "VNI": 16777216}}`,
			`net-conf.json: Backend.VNI: 16777216 is out of range 0..16777215`},
		{"VNI negative", `{"Network": "10.0.0.0/16", "Backend": {"Type": "vxlan", "VNI": -1}}`,
			`net-conf.json: Backend.VNI: -1 is out of range 0..16777215`},
		{"VNI on udp", `{"Network": "10.0.0.0/16", "Backend": {"Type": "udp", "VNI": 1}}`,
			`net-conf.json: Backend.VNI: only the vxlan backend has a VNI`},
		{"Port out of range", `{"Network": "10.0.0.0/16", "Backend": {"Type": "vxlan", "Port": 65536}}`,
			`net-conf.json: Backend.Port: 65536 is out of range 1..65535`},
		{"MTU too small", `{"Network": "10.0.0.0/16", "Backend": {"Type": "vxlan", "MTU": 60}}`,
			`net-conf.json: Backend.MTU: 60 is out of range 68..65535`},
		{"MTU too small for IPv6", `{"Network": "10.0.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00::/48", "Backend": {"Type": "vxlan", "MTU": 1200}}`,
			`net-conf.json: Backend.MTU: 1200 is out of range 1280..65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetConf("net-conf.json", []byte(tt.in))
			if err == nil {
				t.Fatalf("got %+v, want error %q", got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got error\n  %s\nwant\n  %s", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "net-conf.json" {
				t.Errorf("got %T %v, want *Error naming the file", err, err)
			}
		})
	}
}

func TestUnsupportedBackendSentinel(t *testing.T) {
	for _, typ := range []string{"wireguard", "ipip", "alloc", "ipsec", "extension", "tencentvpc"} {
		_, err := ParseNetConf("n", []byte(`{"Network": "10.0.0.0/16", "Backend": {"Type": "`+typ+`"}}`))
		if !errors.Is(err, ErrUnsupportedBackend) {
			t.Errorf("type %s: got %v, want ErrUnsupportedBackend", typ, err)
		}
	}
}

func TestNetConfCheckSubnet(t *testing.T) {
	nc, err := ParseNetConf("net-conf.json", []byte(`{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p    string
		want string
	}{
		{"10.244.3.0/24", ""},
		{"10.244.0.0/16", ""},
		{"10.245.0.0/24", "10.245.0.0/24 is outside the network 10.244.0.0/16"},
		{"10.0.0.0/8", "10.0.0.0/8 is outside the network 10.244.0.0/16"},
		{"fd00::/64", "fd00::/64 is IPv6 but EnableIPv6 is false in net-conf.json"},
	}
	for _, tt := range tests {
		err := nc.CheckSubnet(netip.MustParsePrefix(tt.p))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckSubnet(%s): got %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestLoadNetConf(t *testing.T) {
	nc, err := LoadNetConf("testdata/net-conf.json")
	if err != nil {
		t.Fatal(err)
	}
	if nc.Network != netip.MustParsePrefix("198.19.0.0/16") || nc.Backend.Type != BackendVXLAN {
		t.Errorf("got %+v, want 198.19.0.0/16 vxlan", nc)
	}
	if _, err := LoadNetConf("testdata/does-not-exist.json"); err == nil {
		t.Error("got no error for a missing file")
	}
}
