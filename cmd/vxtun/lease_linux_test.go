package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
	"github.com/vxtun/vxtun/internal/nettest"
)

// envSubnet waits until subnet.env at path names a subnet 198.19.N.0/24
// with N other than not and returns N.
func envSubnet(t *testing.T, path string, not int, p *nettest.Daemon) int {
	t.Helper()
	overlay := netip.MustParsePrefix("198.19.0.0/16")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if e, err := config.ReadSubnetEnv(path); err == nil && e.Subnet.Bits() == 24 && overlay.Contains(e.Subnet.Addr()) {
			if n := int(e.Subnet.Addr().As4()[2]); n != not {
				return n
			}
		}
		if err := nettest.CheckRunning(p); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("subnet.env did not name a 198.19.N.0/24 subnet other than %d; log:\n%s", not, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaseNode is one etcd-mode vxtun in namespace A of a two-host underlay,
// with etcd in A as well and a network of three subnets 198.19.1-3.0/24.
type leaseNode struct {
	h   *nettest.TwoHosts
	cli *clientv3.Client
	env string // its subnet.env
	p   *nettest.Daemon
}

const leaseNetConf = `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.3.0","Backend":{"Type":"vxlan"}}`

func startLeaseNode(t *testing.T, extra ...string) *leaseNode {
	t.Helper()
	e := newE2EEtcd(t, leaseNetConf)
	dir := t.TempDir()
	env := filepath.Join(dir, "subnet.env")
	p := startVxtun(t, e.h.A, append([]string{"run", "--etcd-endpoints", e.srv.Endpoints()[0], "--iface", "ul0",
		"--vtep-mac-file", filepath.Join(dir, "mac"), "--subnet-file", env, "--workers", "1"}, extra...)...)
	return &leaseNode{h: e.h, cli: e.cli, env: env, p: p}
}

// usurp puts someone else's lease at the key of subnet 198.19.i.0/24.
func (n *leaseNode) usurp(t *testing.T, i int) {
	t.Helper()
	etcdtest.Put(t, n.cli, fmt.Sprintf("/coreos.com/network/subnets/198.19.%d.0-24", i),
		`{"PublicIP":"198.18.0.99","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:99"}}`)
}

// TestLeaseMoved: when another node takes over our lease's key (our lease
// is lost and its subnet is no longer free), vxtun takes a new subnet and
// restarts its dataplane: new TUN address, new subnet.env, the usurper
// becomes a peer; the process keeps running and still shuts down cleanly.
func TestLeaseMoved(t *testing.T) {
	const debug = "127.0.0.1:9091"
	ln := startLeaseNode(t, "--debug-addr", debug, "--log-level", "debug")
	h, p, env := ln.h, ln.p, ln.env
	first := envSubnet(t, env, -1, p)

	ln.usurp(t, first)
	second := envSubnet(t, env, first, p)

	// The TUN carries the new VTEP address only, and the route.
	nh := h.A.Handle()
	var addrs []netip.Prefix
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs = nil
		if l, err := nh.LinkByName("vxtun0"); err == nil {
			as, err := nh.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range as {
				pf, _ := netip.AddrFromSlice(a.IP.To4())
				ones, _ := a.Mask.Size()
				addrs = append(addrs, netip.PrefixFrom(pf, ones))
			}
		}
		if len(addrs) == 1 && addrs[0] == netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/32", second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vxtun0 addresses: got %v, want only 198.19.%d.0/32", addrs, second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		m := metrics(t, h.A, debug)
		if m["vxtun_dataplane_restarts_total"] == 1 && m["vxtun_peers"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the move: restarts %v, peers %v; want 1 and 1 (the usurper)",
				m["vxtun_dataplane_restarts_total"], m["vxtun_peers"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := nettest.WaitExit(t, p, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	if _, err := nh.LinkByName("vxtun0"); err == nil {
		t.Errorf("vxtun0 still exists after SIGTERM")
	}
}

// TestLeaseMovedNetConfChanged: a lease lost and taken again under a
// changed network config (here a smaller Network) is not applied to the
// running dataplane, which was set up for the old one: vxtun says so,
// exits 1 and removes its TUN device, so that a restart reads the new
// config.
func TestLeaseMovedNetConfChanged(t *testing.T) {
	ln := startLeaseNode(t)
	h, p := ln.h, ln.p
	first := envSubnet(t, ln.env, -1, p)

	etcdtest.Put(t, ln.cli, "/coreos.com/network/config", strings.Replace(leaseNetConf, "/16", "/17", 1))
	ln.usurp(t, first)
	if code := nettest.WaitExit(t, p, 20*time.Second); code != 1 {
		t.Fatalf("exit code after the config changed: got %d, want 1\n%s", code, p.Output())
	}
	if out := p.Output(); !strings.Contains(out, "network config in etcd changed") {
		t.Errorf("no error line about the changed config:\n%s", out)
	}
	if _, err := h.A.Handle().LinkByName("vxtun0"); err == nil {
		t.Errorf("vxtun0 still exists after the exit")
	}
}
