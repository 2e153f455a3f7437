package main

// End-to-end test of --ip-masq (issue 10): pods behind cni0 on two vxtun
// nodes and a "world" host on the underlay (198.18.0.9, no node, no route
// to the pod network), as in a cluster whose pods reach the outside.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// worldAddr is the world host's underlay address: in 198.18.0.0/24 and no node's.
var worldAddr = netip.MustParseAddr("198.18.0.9")

// masqUnderlay is podUnderlay plus the world host on the same bridge.
func masqUnderlay(t *testing.T, nodes int) (nss []*nettest.NS, world *nettest.NS) {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "nft")
	nettest.RequireCNI(t)
	sw := nettest.NewNS(t, "sw")
	sw.Run("ip", "link", "add", "br0", "type", "bridge")
	sw.Run("ip", "link", "set", "br0", "up")
	attach := func(prefix, port, addr string) *nettest.NS {
		ns := nettest.NewNS(t, prefix)
		nettest.Veth(t, sw, port, "", ns, "ul0", addr)
		sw.Run("ip", "link", "set", port, "master", "br0")
		return ns
	}
	for i := 1; i <= nodes; i++ {
		nss = append(nss, attach(fmt.Sprintf("n%d", i), fmt.Sprintf("n%d", i), fmt.Sprintf("198.18.0.%d/24", i)))
	}
	return nss, attach("world", "w9", worldAddr.String()+"/24")
}

// tcpSeenFrom sends 1 MiB over TCP from src in from to dst:port in to,
// checks its SHA-256 on the server side, and returns the source address
// the server accepted the connection from.
func tcpSeenFrom(t *testing.T, from, to *nettest.NS, src, dst netip.Addr, port int) netip.Addr {
	t.Helper()
	const size = 1 << 20
	seen := make(chan netip.Addr, 1)
	pair, err := nettest.DialPair(from, to, src, dst, port, func(c net.Conn) error {
		seen <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return fmt.Errorf("server read: %w", err)
		}
		_, err := c.Write(h.Sum(nil))
		return err
	})
	if err != nil {
		t.Fatalf("TCP %s -> %s: %v", src, dst, err)
	}
	defer pair.Close()
	c := pair.Client
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(port)})
	_, _ = rng.Read(buf)
	if _, err := c.Write(buf); err != nil {
		t.Fatalf("TCP %s -> %s: write: %v", src, dst, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("TCP %s -> %s: close write: %v", src, dst, err)
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, sum); err != nil {
		t.Fatalf("TCP %s -> %s: read the server's hash: %v", src, dst, err)
	}
	if want := sha256.Sum256(buf); !bytes.Equal(sum, want[:]) {
		t.Fatalf("TCP %s -> %s: server SHA-256 %x, want %x (data corrupted)", src, dst, sum, want)
	}
	if err := <-pair.Served; err != nil {
		t.Fatalf("TCP %s -> %s: %v", src, dst, err)
	}
	return <-seen
}

// vxtunTable is vxtun's nftables table in ns, without counters ("" when
// there is none).
func vxtunTable(t *testing.T, ns *nettest.NS) string {
	t.Helper()
	out, err := ns.Try("nft", "-s", "list", "table", "inet", "vxtun")
	if err != nil {
		if strings.Contains(out, "No such file") {
			return ""
		}
		t.Fatalf("nft list table inet vxtun in %s: %v\n%s", ns.Name, err, out)
	}
	return out
}

// TestPodsIPMasq: with IPMasq, a pod's ping and TCP reach a world host on
// the underlay from the node's underlay address (the world has no route to
// the pods); pod to pod across nodes keeps the pod addresses, both ways;
// the rules survive a clean restart and a crash without duplicates and go
// at shutdown.
func TestPodsIPMasq(t *testing.T) {
	nss, world := masqUnderlay(t, 2)
	n1 := startPodVxtun(t, nss[0], 1, 2) // IPMasq: true in its node file
	n2 := startPodVxtun(t, nss[1], 2, 1)
	n1.addPods(t)
	n2.addPods(t)
	a, c := n1.pods[0], n2.pods[0]
	waitPodPing(t, a, c, n1, n2)
	node1 := nettest.UnderlayAddr(1)

	checkFlows := func(t *testing.T, port int) {
		t.Helper()
		if out, err := a.Try("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", worldAddr.String()); err != nil {
			t.Errorf("ping pod %s -> world %s: %v\n%s", a.IP(), worldAddr, err, out)
		}
		if got := tcpSeenFrom(t, a.NS, world, a.Addr.Addr(), worldAddr, port); got != node1 {
			t.Errorf("pod %s -> world: the world saw %s, want the node's underlay address %s", a.IP(), got, node1)
		}
		if got := tcpSeenFrom(t, a.NS, c.NS, a.Addr.Addr(), c.Addr.Addr(), port+1); got != a.Addr.Addr() {
			t.Errorf("pod %s -> pod %s across nodes: the server saw %s, want the pod's own address", a.IP(), c.IP(), got)
		}
		if got := tcpSeenFrom(t, c.NS, a.NS, c.Addr.Addr(), a.Addr.Addr(), port+2); got != c.Addr.Addr() {
			t.Errorf("pod %s -> pod %s across nodes: the server saw %s, want the pod's own address", c.IP(), a.IP(), got)
		}
	}
	t.Run("flows", func(t *testing.T) { checkFlows(t, 5401) })

	before := vxtunTable(t, n1.ns)
	for _, want := range []string{"chain postrouting", "masquerade fully-random", "ip saddr 198.19.1.0/24 ip daddr 198.19.0.0/16", "chain forward"} {
		if !strings.Contains(before, want) {
			t.Fatalf("node1: nft list table inet vxtun: got\n%s\nwant a line with %q", before, want)
		}
	}
	parent := t // the restarted daemon lives as long as the test, not the subtest
	restart := func(t *testing.T, sig syscall.Signal) {
		t.Helper()
		if err := n1.p.Signal(sig); err != nil {
			t.Fatal(err)
		}
		code := nettest.WaitExit(t, n1.p, 10*time.Second)
		if sig == syscall.SIGTERM {
			if code != 0 {
				t.Fatalf("exit code after SIGTERM: got %d, want 0", code)
			}
			if got := vxtunTable(t, n1.ns); got != "" {
				t.Fatalf("after a clean shutdown: got table\n%s\nwant none", got)
			}
		} else if got := vxtunTable(t, n1.ns); got != before {
			t.Fatalf("after a crash: got table\n%s\nwant the old rules left as they were\n%s", got, before)
		}
		n1.p = startVxtun(parent, n1.ns, n1.tn.args()...)
		// After a crash the old rules still pass pod traffic: wait for the
		// new daemon to be forwarding (all its rules in place), not a ping.
		waitHealthy(t, n1.ns, n1.tn.debug, n1.p)
		waitPodPing(t, a, c, n1, n2)
		if got := vxtunTable(t, n1.ns); got != before {
			t.Fatalf("after a restart: got table\n%s\nwant it as before\n%s", got, before)
		}
	}
	t.Run("clean-restart", func(t *testing.T) {
		restart(t, syscall.SIGTERM)
		checkFlows(t, 5411)
	})
	t.Run("crash-restart", func(t *testing.T) {
		restart(t, syscall.SIGKILL)
		checkFlows(t, 5421)
	})
	t.Run("shutdown", func(t *testing.T) {
		if err := n1.p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := nettest.WaitExit(t, n1.p, 10*time.Second); code != 0 {
			t.Fatalf("exit code after SIGTERM: got %d, want 0", code)
		}
		if out := n1.ns.Run("nft", "list", "ruleset"); strings.Contains(out, "vxtun") {
			t.Fatalf("after shutdown: got ruleset\n%s\nwant nothing of vxtun's", out)
		}
	})
}
