package registry

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
)

const dualNetConf = `{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:2:0:1000::/52","Backend":{"Type":"vxlan"}}`

// flanneldDualLease is what a dual-stack flanneld (vxlan) writes.
const flanneldDualLease = `{"PublicIP":"198.18.0.3","PublicIPv6":"2001:2::3","BackendType":"vxlan",` +
	`"BackendData":{"VNI":1,"VtepMAC":"5e:a1:07:1c:2b:3d"},"BackendV6Data":{"VNI":1,"VtepMAC":"5e:a1:07:1c:2b:3e"}}`

func TestSubnetKeysDual(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		in       string
		want4    netip.Prefix
		want6    netip.Prefix
		wantFail bool
	}{
		{in: "198.19.1.0-24", want4: p("198.19.1.0/24")},
		{in: "198.19.1.0-24&2001:2:0:1001::-64", want4: p("198.19.1.0/24"), want6: p("2001:2:0:1001::/64")},
		{in: "10.244.1.0-24&fc00:0:0:1::-64", want4: p("10.244.1.0/24"), want6: p("fc00:0:0:1::/64")},
		{in: "198.19.1.0-24&198.19.2.0-24", wantFail: true},
		{in: "198.19.1.0-24&2001:2:0:1001::1-64", wantFail: true},
	}
	for _, tt := range tests {
		got4, got6, err := parseSubnetKeys(tt.in)
		if tt.wantFail {
			if err == nil {
				t.Errorf("parseSubnetKeys(%q): got %v %v, want an error", tt.in, got4, got6)
			}
			continue
		}
		if err != nil || got4 != tt.want4 || got6 != tt.want6 {
			t.Errorf("parseSubnetKeys(%q): got %v %v %v, want %v %v", tt.in, got4, got6, err, tt.want4, tt.want6)
			continue
		}
		if k := dualSubnetKey(got4, got6); k != tt.in {
			t.Errorf("dualSubnetKey(%v, %v): got %q, want %q", got4, got6, k, tt.in)
		}
	}
}

func TestLeaseValueV6(t *testing.T) {
	mac := mustMAC(t, "0e:76:78:00:00:01")
	in := leaseAttrs{PublicIP: netip.MustParseAddr("198.18.0.1"), Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mac,
		V6: &leaseV6{VNI: 1, VtepMAC: mac}}
	got, err := encodeLeaseValue(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}}`
	if string(got) != want {
		t.Fatalf("encode: got %s, want %s", got, want)
	}
	a, err := decodeLeaseValue([]byte(flanneldDualLease))
	if err != nil {
		t.Fatal(err)
	}
	if a.V6 == nil || a.V6.PublicIP != netip.MustParseAddr("2001:2::3") || a.V6.VtepMAC.String() != "5e:a1:07:1c:2b:3e" || a.V6.VNI != 1 {
		t.Fatalf("decode flanneld's dual-stack lease: got V6 %+v, want PublicIPv6 2001:2::3, VtepMAC 5e:a1:07:1c:2b:3e, VNI 1", a.V6)
	}
	for _, bad := range []string{
		`{"PublicIP":"198.18.0.3","PublicIPv6":"198.18.0.3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"5e:a1:07:1c:2b:3d"}}`,
		`{"PublicIP":"198.18.0.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"5e:a1:07:1c:2b:3d"},"BackendV6Data":{"VtepMAC":"zz"}}`,
	} {
		if _, err := decodeLeaseValue([]byte(bad)); err == nil {
			t.Errorf("decode %s: got nil error, want a bad lease value", bad)
		}
	}
}

func TestLeasePeerDual(t *testing.T) {
	nc, err := config.ParseNetConf("test", []byte(dualNetConf))
	if err != nil {
		t.Fatal(err)
	}
	nc4, err := config.ParseNetConf("test", []byte(`{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	self := leaseSelf{ip: netip.MustParseAddr("198.18.0.1"), own: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("2001:2:0:1001::/64")}}
	self6 := self
	self6.ip6 = netip.MustParseAddr("2001:2::1")
	vxtunDual := `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:76:78:00:00:02"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:76:78:00:00:02"}}`
	vxtunDual6 := `{"PublicIP":"198.18.0.2","PublicIPv6":"2001:2::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:76:78:00:00:02"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:76:78:00:00:02"}}`
	tests := []struct {
		name, key, value string
		nc               *config.NetConf
		self             leaseSelf
		want             []string // "name public-ip mac subnets...", or nil for an error
		routed6          bool
	}{
		{"vxtun dual-stack lease", "198.19.2.0-24&2001:2:0:1002::-64", vxtunDual, nc, self,
			[]string{"198.19.2.0-24&2001:2:0:1002::-64 198.18.0.2 0e:76:78:00:00:02 198.19.2.0/24 2001:2:0:1002::/64"}, true},
		{"vxtun dual-stack lease, public IPv6 here", "198.19.2.0-24&2001:2:0:1002::-64", vxtunDual, nc, self6,
			[]string{"198.19.2.0-24&2001:2:0:1002::-64 198.18.0.2 0e:76:78:00:00:02 198.19.2.0/24 2001:2:0:1002::/64"}, true},
		{"flanneld dual-stack lease, no public IPv6 here: IPv4 part", "198.19.3.0-24&2001:2:0:1003::-64", flanneldDualLease, nc, self,
			[]string{"198.19.3.0-24&2001:2:0:1003::-64 198.18.0.3 5e:a1:07:1c:2b:3d 198.19.3.0/24"}, false},
		{"flanneld dual-stack lease, public IPv6 here: two peers", "198.19.3.0-24&2001:2:0:1003::-64", flanneldDualLease, nc, self6,
			[]string{"198.19.3.0-24&2001:2:0:1003::-64 198.18.0.3 5e:a1:07:1c:2b:3d 198.19.3.0/24",
				"198.19.3.0-24&2001:2:0:1003::-64/v6 2001:2::3 5e:a1:07:1c:2b:3e 2001:2:0:1003::/64"}, true},
		{"vxtun lease with a public IPv6, public IPv6 here", "198.19.2.0-24&2001:2:0:1002::-64", vxtunDual6, nc, self6,
			[]string{"198.19.2.0-24&2001:2:0:1002::-64 198.18.0.2 0e:76:78:00:00:02 198.19.2.0/24",
				"198.19.2.0-24&2001:2:0:1002::-64/v6 2001:2::2 0e:76:78:00:00:02 2001:2:0:1002::/64"}, true},
		{"lease with our public IPv6", "198.19.2.0-24&2001:2:0:1002::-64", strings.Replace(vxtunDual6, "2001:2::2", "2001:2::1", 1), nc, self6, nil, false},
		{"IPv6 disabled here", "198.19.2.0-24&2001:2:0:1002::-64", vxtunDual, nc4, self6, []string{"198.19.2.0-24&2001:2:0:1002::-64 198.18.0.2 0e:76:78:00:00:02 198.19.2.0/24"}, false},
		{"IPv6 subnet outside IPv6Network", "198.19.2.0-24&2001:2:0:2002::-64", vxtunDual, nc, self, nil, false},
		{"IPv6 subnet overlaps ours", "198.19.2.0-24&2001:2:0:1001::-64", vxtunDual, nc, self, nil, false},
		{"IPv6 subnet overlaps ours, second peer", "198.19.3.0-24&2001:2:0:1001::-64", flanneldDualLease, nc, self6, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, routed6, err := leasePeers(tt.nc, tt.key, []byte(tt.value), tt.self)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got peers %+v, want an error", ps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				s := []string{p.Name, p.PublicIP.String(), p.VtepMAC.String()}
				for _, sn := range p.Subnets {
					s = append(s, sn.String())
				}
				got = append(got, strings.Join(s, " "))
			}
			if !slices.Equal(got, tt.want) || routed6 != tt.routed6 {
				t.Fatalf("got %q routed6 %v\nwant %q routed6 %v", got, routed6, tt.want, tt.routed6)
			}
		})
	}
}

// TestEtcdDualStack: with EnableIPv6 two nodes take dual-stack leases
// (one key, "<ipv4>-<len>&<ipv6>-<len>", a value with BackendV6Data) and
// see each other's IPv6 subnet; a flanneld dual-stack lease is a peer for
// its IPv4 subnet.
func TestEtcdDualStack(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, dualNetConf)
	a := startNode(t, srv, "a", "198.18.0.1", "0e:76:78:00:00:01", 0)
	b := startNode(t, srv, "b", "198.18.0.2", "0e:76:78:00:00:02", 0)
	la, lb := a.lease(t), b.lease(t)
	for _, l := range []Lease{la, lb} {
		if !l.Subnet6.IsValid() || l.Subnet6.Bits() != 64 || !netip.MustParsePrefix("2001:2:0:1000::/52").Contains(l.Subnet6.Addr()) {
			t.Fatalf("lease %s: got IPv6 subnet %v, want a /64 of 2001:2:0:1000::/52", l.Name, l.Subnet6)
		}
		if want := dualSubnetKey(l.Subnet, l.Subnet6); l.Name != want || !strings.Contains(l.Name, "&") {
			t.Fatalf("lease name: got %q, want %q", l.Name, want)
		}
	}
	if la.Subnet6 == lb.Subnet6 {
		t.Fatalf("both nodes hold IPv6 subnet %s", la.Subnet6)
	}
	val, _, ok := getKey(t, cli, testPrefix+"/subnets/"+la.Name)
	if !ok {
		t.Fatalf("no key %s", la.Name)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal([]byte(val), &v); err != nil {
		t.Fatal(err)
	}
	if string(v["PublicIPv6"]) != "null" || string(v["BackendV6Data"]) != `{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}` {
		t.Fatalf("lease value: got %s, want PublicIPv6 null and BackendV6Data with our VtepMAC", val)
	}
	peers := a.waitPeers(t, "b", hasPeers(lb.Name))
	if got := peers[lb.Name].Subnets; !slices.Equal(got, []netip.Prefix{lb.Subnet, lb.Subnet6}) {
		t.Fatalf("peer b: got subnets %v, want %v and %v", got, lb.Subnet, lb.Subnet6)
	}

	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.200.0-24&2001:2:0:1fff::-64", flanneldDualLease)
	peers = a.waitPeers(t, "flanneld", hasPeers("198.19.200.0-24&2001:2:0:1fff::-64", lb.Name))
	if got := peers["198.19.200.0-24&2001:2:0:1fff::-64"].Subnets; !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("198.19.200.0/24")}) {
		t.Fatalf("flanneld peer: got subnets %v, want its IPv4 subnet only", got)
	}

	// A restart reuses both subnets.
	a.stop()
	a2 := startNode(t, srv, "a2", "198.18.0.1", "0e:76:78:00:00:01", 0)
	if l := a2.lease(t); l.Name != la.Name {
		t.Fatalf("after a restart: got lease %s, want %s", l.Name, la.Name)
	}
}

// TestEtcdPublicIPv6: a node with a public IPv6 publishes it as PublicIPv6
// (BackendV6Data with its one VtepMAC), and sees a flanneld dual-stack
// lease as two peers, the second "<name>/v6" over PublicIPv6 with
// flannel-v6.1's MAC; the watch keeps both in step with the lease.
func TestEtcdPublicIPv6(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, dualNetConf)
	a := startNode(t, srv, "a", "198.18.0.1", "0e:76:78:00:00:01", 0, func(s *EtcdSource) {
		s.opts.PublicIPv6 = netip.MustParseAddr("2001:2:0:ff::1")
	})
	la := a.lease(t)
	val, _, ok := getKey(t, cli, testPrefix+"/subnets/"+la.Name)
	if !ok {
		t.Fatalf("no key %s", la.Name)
	}
	want := `{"PublicIP":"198.18.0.1","PublicIPv6":"2001:2:0:ff::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}}`
	if val != want {
		t.Fatalf("lease value: got %s, want %s", val, want)
	}

	const key = "198.19.200.0-24&2001:2:0:1fff::-64"
	etcdtest.Put(t, cli, testPrefix+"/subnets/"+key, flanneldDualLease)
	peers := a.waitPeers(t, "flanneld's two peers", hasPeers(key, key+V6PeerSuffix))
	if p := peers[key]; p.PublicIP != netip.MustParseAddr("198.18.0.3") || !slices.Equal(p.Subnets, []netip.Prefix{netip.MustParsePrefix("198.19.200.0/24")}) {
		t.Fatalf("IPv4 peer: got %v %v, want 198.18.0.3 198.19.200.0/24", p.PublicIP, p.Subnets)
	}
	if p := peers[key+V6PeerSuffix]; p.PublicIP != netip.MustParseAddr("2001:2::3") || p.VtepMAC.String() != "5e:a1:07:1c:2b:3e" ||
		!slices.Equal(p.Subnets, []netip.Prefix{netip.MustParsePrefix("2001:2:0:1fff::/64")}) {
		t.Fatalf("IPv6 peer: got %v %v %v, want 2001:2::3 5e:a1:07:1c:2b:3e 2001:2:0:1fff::/64", p.PublicIP, p.VtepMAC, p.Subnets)
	}
	// The lease moves its IPv6 side onto PublicIP: one peer again.
	etcdtest.Put(t, cli, testPrefix+"/subnets/"+key, `{"PublicIP":"198.18.0.3","PublicIPv6":null,"BackendType":"vxlan",`+
		`"BackendData":{"VNI":1,"VtepMAC":"5e:a1:07:1c:2b:3d"},"BackendV6Data":{"VNI":1,"VtepMAC":"5e:a1:07:1c:2b:3d"}}`)
	peers = a.waitPeers(t, "one peer", hasPeers(key))
	if got := len(peers[key].Subnets); got != 2 {
		t.Fatalf("peer over PublicIP: got %d subnets, want 2", got)
	}
	etcdtest.Put(t, cli, testPrefix+"/subnets/"+key, flanneldDualLease)
	a.waitPeers(t, "two peers again", hasPeers(key, key+V6PeerSuffix))
	if _, err := cli.Delete(context.Background(), testPrefix+"/subnets/"+key); err != nil {
		t.Fatal(err)
	}
	a.waitPeers(t, "no peers", hasPeers())
}

func TestPickSubnet6(t *testing.T) {
	nc, err := config.ParseNetConf("test", []byte(`{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:2:0:1000::/62","IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	// /62 in /64s: 1000, 1001, 1002, 1003; SubnetMin is the second.
	got, err := pickSubnet6(nc, []netip.Prefix{p("2001:2:0:1001::/64"), p("2001:2:0:1003::/64")}, netip.Prefix{})
	if err != nil || got != p("2001:2:0:1002::/64") {
		t.Fatalf("pick: got %v %v, want 2001:2:0:1002::/64 (the one free)", got, err)
	}
	if _, err := pickSubnet6(nc, []netip.Prefix{p("2001:2:0:1000::/62")}, netip.Prefix{}); err == nil {
		t.Fatal("all taken: got nil error")
	}
	if got, _ := pickSubnet6(nc, nil, p("2001:2:0:1003::/64")); got != p("2001:2:0:1003::/64") {
		t.Fatalf("prefer: got %v, want 2001:2:0:1003::/64", got)
	}
	if a, ok := nextSubnet6(netip.MustParseAddr("ffff:ffff:ffff:ffff::"), 64); ok {
		t.Fatalf("nextSubnet6 at the end: got %v, want none", a)
	}
}
