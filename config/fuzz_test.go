package config

import (
	"errors"
	"net/netip"
	"os"
	"testing"
)

func addFileSeed(f *testing.F, path string) {
	f.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}

// FuzzParseNetConf checks that any input gives a config or an *Error, never
// a panic, and that accepted configs hold flannel's invariants.
func FuzzParseNetConf(f *testing.F) {
	addFileSeed(f, "testdata/net-conf.json")
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"Network": "10.244.0.0/16"}`,
		`{"Network": "10.0.0.0/28", "Backend": {"Type": "udp"}}`,
		`{"Network": "10.0.0.0/16", "SubnetLen": 30, "SubnetMin": "10.0.0.4", "SubnetMax": "10.0.255.252"}`,
		`{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00::/124", "Backend": {"Type": "vxlan", "VNI": 16777215}}`,
		`{"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00::/56", "IPv6SubnetLen": 126}`,
		`{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}`,
		"{\n\"Network\": \"10.244.0.0/16\",\n\"Backend\": {\"Type\": \"vxlan\", \"Port\": \"x\"}}",
		`{"Network": "0.0.0.0/0"}`, `{"Network": "::ffff:10.0.0.0/104"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := ParseNetConf("f.json", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "f.json" {
				t.Fatalf("got %T %v, want *Error naming the file", err, err)
			}
			return
		}
		if !nc.EnableIPv4 && !nc.EnableIPv6 {
			t.Fatal("accepted config with both families off")
		}
		check := func(net netip.Prefix, slen int, lo, hi netip.Addr, maxLen int) {
			if !net.IsValid() || net.Masked() != net {
				t.Fatalf("network %v not canonical", net)
			}
			if slen < net.Bits()+2 || slen > maxLen {
				t.Fatalf("subnet len %d outside %d..%d", slen, net.Bits()+2, maxLen)
			}
			for _, a := range []netip.Addr{lo, hi} {
				if !net.Contains(a) || netip.PrefixFrom(a, slen).Masked().Addr() != a {
					t.Fatalf("bound %v not an aligned /%d in %v", a, slen, net)
				}
			}
			if hi.Less(lo) {
				t.Fatalf("SubnetMax %v < SubnetMin %v", hi, lo)
			}
		}
		if nc.EnableIPv4 {
			check(nc.Network, nc.SubnetLen, nc.SubnetMin, nc.SubnetMax, 30)
		}
		if nc.EnableIPv6 {
			check(nc.IPv6Network, nc.IPv6SubnetLen, nc.IPv6SubnetMin, nc.IPv6SubnetMax, 126)
		}
		switch b := nc.Backend; {
		case b.Type == BackendHostGW:
			if b.Port != 0 || b.VNI != 0 || b.DirectRouting || b.MTU != 0 {
				t.Fatalf("bad host-gw backend %+v", b)
			}
		case (b.Type != BackendVXLAN && b.Type != BackendUDP) || b.Port == 0 || b.VNI > MaxVNI:
			t.Fatalf("bad backend %+v", b)
		}
	})
}

// FuzzParseNode checks node settings parsing never panics and accepted
// settings are complete.
func FuzzParseNode(f *testing.F) {
	addFileSeed(f, "testdata/node.json")
	for _, s := range []string{
		``, `{}`, `{"PublicIP": "198.18.0.1"}`, `{"Iface": "eth0", "VtepMAC": "0e:00:00:00:00:01"}`,
		`{"PublicIP": "fe80::1%eth0"}`, `{"PublicIP": "198.18.0.1", "Subnet": "198.19.1.1/24"}`,
		`{"PublicIP": "198.18.0.1", "Workers": 99999, "UnderlayMTU": 9000, "ListenPort": 4789}`,
		`{"PublicIP": "198.18.0.1", "Bogus": 1}`, `{"PublicIP": "198.18.0.1", "VtepMAC": "01:00:00:00:00:00"}`,
	} {
		f.Add([]byte(s))
	}
	nc := &NetConf{File: "n", EnableIPv4: true, Network: netip.MustParsePrefix("198.19.0.0/16"),
		Backend: BackendConf{Type: BackendVXLAN, Port: DefaultVXLANPort, VNI: 1}}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNode("f.json", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "f.json" {
				t.Fatalf("got %T %v, want *Error naming the file", err, err)
			}
			return
		}
		if (!n.PublicIP.IsValid() && n.Iface == "") || n.TunName == "" || n.Workers < 1 || n.SubnetFile == "" {
			t.Fatalf("incomplete node %+v", n)
		}
		if n.VtepMAC != nil && CheckVtepMAC(n.VtepMAC) != nil {
			t.Fatalf("bad MAC accepted: %v", n.VtepMAC)
		}
		_ = n.Validate(nc)
	})
}

// FuzzParsePeers checks peers parsing never panics and accepted peer sets
// have unique names, subnets inside the network and no overlaps.
func FuzzParsePeers(f *testing.F) {
	addFileSeed(f, "testdata/peers.json")
	for _, s := range []string{
		``, `{}`, `{"Peers": null}`, `{"Peers": [{}]}`,
		`{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:02"},
		            {"Name": "b", "PublicIP": "198.18.0.3", "Subnets": ["198.19.2.128/25"], "VtepMAC": "0e:00:00:00:00:03"}]}`,
		`{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "Subnets": ["198.19.1.0/24"], "VtepMAC": "0e:00:00:00:00:02"}]}`,
		`{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "Subnets": ["fd00::/64"], "VtepMAC": "0e:00:00:00:00:02", "VNI": 5, "Port": 1}]}`,
		`{"Peers": [{"Name": "a", "PublicIP": "198.18.0.2", "Subnets": ["198.19.0.0/16"], "VtepMAC": "0e:00:00:00:00:02"}]}`,
	} {
		f.Add([]byte(s))
	}
	nc := &NetConf{File: "n", EnableIPv4: true, Network: netip.MustParsePrefix("198.19.0.0/16"),
		EnableIPv6: true, IPv6Network: netip.MustParsePrefix("fd00::/48"),
		Backend: BackendConf{Type: BackendVXLAN, Port: DefaultVXLANPort, VNI: 1}}
	own := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	f.Fuzz(func(t *testing.T, data []byte) {
		peers, err := ParsePeers("f.json", data, nc, own)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "f.json" {
				t.Fatalf("got %T %v, want *Error naming the file", err, err)
			}
			return
		}
		names := map[string]bool{}
		all := append([]netip.Prefix(nil), own...)
		for _, p := range peers {
			if p.Name == "" || names[p.Name] {
				t.Fatalf("empty or duplicate name %q", p.Name)
			}
			names[p.Name] = true
			if !p.PublicIP.IsValid() || p.Port == 0 || len(p.Subnets) == 0 || CheckVtepMAC(p.VtepMAC) != nil {
				t.Fatalf("incomplete peer %+v", p)
			}
			for _, s := range p.Subnets {
				if !nc.Contains(s) {
					t.Fatalf("subnet %v outside the overlay", s)
				}
				for _, o := range all {
					if o.Overlaps(s) {
						t.Fatalf("subnet %v overlaps %v", s, o)
					}
				}
				all = append(all, s)
			}
		}
	})
}

// FuzzParseSubnetEnv checks the subnet.env reader never panics and that what
// it accepts is written back to an equal value.
func FuzzParseSubnetEnv(f *testing.F) {
	for _, s := range []string{
		"", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"FLANNEL_IPV6_NETWORK=fd00::/48\nFLANNEL_IPV6_SUBNET=fd00:0:0:1::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
		"# c\n\nX=1\nFLANNEL_MTU=1450\n", "=\n",
		"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.255.255/32\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.255.253/30\nFLANNEL_MTU=65535\nFLANNEL_IPMASQ=1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseSubnetEnv("f.env", data)
		if err != nil {
			return
		}
		back, err := ParseSubnetEnv("f.env", e.Marshal())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", e.Marshal(), err)
		}
		if back != e {
			t.Fatalf("round trip: got %+v, want %+v", back, e)
		}
	})
}
