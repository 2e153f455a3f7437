package main

// End-to-end tests of the kernel dataplane (--dataplane kernel) and of the
// automatic choice (--dataplane auto), on the pod testbed of
// pods_linux_test.go: pods behind cni0 on every node, nodes on a bridged
// veth underlay.

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/nettest"
)

const kernelXferSize = 16 << 20 // bytes per TCP transfer

// startPodVxtunDP starts vxtun as node i with --dataplane dp and the
// other nodes as static peers, and waits for its subnet.env.
func startPodVxtunDP(t *testing.T, ns *nettest.NS, i int, dp string, peers ...int) *podNode {
	t.Helper()
	tn := &testNode{ConfigFiles: nettest.FilesIn(t.TempDir()), ns: ns, index: i, debug: "127.0.0.1:9090"}
	me := nettest.PlanNode(i)
	err := tn.Write(nettest.NetConf{Network: nettest.OverlayNetwork, Backend: nettest.Backend{Type: "vxlan"}},
		nettest.NodeConf{PublicIP: me.Underlay.String(), Iface: nettest.UnderlayIface, Subnet: me.Subnet.String(),
			VtepMAC: me.VtepMAC.String(), SubnetFile: tn.SubnetEnv, IPMasq: true, Workers: 2},
		peersOf(peers...))
	if err != nil {
		t.Fatal(err)
	}
	return runPodVxtun(t, ns, i, tn, "--dataplane", dp)
}

// overlayState is what node ns has of the overlay, in iproute2's words:
// flannel.1's neighbour and fdb entries and the routes through it.
func overlayState(t *testing.T, ns *nettest.NS) []string {
	t.Helper()
	var out []string
	add := func(prefix, text string) {
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if l = strings.Join(strings.Fields(l), " "); l != "" {
				out = append(out, prefix+l)
			}
		}
	}
	add("neigh ", ns.Run("ip", "-4", "neigh", "show", "dev", "flannel.1", "nud", "permanent"))
	add("fdb ", ns.Run("bridge", "fdb", "show", "dev", "flannel.1"))
	add("route ", ns.Run("ip", "-4", "route", "show", "dev", "flannel.1"))
	slices.Sort(out)
	return out
}

// overlayWant is overlayState for a node whose peers are nodes.
func overlayWant(nodes ...int) []string {
	var out []string
	for _, i := range nodes {
		n := nettest.PlanNode(i)
		out = append(out,
			fmt.Sprintf("neigh %s lladdr %s PERMANENT", n.VtepAddr(), n.VtepMAC),
			fmt.Sprintf("fdb %s dst %s self permanent", n.VtepMAC, n.Underlay),
			fmt.Sprintf("route %s via %s onlink", n.Subnet, n.VtepAddr()))
	}
	slices.Sort(out)
	return out
}

// waitOverlay waits until ns's overlay state is want.
func waitOverlay(t *testing.T, n *podNode, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := overlayState(t, n.ns)
		if slices.Equal(got, want) {
			return
		}
		if ex, err := n.p.Exited(); ex {
			t.Fatalf("vxtun exited (%v):\n%s", err, n.p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: overlay state: got\n  %s\nwant\n  %s", n.name(), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nothingLeft fails t if node ns still has anything of vxtun: its
// devices, routes into the overlay network, its nftables table.
func nothingLeft(t *testing.T, ns *nettest.NS) {
	t.Helper()
	for _, dev := range []string{"flannel.1", "vxtun0"} {
		if out, err := ns.Try("ip", "link", "show", dev); err == nil {
			t.Errorf("after shutdown: %s still exists: %s", dev, out)
		}
	}
	for _, l := range strings.Split(ns.Run("ip", "-4", "route", "show"), "\n") {
		if strings.HasPrefix(l, "198.19.") && !strings.Contains(l, "dev cni0") {
			t.Errorf("after shutdown: route left: %s", l)
		}
	}
	if _, err := ns.Try("nft", "list", "table", "inet", "vxtun"); err == nil {
		t.Error("after shutdown: nftables table inet vxtun still exists")
	}
}

// pingBoth pings from a to b and back.
func pingBoth(t *testing.T, a, b *nettest.Pod, nodes ...*podNode) {
	t.Helper()
	waitPodPing(t, a, b, nodes...)
	waitPodPing(t, b, a, nodes...)
}

// TestKernelDataplaneInterop: node1 runs vxtun with the kernel dataplane,
// node2 vxtun with the userspace dataplane, node3 the kernel vxlan device
// as flanneld programs it. Pods of node1 reach those of node2 and node3
// (ping, TCP with a content check, both ways); node1's flannel.1 has
// exactly flanneld's entries for its peers, follows peer changes, and
// nothing of vxtun is left after SIGTERM.
func TestKernelDataplaneInterop(t *testing.T) {
	nss := podUnderlay(t, 3)
	n1 := startPodVxtunDP(t, nss[0], 1, "kernel", 2, 3)
	n2 := startPodVxtunDP(t, nss[1], 2, "userspace", 1, 3)
	n3 := startPodKernel(t, nss[2], 3, 1, 2)
	for _, n := range []*podNode{n1, n2, n3} {
		n.addPods(t)
	}
	if out, err := n1.ns.Try("ip", "link", "show", "vxtun0"); err == nil {
		t.Fatalf("kernel dataplane: a TUN vxtun0 exists: %s", out)
	}
	dev := n1.ns.Run("ip", "-d", "link", "show", "flannel.1")
	for _, want := range []string{"vxlan id 1 local 198.18.0.1 dev ul0", "dstport 8472", "nolearning", "mtu 1450", "link/ether " + nettest.NodeMAC(1).String(), ",UP,"} {
		if !strings.Contains(dev, want) {
			t.Errorf("flannel.1: want %q in\n%s", want, dev)
		}
	}
	if addr := n1.ns.Run("ip", "-4", "-o", "addr", "show", "dev", "flannel.1"); !strings.Contains(addr, "inet 198.19.1.0/32") {
		t.Errorf("flannel.1 address: got %q, want 198.19.1.0/32", addr)
	}
	waitOverlay(t, n1, overlayWant(2, 3))

	k := n1.pods[0]
	port := 5401
	for _, other := range []*podNode{n2, n3} {
		t.Run("with-"+other.name(), func(t *testing.T) {
			p := other.pods[0]
			pingBoth(t, k, p, n1, n2)
			podTransfer(t, k, p, port, kernelXferSize, n1, other)
			podTransfer(t, p, k, port+1, kernelXferSize, n1, other)
			port += 2
		})
	}
	// The device's counters: it sent and received at least the 2 × 16 MiB
	// of payload (in GSO super-packets, so packets are few).
	m := metrics(t, n1.ns, n1.tn.debug)
	if tx, rx := m["vxtun_tx_bytes_total"], m["vxtun_rx_bytes_total"]; tx < 2*kernelXferSize || rx < 2*kernelXferSize {
		t.Errorf("kernel dataplane counters: tx %v rx %v bytes, want ≥ %d each", tx, rx, 2*kernelXferSize)
	}
	if d := m["vxtun_drops_total/tx_errors"] + m["vxtun_drops_total/rx_errors"]; d != 0 {
		t.Errorf("kernel dataplane: %v tx/rx errors, want 0", d)
	}

	t.Run("peer-changes", func(t *testing.T) {
		n1.tn.writePeers(t, 2)
		waitOverlay(t, n1, overlayWant(2))
		if out, err := k.Try("ping", "-n", "-c", "1", "-W", "1", n3.pods[0].IP()); err == nil {
			t.Errorf("ping node3's pod after node3 was removed: got a reply, want none\n%s", out)
		}
		n1.tn.writePeers(t, 2, 3, 4)
		waitOverlay(t, n1, overlayWant(2, 3, 4))
		pingBoth(t, k, n3.pods[0], n1)
		n1.tn.writePeers(t, 2, 3)
		waitOverlay(t, n1, overlayWant(2, 3))
	})

	if err := n1.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := nettest.WaitExit(t, n1.p, 15*time.Second); code != 0 {
		t.Fatalf("vxtun exit code after SIGTERM: got %d, want 0:\n%s", code, n1.p.Output())
	}
	nothingLeft(t, n1.ns)
}

// TestAutoFallsBackToUserspace provokes a real refusal: on node1 a UDP
// socket holds port 8472 on 127.0.0.1, so the kernel's vxlan device (whose
// socket binds the wildcard address) cannot come up (EADDRINUSE), while
// vxtun's own sockets, bound to 198.18.0.1, can. --dataplane auto then runs
// the userspace dataplane on node1 and says why; on node2, where nothing
// holds the port, auto picks the kernel device. Pods cross both ways.
func TestAutoFallsBackToUserspace(t *testing.T) {
	nss := podUnderlay(t, 2)
	var fd int
	if err := nss[0].Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 8472, Addr: [4]byte{127, 0, 0, 1}})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// The refusal is the kernel's: bringing a vxlan device up on port 8472
	// fails in node1 now.
	nss[0].Run("ip", "link", "add", "probe0", "type", "vxlan", "id", "9", "dstport", "8472", "nolearning")
	if out, err := nss[0].Try("ip", "link", "set", "probe0", "up"); err == nil || !strings.Contains(out, "Address already in use") {
		t.Fatalf("vxlan device up with port 8472 held: got %v %q, want the kernel's EADDRINUSE", err, out)
	}
	nss[0].Run("ip", "link", "del", "probe0")

	n1 := startPodVxtunDP(t, nss[0], 1, "auto", 2)
	n2 := startPodVxtunDP(t, nss[1], 2, "auto", 1)
	n1.addPods(t)
	n2.addPods(t)
	a, b := n1.pods[0], n2.pods[0]
	pingBoth(t, a, b, n1, n2)

	choice := func(n *podNode) string {
		for _, l := range strings.Split(n.p.Output(), "\n") {
			if strings.Contains(l, "msg=\"dataplane: ") {
				return l
			}
		}
		t.Fatalf("%s: no \"dataplane: \" line in its log:\n%s", n.name(), n.p.Output())
		return ""
	}
	if l := choice(n1); !strings.Contains(l, "dataplane: userspace") || !strings.Contains(l, "address already in use") {
		t.Errorf("node1 (port held): got %q, want the userspace choice and the kernel's refusal", l)
	}
	if l := choice(n2); !strings.Contains(l, "dataplane: kernel") {
		t.Errorf("node2: got %q, want the kernel choice", l)
	}
	if _, err := n1.ns.Try("ip", "link", "show", "vxtun0"); err != nil {
		t.Errorf("node1: no TUN vxtun0: %v", err)
	}
	if out, err := n1.ns.Try("ip", "link", "show", "flannel.1"); err == nil {
		t.Errorf("node1: the refused flannel.1 was left behind: %s", out)
	}
	if _, err := n2.ns.Try("ip", "link", "show", "flannel.1"); err != nil {
		t.Errorf("node2: no flannel.1: %v", err)
	}
	podTransfer(t, a, b, 5501, kernelXferSize, n1, n2)
	podTransfer(t, b, a, 5502, kernelXferSize, n1, n2)
	for _, n := range []*podNode{n1, n2} {
		if err := n.p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := nettest.WaitExit(t, n.p, 15*time.Second); code != 0 {
			t.Fatalf("%s exit code after SIGTERM: got %d, want 0:\n%s", n.name(), code, n.p.Output())
		}
		nothingLeft(t, n.ns)
	}
}
