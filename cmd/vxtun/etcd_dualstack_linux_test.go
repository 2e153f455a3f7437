package main

// End-to-end tests of the second, IPv6 underlay in etcd mode
// (--public-ipv6): a vxtun node with a public IPv4 and IPv6 address talks
// to a dual-stack flanneld node (flannel.1 over IPv4, flannel-v6.1 over
// IPv6, its lease as flanneld writes it) and to another such vxtun node,
// carrying IPv4 over the IPv4 underlay and IPv6 over the IPv6 one; a vxtun
// node without a public IPv6 routes only the flanneld lease's IPv4 subnet.
// Underlay 198.18.0.N/24 and 2001:2::N/64, overlay 198.19.0.0/16 and
// 2001:2:0:1000::/52.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// dsEtcdNetConf lets vxtun lease 198.19.N.0/24 and 2001:2:0:10NN::/64
// for N in [lo, hi].
func dsEtcdNetConf(lo, hi int) string {
	return fmt.Sprintf(`{"Network":"198.19.0.0/16","SubnetMin":"198.19.%d.0","SubnetMax":"198.19.%d.0",`+
		`"EnableIPv6":true,"IPv6Network":"%s","IPv6SubnetMin":"2001:2:0:10%02d::","IPv6SubnetMax":"2001:2:0:10%02d::",`+
		`"Backend":{"Type":"vxlan"}}`, lo, hi, ipv6Network, lo, hi)
}

// startEtcdDualVxtun starts vxtun in etcd mode on node i (--iface ul0, so
// its public IPv6 is ul0's first global IPv6 address, if any) and waits for
// its subnet.env.
func startEtcdDualVxtun(t *testing.T, ns *nettest.NS, srv *etcdtest.Server, i int, extra ...string) *podNode {
	t.Helper()
	dir := t.TempDir()
	n := &podNode{index: i, ns: ns, subnetEnv: filepath.Join(dir, "subnet.env"),
		tn: &testNode{ns: ns, index: i, debug: "127.0.0.1:9090"}}
	args := append([]string{"run", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","),
		"--etcd-prefix", e2eEtcdPrefix, "--iface", nettest.UnderlayIface, "--subnet-file", n.subnetEnv,
		"--vtep-mac-file", filepath.Join(dir, "vtep-mac"), "--workers", "2", "--ip-masq",
		"--debug-addr", n.tn.debug, "--log-level", "debug"}, extra...)
	n.p = startVxtun(t, ns, args...)
	n.index = envSubnet(t, n.subnetEnv, -1, n.p)
	return n
}

// leaseValue returns the raw lease value under key name.
func leaseValue(t *testing.T, e *etcdtest.Server, name string) map[string]json.RawMessage {
	t.Helper()
	cli := e.Client(t)
	resp, err := cli.Get(t.Context(), e2eEtcdPrefix+"/subnets/"+name)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lease %s: %v (%d keys)", name, err, len(resp.Kvs))
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("lease %s: %v: %s", name, err, resp.Kvs[0].Value)
	}
	return v
}

// dsLeaseName is the key of node i's dual-stack lease.
func dsLeaseName(i int) string {
	return fmt.Sprintf("198.19.%d.0-24&2001:2:0:10%02d::-64", i, i)
}

// udpInDatagrams reads the namespace's UDP (IPv4) and UDP6 InDatagrams.
func udpInDatagrams(t *testing.T, ns *nettest.NS) (v4, v6 uint64) {
	t.Helper()
	snmp := strings.Split(ns.Run("cat", "/proc/net/snmp"), "\n")
	for i := 0; i+1 < len(snmp); i++ {
		if h, vals := strings.Fields(snmp[i]), strings.Fields(snmp[i+1]); len(h) > 0 && h[0] == "Udp:" && vals[0] == "Udp:" && len(h) == len(vals) {
			for k := range h {
				if h[k] == "InDatagrams" {
					v4, _ = strconv.ParseUint(vals[k], 10, 64)
				}
			}
			break
		}
	}
	for _, l := range strings.Split(ns.Run("cat", "/proc/net/snmp6"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Udp6InDatagrams" {
			v6, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return v4, v6
}

// dsTraffic runs ping, ping6 and TCP (content checked) both ways between
// the dual-stack pods of a and b, and checks on vxtun node a that the
// IPv6 transfers arrived on its IPv6 underlay socket and the IPv4 ones on
// its IPv4 socket.
func dsTraffic(t *testing.T, a, b *podNode, port int) {
	t.Helper()
	a4, a6 := a.dualPod(t)
	b4, b6 := b.dualPod(t)
	waitPodPing(t, a4, b4, a, b)
	waitPodPing(t, b4, a4, a, b)
	waitPing6(t, a6, b6, a, b)
	waitPing6(t, b6, a6, a, b)
	const size = 8 << 20
	type count struct{ v4, v6 uint64 }
	delta := func(f func()) count {
		u4, u6 := udpInDatagrams(t, a.ns)
		f()
		w4, w6 := udpInDatagrams(t, a.ns)
		return count{w4 - u4, w6 - u6}
	}
	c6 := delta(func() {
		podTransfer(t, b6, a6, port, size, a, b)
		podTransfer(t, a6, b6, port+1, size, a, b)
	})
	c4 := delta(func() {
		podTransfer(t, b4, a4, port+2, size, a, b)
		podTransfer(t, a4, b4, port+3, size, a, b)
	})
	// 8 MiB towards a is at least 8 MiB / 64 KiB = 128 datagrams even if
	// every one arrived as a full GRO super-datagram; the other family's
	// count may move by a few (etcd is TCP; nothing else uses UDP here).
	const many, few = 128, 32
	if c6.v6 < many || c6.v4 > few {
		t.Errorf("IPv6 transfers: node %d received %d IPv6 and %d IPv4 UDP datagrams, want ≥ %d over IPv6 and ≤ %d over IPv4", a.index, c6.v6, c6.v4, many, few)
	}
	if c4.v4 < many || c4.v6 > few {
		t.Errorf("IPv4 transfers: node %d received %d IPv4 and %d IPv6 UDP datagrams, want ≥ %d over IPv4 and ≤ %d over IPv6", a.index, c4.v4, c4.v6, many, few)
	}
}

// TestEtcdDualStackFlanneld: vxtun (public IPv4 and, from --iface, IPv6)
// and a dual-stack flanneld-style kernel node, both in etcd.
func TestEtcdDualStackFlanneld(t *testing.T) {
	nss := dsUnderlay(t, true)
	srv := etcdtest.StartWith(t, etcdtest.Options{Host: "198.18.0.1", Do: nss[0].Do})
	cli := srv.Client(t)
	etcdtest.Put(t, cli, e2eEtcdPrefix+"/config", dsEtcdNetConf(1, 1))
	n1 := startEtcdDualVxtun(t, nss[0], srv, 1)
	if n1.index != 1 {
		t.Fatalf("vxtun leased 198.19.%d.0/24, want 198.19.1.0/24", n1.index)
	}
	// vxtun's lease: PublicIPv6 its ul0 address, BackendV6Data its VtepMAC.
	v := leaseValue(t, srv, dsLeaseName(1))
	var bd, bd6 struct {
		VNI     int
		VtepMAC string
	}
	if err := json.Unmarshal(v["BackendData"], &bd); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(v["BackendV6Data"], &bd6); err != nil {
		t.Fatal(err)
	}
	if string(v["PublicIPv6"]) != `"2001:2::1"` || bd6 != bd {
		t.Fatalf("vxtun's lease: PublicIPv6 %s, BackendData %+v, BackendV6Data %+v; want \"2001:2::1\" and the same VNI and VtepMAC in both",
			v["PublicIPv6"], bd, bd6)
	}
	if e, err := config.ReadSubnetEnv(n1.subnetEnv); err != nil || e.MTU != config.TunMTUFor(1500, config.BackendVXLAN, true) {
		t.Fatalf("vxtun's subnet.env: %+v %v, want FLANNEL_MTU %d (room for the IPv6 outer header)", e, err, config.TunMTUFor(1500, config.BackendVXLAN, true))
	}

	// The flanneld node: flannel.1 and flannel-v6.1, each told about vxtun
	// as flanneld programs a lease, and its lease byte for byte.
	const mac4, mac6 = "0e:00:00:00:00:02", "0e:00:00:00:06:02"
	vxMAC := mustMAC(t, bd.VtepMAC)
	ds := flannelvxlan.DualStack{
		V4: flannelvxlan.Device{Local: netip.MustParseAddr("198.18.0.2"), MAC: mustMAC(t, mac4), Subnet: netip.MustParsePrefix("198.19.2.0/24")},
		V6: flannelvxlan.Device{Local: underlay6(2), MAC: mustMAC(t, mac6), Subnet6: subnet6(2)},
	}
	remote := flannelvxlan.DualRemote{
		V4: flannelvxlan.Remote{Subnet: netip.MustParsePrefix("198.19.1.0/24"), PublicIP: netip.MustParseAddr("198.18.0.1"), VtepMAC: vxMAC},
		V6: flannelvxlan.Remote{Subnet6: subnet6(1), PublicIP: underlay6(1), VtepMAC: vxMAC},
	}
	n2 := flanneldDualNode(t, cli, nss[1], ds, remote, mac4, mac6, 1430)
	(&e2eEtcdNode{ns: n1.ns, debug: n1.tn.debug, p: n1.p}).waitPeers(t, 2) // <lease> and <lease>/v6
	dsTraffic(t, n1, n2, 5700)
}

// TestEtcdDualStackVxtun: two vxtun nodes that both have a public IPv6
// (one from --iface, one from FLANNELD_PUBLIC_IPV6) carry IPv6 over the
// IPv6 underlay.
func TestEtcdDualStackVxtun(t *testing.T) {
	nss := dsUnderlay(t, true)
	srv := etcdtest.StartWith(t, etcdtest.Options{Host: "198.18.0.1", Do: nss[0].Do})
	etcdtest.Put(t, srv.Client(t), e2eEtcdPrefix+"/config", dsEtcdNetConf(1, 2))
	n1 := startEtcdDualVxtun(t, nss[0], srv, 1)
	dir := t.TempDir()
	n2 := &podNode{ns: nss[1], subnetEnv: filepath.Join(dir, "subnet.env"), tn: &testNode{ns: nss[1], debug: "127.0.0.1:9090"}}
	n2.p = nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: nss[1], Env: []string{"FLANNELD_PUBLIC_IPV6=2001:2::2"},
		Argv: []string{vxtunBin, "run", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","), "--etcd-prefix", e2eEtcdPrefix,
			"--public-ip", "198.18.0.2", "--subnet-file", n2.subnetEnv, "--vtep-mac-file", filepath.Join(dir, "vtep-mac"),
			"--workers", "2", "--ip-masq", "--debug-addr", n2.tn.debug, "--log-level", "debug"}})
	n2.index = envSubnet(t, n2.subnetEnv, n1.index, n2.p)
	for i, n := range []*podNode{n1, n2} {
		e, err := config.ReadSubnetEnv(n.subnetEnv)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("198.19.%d.0-24&%s-64", n.index, e.IPv6Subnet.Addr())
		if got, want := string(leaseValue(t, srv, name)["PublicIPv6"]), fmt.Sprintf(`"%s"`, underlay6(i+1)); got != want {
			t.Fatalf("node %d lease: PublicIPv6 %s, want %s", i+1, got, want)
		}
	}
	for _, n := range []*podNode{n1, n2} {
		(&e2eEtcdNode{ns: n.ns, debug: n.tn.debug, p: n.p}).waitPeers(t, 2)
	}
	dsTraffic(t, n1, n2, 5720)
}

// TestEtcdDualStackNoPublicIPv6: a vxtun node without a public IPv6 (no
// global IPv6 on its ul0) routes only the IPv4 subnet of a flanneld
// dual-stack lease, and says so.
func TestEtcdDualStackNoPublicIPv6(t *testing.T) {
	nss := dsUnderlay(t, false)
	nss[1].Run("ip", "-6", "addr", "add", underlay6(2).String()+"/64", "dev", "ul0", "nodad")
	srv := etcdtest.StartWith(t, etcdtest.Options{Host: "198.18.0.1", Do: nss[0].Do})
	cli := srv.Client(t)
	etcdtest.Put(t, cli, e2eEtcdPrefix+"/config", dsEtcdNetConf(1, 1))
	n1 := startEtcdDualVxtun(t, nss[0], srv, 1)
	v := leaseValue(t, srv, dsLeaseName(1))
	if string(v["PublicIPv6"]) != "null" {
		t.Fatalf("vxtun's lease without a public IPv6: PublicIPv6 %s, want null", v["PublicIPv6"])
	}
	var bd struct{ VtepMAC string }
	if err := json.Unmarshal(v["BackendData"], &bd); err != nil {
		t.Fatal(err)
	}
	const mac4, mac6 = "0e:00:00:00:00:02", "0e:00:00:00:06:02"
	ds := flannelvxlan.DualStack{
		V4: flannelvxlan.Device{Local: netip.MustParseAddr("198.18.0.2"), MAC: mustMAC(t, mac4), Subnet: netip.MustParsePrefix("198.19.2.0/24")},
		V6: flannelvxlan.Device{Local: underlay6(2), MAC: mustMAC(t, mac6), Subnet6: subnet6(2)},
	}
	remote := flannelvxlan.DualRemote{
		V4: flannelvxlan.Remote{Subnet: netip.MustParsePrefix("198.19.1.0/24"), PublicIP: netip.MustParseAddr("198.18.0.1"), VtepMAC: mustMAC(t, bd.VtepMAC)},
		V6: flannelvxlan.Remote{Subnet6: subnet6(1)}, // PublicIPv6 null: flanneld programs nothing
	}
	n2 := flanneldDualNode(t, cli, nss[1], ds, remote, mac4, mac6, 1450)
	(&e2eEtcdNode{ns: n1.ns, debug: n1.tn.debug, p: n1.p}).waitPeers(t, 1)
	a4, a6 := n1.dualPod(t)
	b4, b6 := n2.dualPod(t)
	waitPodPing(t, a4, b4, n1, n2)
	podTransfer(t, a4, b4, 5740, 1<<20, n1, n2)
	if out := n1.p.Output(); !strings.Contains(out, "routing only its IPv4 subnet") {
		t.Errorf("vxtun's log does not say that the lease's IPv6 subnet is not routed:\n%s", out)
	}
	out, err := a6.Try("ping", "-6", "-n", "-c", "1", "-W", "2", b6.IP())
	if err == nil || !strings.Contains(out, "nreachable") {
		t.Fatalf("ping6 %s -> %s without a public IPv6: %v, want unreachable:\n%s", a6.IP(), b6.IP(), err, out)
	}
}

// flanneldDualNode programs ns as flanneld programs a dual-stack node (ds,
// its one peer remote), writes its lease into etcd exactly as flanneld
// does (PublicIPv6 2001:2::2, VtepMACs mac4 and mac6) and its subnet.env
// with FLANNEL_MTU mtu, and returns it as a pod node.
func flanneldDualNode(t *testing.T, cli *clientv3.Client, ns *nettest.NS, ds flannelvxlan.DualStack, remote flannelvxlan.DualRemote, mac4, mac6 string, mtu config.TunMTU) *podNode {
	t.Helper()
	for _, c := range ds.Commands(remote) {
		ns.Run(c...)
	}
	etcdtest.Put(t, cli, e2eEtcdPrefix+"/subnets/"+dsLeaseName(2),
		`{"PublicIP":"198.18.0.2","PublicIPv6":"2001:2::2","BackendType":"vxlan",`+
			`"BackendData":{"VNI":1,"VtepMAC":"`+mac4+`"},"BackendV6Data":{"VNI":1,"VtepMAC":"`+mac6+`"}}`)
	env := filepath.Join(t.TempDir(), "subnet.env")
	if err := config.WriteSubnetEnv(env, config.SubnetEnv{
		Network: netip.MustParsePrefix(nettest.OverlayNetwork), Subnet: ds.V4.Subnet,
		IPv6Network: netip.MustParsePrefix(ipv6Network), IPv6Subnet: ds.V6.Subnet6, MTU: mtu, IPMasq: true,
	}); err != nil {
		t.Fatal(err)
	}
	return &podNode{index: 2, ns: ns, kernel: true, subnetEnv: env}
}
