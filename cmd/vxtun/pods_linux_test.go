package main

// End-to-end tests with pods where clusters have them (issue 13): per node a
// cni0 bridge and two pod namespaces attached by the CNI reference plugins
// with the flannel CNI plugin's configuration (internal/nettest), nodes on a
// bridged veth underlay (198.18.0.0/24, the bridge in a namespace of its
// own), overlay by vxtun or by a kernel vxlan device programmed as flanneld
// does. Pod traffic is forwarded (vxtun0/flannel.1 ↔ cni0), so MTU of
// super-packets and the FORWARD chain matter, unlike the "pod" addresses on
// lo of the other tests.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

const (
	podMTU       = 1450     // FLANNEL_MTU: the 1500 underlay − 50
	podXferSize  = 64 << 20 // bytes per TCP transfer
	podXferLimit = 20 * time.Second
	podXferStall = 5 * time.Second // no progress this long fails the transfer
)

// podNode is one node of a pod testbed.
type podNode struct {
	index     int
	ns        *nettest.NS
	kernel    bool            // kernel vxlan (flannel.1), else vxtun
	tn        *testNode       // vxtun's files
	p         *nettest.Daemon // vxtun
	subnetEnv string
	pods      []*nettest.Pod
}

func (n *podNode) name() string {
	kind := "vxtun"
	if n.kernel {
		kind = "kernel"
	}
	return fmt.Sprintf("node%d(%s)", n.index, kind)
}

// podUnderlay makes a switch namespace with bridge br0 and one namespace
// per node plugged into it, 198.18.0.i/24 on ul0 in node i.
func podUnderlay(t *testing.T, nodes int) []*nettest.NS {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "bridge")
	nettest.RequireCNI(t)
	sw := nettest.NewNS(t, "sw")
	sw.Run("ip", "link", "add", "br0", "type", "bridge")
	sw.Run("ip", "link", "set", "br0", "up")
	var nss []*nettest.NS
	for i := 1; i <= nodes; i++ {
		ns := nettest.NewNS(t, fmt.Sprintf("n%d", i))
		port := fmt.Sprintf("n%d", i)
		nettest.Veth(t, sw, port, "", ns, "ul0", fmt.Sprintf("198.18.0.%d/24", i))
		sw.Run("ip", "link", "set", port, "master", "br0")
		nss = append(nss, ns)
	}
	return nss
}

// startPodVxtun starts vxtun as node i with the other nodes as static
// peers. FLANNEL_IPMASQ=true in its subnet.env (as with flanneld
// --ip-masq, kube-flannel's default), so the bridge plugin does not
// masquerade pod traffic.
func startPodVxtun(t *testing.T, ns *nettest.NS, i int, peers ...int) *podNode {
	t.Helper()
	tn := writeTestNode(t, ns, i, func(nc *nettest.NodeConf) { nc.IPMasq = true }, peers...)
	return runPodVxtun(t, ns, i, tn)
}

// runPodVxtun starts vxtun as node i on the files of tn (with extra
// flags) and waits for its subnet.env: the node is up.
func runPodVxtun(t *testing.T, ns *nettest.NS, i int, tn *testNode, extra ...string) *podNode {
	t.Helper()
	n := &podNode{index: i, ns: ns, tn: tn, subnetEnv: tn.SubnetEnv}
	n.p = startVxtun(t, ns, tn.args(extra...)...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(tn.SubnetEnv); err == nil {
			return n
		}
		if ex, err := n.p.Exited(); ex {
			t.Fatalf("vxtun on node%d exited (%v):\n%s", i, err, n.p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("vxtun on node%d wrote no subnet.env within 15 s:\n%s", i, n.p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startPodKernel programs node i's kernel vxlan device as flanneld does,
// with the other nodes as remotes, and writes its subnet.env as flanneld
// (--ip-masq) would.
func startPodKernel(t *testing.T, ns *nettest.NS, i int, peers ...int) *podNode {
	t.Helper()
	me := nettest.PlanNode(i)
	dev := flannelvxlan.Device{Local: me.Underlay, MAC: me.VtepMAC, Subnet: me.Subnet, MTU: podMTU}
	var remotes []flannelvxlan.Remote
	for _, p := range peers {
		pn := nettest.PlanNode(p)
		remotes = append(remotes, flannelvxlan.Remote{Subnet: pn.Subnet, PublicIP: pn.Underlay, VtepMAC: pn.VtepMAC})
	}
	for _, c := range dev.Commands(remotes...) {
		ns.Run(c...)
	}
	env := filepath.Join(t.TempDir(), "subnet.env")
	if err := config.WriteSubnetEnv(env, config.SubnetEnv{
		Network: netip.MustParsePrefix("198.19.0.0/16"), Subnet: dev.Subnet, MTU: podMTU, IPMasq: true,
	}); err != nil {
		t.Fatal(err)
	}
	return &podNode{index: i, ns: ns, kernel: true, subnetEnv: env}
}

// addPods attaches two pods to the node through CNI and checks each pod's
// MTU against the node's FLANNEL_MTU.
func (n *podNode) addPods(t *testing.T) {
	t.Helper()
	pn := nettest.NodePods(t, n.ns, n.subnetEnv)
	if got := int(pn.Env.MTU); got != podMTU {
		t.Errorf("%s: FLANNEL_MTU: got %d, want %d", n.name(), got, podMTU)
	}
	for k := 0; k < 2; k++ {
		p := pn.NewPod(t, fmt.Sprintf("p%d%c", n.index, 'a'+k))
		l, err := p.Handle().LinkByName(nettest.PodIfName)
		if err != nil {
			t.Fatalf("%s pod %s: %v", n.name(), p.Name, err)
		}
		if got := l.Attrs().MTU; got != int(pn.Env.MTU) {
			t.Errorf("%s pod %s: eth0 MTU: got %d, want FLANNEL_MTU %d", n.name(), p.Name, got, pn.Env.MTU)
		}
		n.pods = append(n.pods, p)
	}
}

// procs returns the vxtun processes among nodes.
func procs(nodes ...*podNode) []*nettest.Daemon {
	var ps []*nettest.Daemon
	for _, n := range nodes {
		if n.p != nil {
			ps = append(ps, n.p)
		}
	}
	return ps
}

// waitPodPing waits until from can ping to.
func waitPodPing(t *testing.T, from, to *nettest.Pod, nodes ...*podNode) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, q := range procs(nodes...) {
			if ex, err := q.Exited(); ex {
				t.Fatalf("vxtun exited (%v):\n%s", err, q.Output())
			}
		}
		out, err := from.Try("ping", "-n", "-c", "1", "-W", "1", to.IP())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %s -> %s: %v\n%s", from.IP(), to.IP(), err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fragFails returns IpFragFails of /proc/net/snmp in ns.
func fragFails(t *testing.T, ns *nettest.NS) int64 {
	t.Helper()
	out := ns.Run("cat", "/proc/net/snmp")
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for k, name := range names {
			if name == "FragFails" && k < len(f) {
				v, err := strconv.ParseInt(f[k], 10, 64)
				if err != nil {
					t.Fatalf("/proc/net/snmp in %s: FragFails %q: %v", ns.Name, f[k], err)
				}
				return v
			}
		}
	}
	t.Fatalf("/proc/net/snmp in %s has no Ip: FragFails:\n%s", ns.Name, out)
	return 0
}

// podTransfer sends size pseudo-random bytes over TCP from pod from to a
// server in pod to, which answers with the SHA-256 of what it got; it
// fails t unless the hash matches. A transfer that makes no progress for
// podXferStall or takes longer than podXferLimit fails with the bytes
// moved and the IpFragFails delta on every node. It returns Gbit/s.
func podTransfer(t *testing.T, from, to *nettest.Pod, port, size int, nodes ...*podNode) float64 {
	t.Helper()
	frag0 := make([]int64, len(nodes))
	for k, n := range nodes {
		frag0[k] = fragFails(t, n.ns)
	}
	var got atomic.Int64
	pair, err := nettest.DialPair(from.NS, to.NS, from.Addr.Addr(), to.Addr.Addr(), port, func(c net.Conn) error {
		h := sha256.New()
		buf := make([]byte, 256<<10)
		for {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			got.Add(int64(k))
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("server read: %w", err)
			}
		}
		_, err := c.Write(h.Sum(nil))
		return err
	})
	if err != nil {
		t.Fatalf("%s -> %s: %v", from.IP(), to.IP(), err)
	}
	defer pair.Close()
	c := pair.Client

	// Watchdog: a stall closes the connection, so the client returns.
	stalled := make(chan string, 1)
	done := make(chan struct{})
	defer close(done)
	start := time.Now()
	go func() {
		last, lastAt := int64(0), time.Now()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				g := got.Load()
				if g != last {
					last, lastAt = g, now
				}
				why := ""
				switch {
				case now.Sub(lastAt) > podXferStall:
					why = fmt.Sprintf("no progress for %v", podXferStall)
				case now.Sub(start) > podXferLimit:
					why = fmt.Sprintf("not done within %v", podXferLimit)
				}
				if why != "" {
					stalled <- why
					c.Close()
					return
				}
			}
		}
	}()

	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{byte(port), byte(port >> 8)})
	buf := make([]byte, 256<<10)
	var werr error
	for sent := 0; sent < size && werr == nil; {
		n := min(len(buf), size-sent)
		_, _ = rng.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := c.Write(buf[:n]); err != nil {
			werr = fmt.Errorf("client write after %d bytes: %w", sent, err)
		}
		sent += n
	}
	sum := make([]byte, sha256.Size)
	if werr == nil {
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			werr = fmt.Errorf("close write: %w", err)
		} else if _, err := io.ReadFull(c, sum); err != nil {
			werr = fmt.Errorf("read the server's hash: %w", err)
		}
	}
	elapsed := time.Since(start)
	if werr != nil {
		why := ""
		select {
		case why = <-stalled:
		default:
		}
		var frag []string
		for k, n := range nodes {
			frag = append(frag, fmt.Sprintf("%s %+d", n.name(), fragFails(t, n.ns)-frag0[k]))
		}
		t.Fatalf("TCP %s -> %s: %s: %v; server received %d of %d bytes in %.1f s; IpFragFails delta: %s",
			from.IP(), to.IP(), why, werr, got.Load(), size, elapsed.Seconds(), strings.Join(frag, ", "))
	}
	if err := <-pair.Served; err != nil {
		t.Fatalf("TCP %s -> %s: %v", from.IP(), to.IP(), err)
	}
	if want := h.Sum(nil); !bytes.Equal(sum, want) {
		t.Fatalf("TCP %s -> %s: server SHA-256 %x, want %x (data corrupted)", from.IP(), to.IP(), sum, want)
	}
	gbps := float64(size) * 8 / elapsed.Seconds() / 1e9
	t.Logf("TCP %s -> %s: %d MiB in %.2f s = %.2f Gbit/s, SHA-256 ok", from.IP(), to.IP(), size>>20, elapsed.Seconds(), gbps)
	return gbps
}

// TestPodsVxtun: two vxtun nodes with two pods each. Pods reach each other
// on the same node and across nodes (ping, 64 MiB TCP both ways with a
// content check), pod MTU is FLANNEL_MTU, and a 1400-byte DF ping crosses.
func TestPodsVxtun(t *testing.T) {
	nss := podUnderlay(t, 2)
	n1 := startPodVxtun(t, nss[0], 1, 2)
	n2 := startPodVxtun(t, nss[1], 2, 1)
	n1.addPods(t)
	n2.addPods(t)
	a, b, c := n1.pods[0], n1.pods[1], n2.pods[0]
	waitPodPing(t, a, c, n1, n2)
	waitPodPing(t, c, a, n1, n2)

	t.Run("same-node", func(t *testing.T) {
		a.Run("ping", "-n", "-c", "1", "-W", "2", b.IP())
		podTransfer(t, a, b, 5101, podXferSize, n1)
		podTransfer(t, b, a, 5102, podXferSize, n1)
	})
	t.Run("cross-node", func(t *testing.T) {
		podTransfer(t, a, c, 5103, podXferSize, n1, n2)
		podTransfer(t, c, a, 5104, podXferSize, n1, n2)
	})
	t.Run("df-1400", func(t *testing.T) {
		// 1372 bytes of ICMP payload + 8 + 20 = a 1400-byte IP packet with DF:
		// it fits FLANNEL_MTU 1450, so it must be answered, never lost.
		out, _ := a.Try("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1372", c.IP())
		switch {
		case strings.Contains(out, " 3 received"):
		case strings.Contains(out, "Frag needed"):
			t.Logf("1400-byte DF ping %s -> %s got frag-needed:\n%s", a.IP(), c.IP(), out)
		default:
			t.Errorf("1400-byte DF ping %s -> %s: got %q, want 3 replies (it fits FLANNEL_MTU %d) or frag-needed, never silent loss",
				a.IP(), c.IP(), out, podMTU)
		}
	})
}

// TestPodsKernelVxlan: a vxtun node and a flanneld-style kernel vxlan node
// with pods behind both; 64 MiB TCP both ways with a content check, with
// the kernel node's underlay veth tunnel offloads on (the default: it hands
// vxtun tunnelled-GSO super-packets) and off.
func TestPodsKernelVxlan(t *testing.T) {
	nettest.RequireCommand(t, "ethtool")
	nss := podUnderlay(t, 2)
	v := startPodVxtun(t, nss[0], 1, 2)
	k := startPodKernel(t, nss[1], 2, 1)
	v.addPods(t)
	k.addPods(t)
	vp, kp := v.pods[0], k.pods[0]
	waitPodPing(t, vp, kp, v, k)
	waitPodPing(t, kp, vp, v, k)
	// A full-size DF packet crosses both ways.
	for _, p := range [][2]*nettest.Pod{{vp, kp}, {kp, vp}} {
		if out, err := p[0].Try("ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", strconv.Itoa(podMTU-28), p[1].IP()); err != nil {
			t.Errorf("%d-byte DF ping %s -> %s: %v\n%s", podMTU, p[0].IP(), p[1].IP(), err, out)
		}
	}

	port := 5201
	for _, offload := range []string{"on", "off"} {
		t.Run("offload-"+offload, func(t *testing.T) {
			k.ns.Run("ethtool", "-K", "ul0", "tx-udp_tnl-segmentation", offload, "tx-udp_tnl-csum-segmentation", offload)
			feat := k.ns.Run("ethtool", "-k", "ul0")
			if want := "tx-udp_tnl-segmentation: " + offload; !strings.Contains(feat, want) {
				t.Fatalf("kernel node ul0: want %q in ethtool -k:\n%s", want, feat)
			}
			t.Run("kernel-to-vxtun", func(t *testing.T) {
				port++
				before := metrics(t, v.ns, v.tn.debug)["vxtun_tun_oversize_gso_total"]
				podTransfer(t, kp, vp, port, podXferSize, v, k)
				// With tunnel offloads the kernel sends inner super-packets
				// whole: vxtun must have written them as GSO (and counted
				// them); without, every inner packet fits the MTU.
				m := metrics(t, v.ns, v.tn.debug)
				got := m["vxtun_tun_oversize_gso_total"] - before
				if (offload == "on") != (got > 0) {
					t.Errorf("vxtun_tun_oversize_gso_total rose by %v with tunnel offloads %s", got, offload)
				}
				if d := m["vxtun_drops_total/oversize"]; d != 0 {
					t.Errorf("vxtun_drops_total{reason=oversize}: got %v, want 0", d)
				}
			})
			t.Run("vxtun-to-kernel", func(t *testing.T) {
				port++
				podTransfer(t, vp, kp, port, podXferSize, v, k)
			})
		})
	}
}

// TestPodsForwardDrop: with the FORWARD policy at DROP on both vxtun nodes
// (as Docker leaves hosts; iptables, nft backend), same-node and cross-node
// pod traffic passes, and after vxtun shuts down none of its rules remain.
func TestPodsForwardDrop(t *testing.T) {
	nettest.RequireCommand(t, "iptables", "nft")
	nss := podUnderlay(t, 2)
	t.Cleanup(func() {
		if t.Failed() {
			for _, ns := range nss {
				out, _ := ns.Try("iptables", "-L", "FORWARD", "-v", "-n", "-x")
				t.Logf("%s: iptables -L FORWARD -v -n -x:\n%s", ns.Name, out)
			}
		}
	})
	for _, ns := range nss {
		ns.Run("iptables", "-P", "FORWARD", "DROP")
		if got := strings.TrimSpace(ns.Run("cat", "/proc/sys/net/bridge/bridge-nf-call-iptables")); got != "1" {
			t.Fatalf("%s: bridge-nf-call-iptables: got %s, want 1 (bridged pod traffic meets FORWARD, as on Kubernetes nodes)", ns.Name, got)
		}
	}
	n1 := startPodVxtun(t, nss[0], 1, 2)
	n2 := startPodVxtun(t, nss[1], 2, 1)
	n1.addPods(t)
	n2.addPods(t)
	a, b, c := n1.pods[0], n1.pods[1], n2.pods[0]
	t.Run("same-node", func(t *testing.T) {
		waitPodPing(t, a, b, n1)
		podTransfer(t, a, b, 5301, 8<<20, n1)
	})
	t.Run("cross-node", func(t *testing.T) {
		waitPodPing(t, a, c, n1, n2)
		waitPodPing(t, c, a, n1, n2)
		podTransfer(t, a, c, 5302, 8<<20, n1, n2)
		podTransfer(t, c, a, 5303, 8<<20, n1, n2)
	})
	for _, n := range []*podNode{n1, n2} {
		if err := n.p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := nettest.WaitExit(t, n.p, 10*time.Second); code != 0 {
			t.Errorf("%s: exit code after SIGTERM: got %d, want 0", n.name(), code)
		}
		rules := n.ns.Run("nft", "list", "ruleset")
		if strings.Contains(strings.ToLower(rules), "vxtun") {
			t.Errorf("%s: vxtun's nftables rules remain after shutdown:\n%s", n.name(), rules)
		}
		if pol := n.ns.Run("iptables", "-S", "FORWARD"); !strings.Contains(pol, "-P FORWARD DROP") {
			t.Errorf("%s: FORWARD policy after shutdown: got %q, want DROP (vxtun must not change it)", n.name(), pol)
		}
	}
}
