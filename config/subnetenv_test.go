package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestSubnetEnvMarshal(t *testing.T) {
	tests := []struct {
		name string
		env  SubnetEnv
		want string
	}{
		{
			name: "IPv4",
			env: SubnetEnv{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.1.0/24"),
				MTU: 1450, IPMasq: true},
			want: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		},
		{
			name: "dual stack",
			env: SubnetEnv{Network: netip.MustParsePrefix("10.42.0.0/16"), Subnet: netip.MustParsePrefix("10.42.0.0/24"),
				IPv6Network: netip.MustParsePrefix("2001:cafe:42::/56"), IPv6Subnet: netip.MustParsePrefix("2001:cafe:42::/64"),
				MTU: 1430},
			want: "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\n" +
				"FLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\n" +
				"FLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
		},
		{
			name: "IPv6 only",
			env: SubnetEnv{IPv6Network: netip.MustParsePrefix("fd00::/48"), IPv6Subnet: netip.MustParsePrefix("fd00:0:0:5::/64"),
				MTU: 1430},
			want: "FLANNEL_IPV6_NETWORK=fd00::/48\nFLANNEL_IPV6_SUBNET=fd00:0:0:5::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.env.Marshal()); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			path := filepath.Join(t.TempDir(), "run", "flannel", "subnet.env")
			if err := WriteSubnetEnv(path, tt.env); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tt.want {
				t.Errorf("file: got\n%s\nwant\n%s", data, tt.want)
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("mode: got %v, want 0644", fi.Mode().Perm())
			}
			back, err := ReadSubnetEnv(path)
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.env {
				t.Errorf("read back: got %+v, want %+v", back, tt.env)
			}
			// Only the file remains: no temporary files left behind.
			ents, _ := os.ReadDir(filepath.Dir(path))
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want 1 (subnet.env)", len(ents))
			}
		})
	}
}

func TestSubnetEnvFor(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "198.19.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00::/48", "Backend": {"Type": "vxlan"}}`)
	n, err := ParseNode("node.json", []byte(`{"PublicIP": "198.18.0.1", "IPMasq": true}`))
	if err != nil {
		t.Fatal(err)
	}
	got := SubnetEnvFor(nc, n, netip.MustParsePrefix("198.19.3.0/24"), netip.MustParsePrefix("fd00:0:0:3::/64"), nc.TunMTU(1500, false))
	want := SubnetEnv{Network: nc.Network, Subnet: netip.MustParsePrefix("198.19.3.0/24"),
		IPv6Network: nc.IPv6Network, IPv6Subnet: netip.MustParsePrefix("fd00:0:0:3::/64"), MTU: 1450, IPMasq: true}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestWriteSubnetEnvReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subnet.env")
	e := SubnetEnv{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.1.0/24"), MTU: 1450}
	if err := WriteSubnetEnv(path, e); err != nil {
		t.Fatal(err)
	}
	e.MTU = 1400
	if err := WriteSubnetEnv(path, e); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSubnetEnv(path)
	if err != nil || got.MTU != 1400 {
		t.Errorf("got %+v, %v; want MTU 1400", got, err)
	}
	for _, bad := range []SubnetEnv{
		{MTU: 1450},
		{Network: e.Network, MTU: 1450},
		{IPv6Subnet: netip.MustParsePrefix("fd00::/64"), MTU: 1450},
		{Network: e.Network, Subnet: netip.MustParsePrefix("10.244.1.0/31"), MTU: 1450},
	} {
		if err := WriteSubnetEnv(path, bad); err == nil {
			t.Errorf("WriteSubnetEnv(%+v): got no error", bad)
		}
	}
	if err := WriteSubnetEnv(filepath.Join(path, "sub", "subnet.env"), e); err == nil {
		t.Error("directory under a regular file: got no error")
	}
}

func TestParseSubnetEnv(t *testing.T) {
	// As flannel itself writes it, with a comment and blank line added.
	in := "# written by flannel\n\nFLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\nOTHER=1\n"
	got, err := ParseSubnetEnv("subnet.env", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := SubnetEnv{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.7.0/24"), MTU: 1450, IPMasq: true}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseSubnetEnvErrors(t *testing.T) {
	const ok4 = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"subnet too long", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.255.255/32\n",
			`subnet.env:2:16: FLANNEL_SUBNET: subnet 10.244.255.255/32 is longer than /30`},
		{"no equals", "FLANNEL_NETWORK\n", `subnet.env:1:1: want KEY=value, got "FLANNEL_NETWORK"`},
		{"bad network", "FLANNEL_NETWORK=10.244.0.0\n", `subnet.env:1:17: FLANNEL_NETWORK: invalid CIDR "10.244.0.0"`},
		{"IPv6 in IPv4 key", "FLANNEL_SUBNET=fd00::1/64\n", `subnet.env:1:16: FLANNEL_SUBNET: "fd00::1/64" is not an IPv4 CIDR`},
		{"bad MTU", ok4 + "FLANNEL_MTU=big\n", `subnet.env:3:13: FLANNEL_MTU: invalid MTU "big"`},
		{"MTU range", ok4 + "FLANNEL_MTU=20\n", `subnet.env:3:13: FLANNEL_MTU: 20 is out of range 68..65535`},
		{"bad IPMASQ", ok4 + "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=yes\n", `subnet.env:4:16: FLANNEL_IPMASQ: invalid boolean "yes"`},
		{"duplicate", ok4 + "FLANNEL_MTU=1450\nFLANNEL_MTU=1400\n", `subnet.env:4:13: FLANNEL_MTU: duplicate key (first on line 3)`},
		{"missing MTU", ok4 + "FLANNEL_IPMASQ=false\n", `subnet.env: FLANNEL_MTU: missing`},
		{"missing IPMASQ", ok4 + "FLANNEL_MTU=1450\n", `subnet.env: FLANNEL_IPMASQ: missing`},
		{"missing subnet", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
			`subnet.env: FLANNEL_SUBNET: missing (FLANNEL_NETWORK is set)`},
		{"missing IPv6 network", "FLANNEL_IPV6_SUBNET=fd00::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
			`subnet.env: FLANNEL_IPV6_NETWORK: missing (FLANNEL_IPV6_SUBNET is set)`},
		{"no network", "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
			`subnet.env: FLANNEL_NETWORK: missing (and no FLANNEL_IPV6_NETWORK)`},
		{"subnet outside", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.245.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
			`subnet.env: FLANNEL_SUBNET: 10.245.1.0/24 is outside FLANNEL_NETWORK 10.244.0.0/16`},
		{"IPv6 subnet outside", "FLANNEL_IPV6_NETWORK=fd00::/48\nFLANNEL_IPV6_SUBNET=fd01::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
			`subnet.env: FLANNEL_IPV6_SUBNET: fd01::/64 is outside FLANNEL_IPV6_NETWORK fd00::/48`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSubnetEnv("subnet.env", []byte(tt.in))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got error\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}
