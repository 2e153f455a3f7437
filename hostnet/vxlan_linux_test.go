package hostnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

// vxlanNode is a namespace with an underlay link ul0 (198.18.0.1/24).
func vxlanNode(t *testing.T, prefix string) *nettest.NS {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "bridge")
	ns := nettest.NewNS(t, prefix)
	nettest.Veth(t, ns, "ul0", "198.18.0.1/24", ns, "ulp", "")
	return ns
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// ipJSON runs argv (ip -j ... or bridge -j ...) in ns and decodes its
// output.
func ipJSON(t *testing.T, ns *nettest.NS, argv ...string) []map[string]any {
	t.Helper()
	out := ns.Run(argv...)
	var v []map[string]any
	if strings.TrimSpace(out) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: %v: %q", strings.Join(argv, " "), err, out)
	}
	return v
}

// vxlanState is what the kernel reports about the vxlan device dev, in
// iproute2's words, one sorted line per fact: the link's kind, VNI,
// local, underlay link, port, learning, GBP, MTU, address, up; its
// addresses; neighbour entries, fdb entries and routes.
func vxlanState(t *testing.T, ns *nettest.NS, dev string) []string {
	t.Helper()
	var out []string
	links := ipJSON(t, ns, "ip", "-d", "-j", "link", "show", "dev", dev)
	if len(links) != 1 {
		t.Fatalf("ip link show %s: got %d links, want 1", dev, len(links))
	}
	l := links[0]
	info, _ := l["linkinfo"].(map[string]any)
	data, _ := info["info_data"].(map[string]any)
	flags := fmt.Sprint(l["flags"])
	out = append(out,
		fmt.Sprintf("link kind %v id %v local %v dev %v port %v learning %v gbp %v", info["info_kind"], data["id"],
			data["local"], data["link"], data["port"], data["learning"], data["gbp"] != nil),
		fmt.Sprintf("link mtu %v address %v up %v", l["mtu"], l["address"], strings.Contains(flags, "UP")))
	for _, a := range ipJSON(t, ns, "ip", "-j", "-4", "addr", "show", "dev", dev) {
		ai, _ := a["addr_info"].([]any)
		for _, x := range ai {
			m := x.(map[string]any)
			out = append(out, fmt.Sprintf("addr %v/%v", m["local"], m["prefixlen"]))
		}
	}
	for _, n := range ipJSON(t, ns, "ip", "-j", "-4", "neigh", "show", "dev", dev) {
		out = append(out, fmt.Sprintf("neigh %v lladdr %v %v", n["dst"], n["lladdr"], n["state"]))
	}
	for _, f := range ipJSON(t, ns, "bridge", "-j", "fdb", "show", "dev", dev) {
		out = append(out, fmt.Sprintf("fdb %v dst %v %v %v", f["mac"], f["dst"], f["flags"], f["state"]))
	}
	for _, r := range ipJSON(t, ns, "ip", "-j", "-4", "route", "show", "dev", dev) {
		out = append(out, fmt.Sprintf("route %v via %v %v", r["dst"], r["gateway"], r["flags"]))
	}
	slices.Sort(out)
	return out
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "\n  + %s", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "\n  - %s", w)
		}
	}
	return b.String()
}

var (
	macA = mustMAC("0e:76:78:00:00:01")
	macB = mustMAC("0e:76:78:00:00:02")
	macC = mustMAC("0e:76:78:00:00:03")
)

func peerOf(n int, mac net.HardwareAddr) VXLANPeer {
	return VXLANPeer{PublicIP: nettest.UnderlayAddr(n), MAC: mac, Subnets: []netip.Prefix{nettest.NodeSubnet(n)}}
}

// TestVXLANLikeFlannel programs a vxlan device through the Host and
// another with flannelvxlan's ip(8)/bridge(8) commands (flanneld's
// layout), in two namespaces with the same address plan, and compares
// what the kernel reports about both, for several peer sets.
func TestVXLANLikeFlannel(t *testing.T) {
	vx, ref := vxlanNode(t, "hvx"), vxlanNode(t, "href")
	own := nettest.NodeSubnet(1)
	for _, gbp := range []bool{false, true} {
		t.Run(fmt.Sprintf("gbp=%v", gbp), func(t *testing.T) {
			h := New()
			d := VXLAN{Name: "flannel.1", VNI: 1, Local: nettest.UnderlayAddr(1), Dev: "ul0", Port: 8472, MAC: macA,
				MTU: 1450, GBP: gbp, Addrs: []netip.Prefix{netip.PrefixFrom(own.Addr(), 32)}}
			if err := vx.Do(func() error { return h.AddVXLAN(d) }); err != nil {
				t.Fatal(err)
			}
			fd := flannelvxlan.Device{Local: d.Local, MAC: macA, Subnet: own, MTU: 1450}
			if gbp {
				fd.Extra = []string{"gbp"}
			}
			_, _ = ref.Try("ip", "link", "del", "flannel.1") // from the previous subtest, if any
			steps := []struct {
				name  string
				peers []VXLANPeer
			}{
				{"none", nil},
				{"two", []VXLANPeer{peerOf(2, macB), peerOf(3, macC)}},
				{"one gone, one moved", []VXLANPeer{{PublicIP: nettest.UnderlayAddr(4), MAC: macC, Subnets: []netip.Prefix{nettest.NodeSubnet(3)}}}},
				{"new MAC and a second subnet", []VXLANPeer{{PublicIP: nettest.UnderlayAddr(4), MAC: macB,
					Subnets: []netip.Prefix{nettest.NodeSubnet(3), nettest.NodeSubnet(5)}}}},
				{"empty again", nil},
			}
			for i, s := range steps {
				if err := vx.Do(func() error { return h.SetVXLANPeers("flannel.1", s.peers) }); err != nil {
					t.Fatalf("step %q: %v", s.name, err)
				}
				// The reference: flanneld's commands from scratch.
				if i > 0 {
					ref.Run("ip", "link", "del", "flannel.1")
				}
				var rs []flannelvxlan.Remote
				for _, p := range s.peers {
					for _, sn := range p.Subnets {
						rs = append(rs, flannelvxlan.Remote{Subnet: sn, PublicIP: p.PublicIP, VtepMAC: p.MAC})
					}
				}
				for _, c := range fd.Commands(rs...) {
					ref.Run(c...)
				}
				got, want := vxlanState(t, vx, "flannel.1"), vxlanState(t, ref, "flannel.1")
				if !slices.Equal(got, want) {
					t.Fatalf("step %q: got (+) / want as flannel programs it (-):%s", s.name, diffLines(got, want))
				}
			}
			if err := vx.Do(h.Close); err != nil {
				t.Fatal(err)
			}
			if _, err := vx.Try("ip", "link", "show", "flannel.1"); err == nil {
				t.Fatal("flannel.1 still exists after Close")
			}
		})
	}
}

// flannelDevice makes flannel.1 through a Host in a new vxlanNode (closed
// in cleanup) and returns the namespace and a function setting its peers.
func flannelDevice(t *testing.T, prefix string) (*nettest.NS, func(...VXLANPeer)) {
	t.Helper()
	ns := vxlanNode(t, prefix)
	h := New()
	d := VXLAN{Name: "flannel.1", VNI: 1, Local: nettest.UnderlayAddr(1), Dev: "ul0", Port: 8472, MAC: macA, MTU: 1450}
	if err := ns.Do(func() error { return h.AddVXLAN(d) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Do(h.Close) })
	return ns, func(peers ...VXLANPeer) {
		t.Helper()
		if err := ns.Do(func() error { return h.SetVXLANPeers("flannel.1", peers) }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVXLANKeepsUnchanged checks that SetVXLANPeers leaves entries that
// are already right alone: the neighbour entry of a peer that stays keeps
// its age ("updated", in seconds) across an update that adds a peer.
func TestVXLANKeepsUnchanged(t *testing.T) {
	ns, set := flannelDevice(t, "hvk")
	age := func(dst string) float64 {
		t.Helper()
		for _, n := range ipJSON(t, ns, "ip", "-s", "-j", "neigh", "show", "dev", "flannel.1") {
			if n["dst"] == dst {
				a, _ := n["updated"].(float64)
				return a
			}
		}
		t.Fatalf("no neighbour %s", dst)
		return 0
	}
	set(peerOf(2, macB))
	time.Sleep(1500 * time.Millisecond)
	set(peerOf(2, macB), peerOf(3, macC))
	if got := age("198.19.2.0"); got < 1 {
		t.Errorf("neighbour 198.19.2.0 updated: got %vs ago, want ≥ 1s (left alone)", got)
	}
	if got := age("198.19.3.0"); got >= 1 {
		t.Errorf("neighbour 198.19.3.0 updated: got %vs ago, want just now", got)
	}
}

// TestVXLANReplacesLeftover: a vxlan device of the name (left by a crash)
// is replaced, with its entries; a link of another type is refused.
func TestVXLANReplacesLeftover(t *testing.T) {
	ns := vxlanNode(t, "hvl")
	// A device left behind (as by a crash), with an fdb entry.
	ns.Run("ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472", "local", "198.18.0.1", "nolearning")
	ns.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "flannel.1", "dst", "198.18.0.9")
	h := New()
	d := VXLAN{Name: "flannel.1", VNI: 1, Local: nettest.UnderlayAddr(1), Dev: "ul0", Port: 8472, MAC: macA, MTU: 1450}
	if err := ns.Do(func() error { return h.AddVXLAN(d) }); err != nil {
		t.Fatal(err)
	}
	if fdb := ns.Run("bridge", "fdb", "show", "dev", "flannel.1"); strings.Contains(fdb, "198.18.0.9") {
		t.Errorf("fdb of the replaced device: got %q, want the old entry gone", fdb)
	}
	if err := ns.Do(h.Close); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Try("ip", "link", "show", "flannel.1"); err == nil {
		t.Fatalf("flannel.1 still there after Close: %s", out)
	}

	// A link of another type with the name is not deleted.
	nettest.Veth(t, ns, "flannel.1", "", ns, "other0", "")
	h2 := New()
	err := ns.Do(func() error { return h2.AddVXLAN(d) })
	if !errors.Is(err, ErrLinkExists) {
		t.Fatalf("AddVXLAN over a veth: got %v, want ErrLinkExists", err)
	}
	if out := ns.Run("ip", "-d", "link", "show", "flannel.1"); !strings.Contains(out, "veth") {
		t.Fatalf("the veth flannel.1 was changed: %s", out)
	}
}

// TestVXLANPortInUse is the kernel's own refusal: a UDP socket holding
// the port on one address keeps the device (which binds the wildcard)
// from coming up. AddVXLAN then leaves nothing behind.
func TestVXLANPortInUse(t *testing.T) {
	ns := vxlanNode(t, "hvp")
	var fd int
	if err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 8472, Addr: [4]byte{127, 0, 0, 1}})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	h := New()
	d := VXLAN{Name: "flannel.1", VNI: 1, Local: nettest.UnderlayAddr(1), Dev: "ul0", Port: 8472, MAC: macA, MTU: 1450}
	err := ns.Do(func() error { return h.AddVXLAN(d) })
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("AddVXLAN with port 8472 bound: got %v, want EADDRINUSE", err)
	}
	if _, err := ns.Try("ip", "link", "show", "flannel.1"); err == nil {
		t.Fatal("flannel.1 left behind after the failed AddVXLAN")
	}
	if got := h.Changes(); len(got) != 0 {
		t.Fatalf("changes after the failed AddVXLAN: got %q, want none", got)
	}
}

func TestVXLANStats(t *testing.T) {
	ns := vxlanNode(t, "hvs")
	h := New()
	d := VXLAN{Name: "flannel.1", VNI: 1, Local: nettest.UnderlayAddr(1), Dev: "ul0", Port: 8472, MAC: macA, MTU: 1450,
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/32")}, DisableIPv6: true}
	if err := ns.Do(func() error { return h.AddVXLAN(d) }); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Do(h.Close) }()
	if err := ns.Do(func() error { return h.SetVXLANPeers("flannel.1", []VXLANPeer{peerOf(2, macB)}) }); err != nil {
		t.Fatal(err)
	}
	// Three pings into the tunnel: no answer (there is no node 2), but
	// three frames sent.
	_, _ = ns.Try("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "198.19.2.1")
	var s LinkStats
	if err := ns.Do(func() error {
		var err error
		s, err = h.LinkStats("flannel.1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The device counts the inner IP packets (84 bytes: 20 IP + 8 ICMP + 56).
	if s.TxPackets != 3 || s.TxBytes != 3*84 {
		t.Fatalf("tx: got %d packets %d bytes, want 3 packets %d bytes", s.TxPackets, s.TxBytes, 3*84)
	}
	if got := ns.Run("cat", "/proc/sys/net/ipv6/conf/flannel.1/disable_ipv6"); strings.TrimSpace(got) != "1" {
		t.Errorf("disable_ipv6: got %q, want 1", got)
	}
}

// TestVXLANDiffAndFullSync: after the first SetVXLANPeers only the
// differences are programmed, trusting what was applied; an entry removed
// behind vxtun's back is put back by the next full sync (vxlanFullSync
// after the last one), as flanneld's own resync would.
func TestVXLANDiffAndFullSync(t *testing.T) {
	ns, set := flannelDevice(t, "hvd")
	hasNeigh := func() bool {
		return strings.Contains(ns.Run("ip", "neigh", "show", "dev", "flannel.1"), "198.19.2.0")
	}
	set(peerOf(2, macB))
	ns.Run("ip", "neigh", "del", "198.19.2.0", "dev", "flannel.1")
	set(peerOf(2, macB), peerOf(3, macC)) // a diff: peer 3 added, peer 2 trusted
	if hasNeigh() {
		t.Fatal("the removed neighbour came back without a full sync: was the diff path taken?")
	}
	if !strings.Contains(ns.Run("ip", "neigh", "show", "dev", "flannel.1"), "198.19.3.0") {
		t.Fatal("peer 3's neighbour was not added by the diff")
	}
	old := vxlanFullSync
	vxlanFullSync = 0
	defer func() { vxlanFullSync = old }()
	set(peerOf(2, macB), peerOf(3, macC))
	if !hasNeigh() {
		t.Error("a full sync did not put the removed neighbour 198.19.2.0 back")
	}
}
