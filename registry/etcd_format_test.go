package registry

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
)

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustNetConf(t testing.TB, js string) *config.NetConf {
	t.Helper()
	nc, err := config.ParseNetConf("test", []byte(js))
	if err != nil {
		t.Fatalf("net-conf %s: %v", js, err)
	}
	return nc
}

const (
	vxlanNetConf = `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`
	udpNetConf   = `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`
)

func TestEncodeLeaseValue(t *testing.T) {
	ip := netip.MustParseAddr("198.18.0.7")
	tests := []struct {
		name string
		in   leaseAttrs
		want string
	}{
		{"vxlan", leaseAttrs{PublicIP: ip, Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mustMAC(t, "02:42:c6:12:00:07")},
			`{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00:07"}}`},
		{"vxlan VNI 4096", leaseAttrs{PublicIP: ip, Backend: config.BackendVXLAN, VNI: 4096, VtepMAC: mustMAC(t, "AA:BB:CC:DD:EE:FF")},
			`{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":4096,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}`},
		// flanneld's udp backend writes neither BackendType nor BackendData.
		{"udp", leaseAttrs{PublicIP: ip, Backend: config.BackendUDP},
			`{"PublicIP":"198.18.0.7","PublicIPv6":null}`},
		// flanneld's host-gw backend: BackendType, no BackendData.
		{"host-gw", leaseAttrs{PublicIP: ip, Backend: config.BackendHostGW},
			`{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"host-gw"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeLeaseValue(tt.in)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			back, err := decodeLeaseValue(got)
			if err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			if back.PublicIP != tt.in.PublicIP || back.Backend != tt.in.Backend || back.VNI != tt.in.VNI ||
				!bytes.Equal(back.VtepMAC, tt.in.VtepMAC) {
				t.Fatalf("round trip: got %+v, want %+v", back, tt.in)
			}
		})
	}

	bad := []leaseAttrs{
		{PublicIP: netip.MustParseAddr("2001:db8::1"), Backend: config.BackendUDP},
		{PublicIP: ip, Backend: config.BackendVXLAN, VNI: 1},                                                 // no MAC
		{PublicIP: ip, Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mustMAC(t, "01:00:5e:00:00:01")},       // multicast
		{PublicIP: ip, Backend: config.BackendVXLAN, VNI: 1 << 24, VtepMAC: mustMAC(t, "02:00:00:00:00:01")}, // VNI
		{PublicIP: ip, Backend: "wireguard"},
	}
	for _, in := range bad {
		if got, err := encodeLeaseValue(in); err == nil {
			t.Errorf("encode %+v: got %s, want an error", in, got)
		}
	}
}

func TestParseSubnetKey(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = error
	}{
		{"10.244.1.0-24", "10.244.1.0/24"},
		{"198.19.3.0-24", "198.19.3.0/24"},
		{"10.244.0.128-25", "10.244.0.128/25"},
		{"10.244.1.0-24&fc00:0:0:1::-64", "10.244.1.0/24"}, // dual-stack flanneld
		{"10.244.1.1-24", ""},                              // host bits
		{"10.244.1.0-33", ""},
		{"10.244.1.0--1", ""},
		{"10.244.1.0-+24", ""},
		{"10.244.1.0-024", ""},
		{"10.244.1.0-", ""},
		{"10.244.1.0", ""},
		{"10.244.01.0-24", ""},
		{"fc00::-64", ""},
		{"::ffff:10.244.1.0-120", ""},
		{"10.244.1.0-24&10.1.0.0-16", ""},
		{"10.244.1.0-24&fc00::1-64", ""},
		{"garbage", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := parseSubnetKey(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("parseSubnetKey(%q): got %v, want an error", tt.in, got)
		case tt.want == "":
			if !errors.Is(err, ErrBadLeaseKey) {
				t.Errorf("parseSubnetKey(%q): got error %v, want ErrBadLeaseKey", tt.in, err)
			}
		case err != nil:
			t.Errorf("parseSubnetKey(%q): %v", tt.in, err)
		case got.String() != tt.want:
			t.Errorf("parseSubnetKey(%q): got %v, want %s", tt.in, got, tt.want)
		}
		if err == nil && !strings.Contains(tt.in, "&") && subnetKey(got) != tt.in {
			t.Errorf("subnetKey(%v): got %q, want %q", got, subnetKey(got), tt.in)
		}
	}
}

func TestLeasePeer(t *testing.T) {
	vx := mustNetConf(t, vxlanNetConf)
	vx4096 := mustNetConf(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","VNI":4096,"Port":4789}}`)
	udp := mustNetConf(t, udpNetConf)
	hostgw := mustNetConf(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}`)
	self := netip.MustParseAddr("198.18.0.1")
	own := netip.MustParsePrefix("198.19.1.0/24")
	kernel := `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00:02"}}`

	tests := []struct {
		name    string
		nc      *config.NetConf
		key     string
		value   string
		want    *config.Peer
		wantErr error
	}{
		{name: "flannel kernel vxlan", nc: vx, key: "198.19.2.0-24", value: kernel,
			want: &config.Peer{Name: "198.19.2.0-24", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 8472,
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, Backend: config.BackendVXLAN,
				VNI: 1, VtepMAC: mustMAC(t, "02:42:c6:12:00:02")}},
		{name: "net-conf port", nc: vx4096, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":4096,"VtepMAC":"02:42:c6:12:00:02"}}`,
			want: &config.Peer{Name: "198.19.2.0-24", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 4789,
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, Backend: config.BackendVXLAN,
				VNI: 4096, VtepMAC: mustMAC(t, "02:42:c6:12:00:02")}},
		{name: "vxlan without VNI uses net-conf VNI", nc: vx4096, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VtepMAC":"02:42:c6:12:00:02"}}`,
			want: &config.Peer{Name: "198.19.2.0-24", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 4789,
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, Backend: config.BackendVXLAN,
				VNI: 4096, VtepMAC: mustMAC(t, "02:42:c6:12:00:02")}},
		{name: "flannel udp backend", nc: udp, key: "198.19.3.0-24", value: `{"PublicIP":"198.18.0.3","PublicIPv6":null}`,
			want: &config.Peer{Name: "198.19.3.0-24", PublicIP: netip.MustParseAddr("198.18.0.3"), Port: 8285,
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.3.0/24")}, Backend: config.BackendUDP}},
		{name: "flanneld host-gw", nc: hostgw, key: "198.19.4.0-24", value: `{"PublicIP":"198.18.0.4","PublicIPv6":null,"BackendType":"host-gw"}`,
			want: &config.Peer{Name: "198.19.4.0-24", PublicIP: netip.MustParseAddr("198.18.0.4"),
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.4.0/24")}, Backend: config.BackendHostGW}},
		{name: "host-gw BackendData ignored", nc: hostgw, key: "198.19.4.0-24", value: `{"PublicIP":"198.18.0.4","BackendType":"host-gw","BackendData":{"x":1}}`,
			want: &config.Peer{Name: "198.19.4.0-24", PublicIP: netip.MustParseAddr("198.18.0.4"),
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.4.0/24")}, Backend: config.BackendHostGW}},
		{name: "vxlan lease in host-gw network", nc: hostgw, key: "198.19.2.0-24", value: kernel, wantErr: errSkip},
		{name: "dual-stack key", nc: vx, key: "198.19.2.0-24&fc00:0:0:2::-64", value: kernel,
			want: &config.Peer{Name: "198.19.2.0-24&fc00:0:0:2::-64", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 8472,
				Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, Backend: config.BackendVXLAN,
				VNI: 1, VtepMAC: mustMAC(t, "02:42:c6:12:00:02")}},

		{name: "malformed JSON", nc: vx, key: "198.19.2.0-24", value: `{"PublicIP":"198.18.0.2",`, wantErr: ErrBadLeaseValue},
		{name: "not an object", nc: vx, key: "198.19.2.0-24", value: `[1,2]`, wantErr: ErrBadLeaseValue},
		{name: "bad MAC", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00"}}`, wantErr: ErrBadLeaseValue},
		{name: "multicast MAC", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"01:00:5e:00:00:01"}}`, wantErr: ErrBadLeaseValue},
		{name: "vxlan without BackendData", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"vxlan"}`, wantErr: ErrBadLeaseValue},
		{name: "VNI too big", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":16777216,"VtepMAC":"02:42:c6:12:00:02"}}`, wantErr: ErrBadLeaseValue},
		{name: "bad public IP", nc: vx, key: "198.19.2.0-24", value: `{"PublicIP":"198.18.0.300"}`, wantErr: ErrBadLeaseValue},
		{name: "IPv6 public IP", nc: udp, key: "198.19.2.0-24", value: `{"PublicIP":"2001:db8::1"}`, wantErr: ErrBadLeaseValue},
		{name: "no public IP", nc: udp, key: "198.19.2.0-24", value: `{}`, wantErr: ErrBadLeaseValue},
		{name: "subnet outside network", nc: vx, key: "10.244.2.0-24", value: kernel, wantErr: errSkip},
		{name: "subnet bigger than network", nc: vx, key: "198.0.0.0-8", value: kernel, wantErr: errSkip},
		{name: "bad key", nc: vx, key: "hello", value: kernel, wantErr: ErrBadLeaseKey},
		{name: "host bits in key", nc: vx, key: "198.19.2.1-24", value: kernel, wantErr: ErrBadLeaseKey},
		{name: "nested key", nc: vx, key: "x/198.19.2.0-24", value: kernel, wantErr: ErrBadLeaseKey},
		{name: "host-gw lease in vxlan network", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"host-gw"}`, wantErr: errSkip},
		{name: "wireguard backend", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"wireguard"}`, wantErr: ErrUnsupportedBackend},
		{name: "udp lease in vxlan network", nc: vx, key: "198.19.2.0-24", value: `{"PublicIP":"198.18.0.2","PublicIPv6":null}`, wantErr: errSkip},
		{name: "vxlan lease in udp network", nc: udp, key: "198.19.2.0-24", value: kernel, wantErr: errSkip},
		{name: "our public IP", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00:02"}}`, wantErr: errSkip},
		{name: "overlaps our subnet", nc: vx, key: "198.19.0.0-23", value: kernel, wantErr: errSkip},
		{name: "our VtepMAC", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}`, wantErr: errSkip},
		{name: "public IP inside the network", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"198.19.7.7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00:02"}}`, wantErr: ErrBadLeaseValue},
		{name: "loopback public IP", nc: vx, key: "198.19.2.0-24",
			value: `{"PublicIP":"127.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00:02"}}`, wantErr: ErrBadLeaseValue},
	}
	selfMAC := mustMAC(t, "0e:00:00:00:00:01")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, _, err := leasePeers(tt.nc, tt.key, []byte(tt.value), leaseSelf{ip: self, mac: selfMAC, own: []netip.Prefix{own}})
			var got config.Peer
			if len(ps) > 0 {
				got = ps[0]
			}
			if err == nil && len(ps) != 1 {
				t.Fatalf("got %d peers, want 1", len(ps))
			}
			if tt.want == nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got peer %+v, error %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want peer %+v", err, *tt.want)
			}
			if !peerEqual(got, *tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, *tt.want)
			}
		})
	}
}

func TestPickSubnet(t *testing.T) {
	nc := mustNetConf(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.4.0","Backend":{"Type":"udp"}}`)
	all := []netip.Prefix{
		netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("198.19.2.0/24"),
		netip.MustParsePrefix("198.19.3.0/24"), netip.MustParsePrefix("198.19.4.0/24"),
	}
	if got, err := pickSubnet(nc, all, netip.Prefix{}); !errors.Is(err, ErrNoFreeSubnet) {
		t.Fatalf("all taken: got %v, %v; want ErrNoFreeSubnet", got, err)
	}
	// A /23 lease written by someone else covers two of our /24s.
	taken := []netip.Prefix{netip.MustParsePrefix("198.19.2.0/23"), netip.MustParsePrefix("198.19.1.0/24")}
	for i := 0; i < 20; i++ {
		got, err := pickSubnet(nc, taken, netip.Prefix{})
		if err != nil || got != all[3] {
			t.Fatalf("got %v, %v; want %v", got, err, all[3])
		}
	}
	// The preferred subnet wins when free, and is ignored when taken or
	// outside SubnetMin..SubnetMax.
	if got, _ := pickSubnet(nc, nil, all[2]); got != all[2] {
		t.Fatalf("prefer free %v: got %v", all[2], got)
	}
	if got, _ := pickSubnet(nc, taken, all[1]); got != all[3] {
		t.Fatalf("prefer taken %v: got %v, want %v", all[1], got, all[3])
	}
	if got, _ := pickSubnet(nc, all[:3], netip.MustParsePrefix("198.19.9.0/24")); got != all[3] {
		t.Fatalf("prefer out of range: got %v, want %v", got, all[3])
	}
	// Random among the free ones: over many picks every free subnet shows up.
	seen := map[netip.Prefix]bool{}
	for i := 0; i < 200; i++ {
		got, err := pickSubnet(nc, nil, netip.Prefix{})
		if err != nil || !slices.Contains(all, got) {
			t.Fatalf("got %v, %v; want one of %v", got, err, all)
		}
		seen[got] = true
	}
	if len(seen) != len(all) {
		t.Fatalf("200 random picks hit %d of %d free subnets", len(seen), len(all))
	}
}

// FuzzLeasePeer feeds arbitrary keys and values through the lease parser:
// it must never panic, and whatever it accepts must be a usable peer.
func FuzzLeasePeer(f *testing.F) {
	f.Add("198.19.2.0-24", []byte(`{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:c6:12:00:02"}}`))
	f.Add("198.19.3.0-24", []byte(`{"PublicIP":"198.18.0.3","PublicIPv6":null}`))
	f.Add("198.19.2.0-24&fc00::-64", []byte(`{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VtepMAC":"02:42:c6:12:00:02"}}`))
	f.Add("198.19.2.0-24", []byte(`{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":null}`))
	f.Add("198.19.2.1-24", []byte(`{`))
	f.Add("10.0.0.0-8", []byte(`{"PublicIP":"1.2.3.4","BackendType":"host-gw"}`))
	vx := mustNetConf(f, vxlanNetConf)
	udp := mustNetConf(f, udpNetConf)
	self := netip.MustParseAddr("198.18.0.1")
	own := netip.MustParsePrefix("198.19.1.0/24")
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		for _, nc := range []*config.NetConf{vx, udp} {
			ps, _, err := leasePeers(nc, key, value, leaseSelf{ip: self, own: []netip.Prefix{own}})
			if err != nil {
				continue
			}
			if len(ps) != 1 {
				t.Fatalf("got %d peers from %q=%q without EnableIPv6, want 1", len(ps), key, value)
			}
			p := ps[0]
			if p.Name != key || len(p.Subnets) != 1 || !nc.Network.Contains(p.Subnets[0].Addr()) ||
				p.Subnets[0].Overlaps(own) || !p.PublicIP.Is4() || p.PublicIP == self || p.Backend != nc.Backend.Type {
				t.Fatalf("accepted unusable peer %+v from %q=%q", p, key, value)
			}
			if p.Backend == config.BackendVXLAN && (len(p.VtepMAC) != 6 || p.VNI == 0 || p.VNI > config.MaxVNI) {
				t.Fatalf("accepted vxlan peer without MAC/VNI %+v from %q=%q", p, key, value)
			}
		}
	})
}
