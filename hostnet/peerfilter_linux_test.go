package hostnet

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/vxtun/vxtun/internal/nettest"
)

// filtered is a server namespace with a UDP socket on port filterPort and
// a client namespace with two IPv4 and two IPv6 source addresses on one
// veth.
type filtered struct {
	srv, cli *nettest.NS
	mu       sync.Mutex
	got      map[netip.Addr]int // datagrams received, by source
}

const filterPort = 8472

var (
	srv4, srv6   = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:2::1")
	peer4, peer6 = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:2::2")
	othr4, othr6 = netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("2001:2::3")
)

func newFiltered(t *testing.T) *filtered {
	t.Helper()
	nettest.RequirePrivileged(t)
	f := &filtered{srv: nettest.NewNS(t, "pfs"), cli: nettest.NewNS(t, "pfc"), got: map[netip.Addr]int{}}
	for _, ns := range []*nettest.NS{f.srv, f.cli} {
		ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	nettest.Veth(t, f.srv, "ul0", srv4.String()+"/24", f.cli, "ul0", peer4.String()+"/24")
	f.srv.Run("ip", "addr", "add", srv6.String()+"/64", "dev", "ul0", "nodad")
	f.cli.Run("ip", "addr", "add", othr4.String()+"/24", "dev", "ul0")
	f.cli.Run("ip", "addr", "add", peer6.String()+"/64", "dev", "ul0", "nodad")
	f.cli.Run("ip", "addr", "add", othr6.String()+"/64", "dev", "ul0", "nodad")
	var conn *net.UDPConn
	if err := f.srv.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp", &net.UDPAddr{Port: filterPort})
		return err
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.got[from.Addr().Unmap()]++
			f.mu.Unlock()
		}
	}()
	return f
}

// send sends n datagrams from each of srcs to the server's port, waits a
// moment for them to arrive, and returns what the server received per
// source since the last call.
func (f *filtered) send(t *testing.T, n int, srcs ...netip.Addr) map[netip.Addr]int {
	t.Helper()
	f.mu.Lock()
	clear(f.got)
	f.mu.Unlock()
	for _, src := range srcs {
		dst := srv4
		if src.Is6() {
			dst = srv6
		}
		if err := f.cli.Do(func() error {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				return err
			}
			defer c.Close()
			for range n {
				if _, err := c.WriteToUDPAddrPort([]byte("not vxlan"), netip.AddrPortFrom(dst, filterPort)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("send from %s: %v", src, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.Addr]int{}
	for k, v := range f.got {
		out[k] = v
	}
	return out
}

func (f *filtered) drops(t *testing.T, h Host) uint64 {
	t.Helper()
	var n uint64
	if err := f.srv.Do(func() error {
		var err error
		n, err = h.PeerFilterDrops()
		return err
	}); err != nil {
		t.Fatalf("drops: %v", err)
	}
	return n
}

func TestSetPeerFilter(t *testing.T) {
	f := newFiltered(t)
	const n = 50
	all := []netip.Addr{peer4, othr4, peer6, othr6}
	if got := f.send(t, n, all...); len(got) != 4 {
		t.Fatalf("without a filter: received from %v, want all 4 sources", got)
	}

	// A run that crashed left its filter behind; the next one replaces it.
	crashed := New()
	if err := f.srv.Do(func() error { return crashed.SetPeerFilter(filterPort, []netip.Addr{othr4}) }); err != nil {
		t.Fatalf("set (crashed run): %v", err)
	}
	h := New()
	steps := []struct {
		name      string
		peers     []netip.Addr
		pass      []netip.Addr // sources the server must receive n datagrams from
		wantDrops uint64       // added by this step
		flushed   bool         // an operator flushed the ruleset first: the filter is made again
	}{
		{"one peer per family", []netip.Addr{peer4, peer6}, []netip.Addr{peer4, peer6}, 2 * n, false},
		{"mapped duplicates", []netip.Addr{netip.AddrFrom16(peer4.As16()), peer4, peer6}, []netip.Addr{peer4, peer6}, 2 * n, false},
		{"peers swapped", []netip.Addr{othr4, othr6}, []netip.Addr{othr4, othr6}, 2 * n, false},
		{"ruleset flushed, then a change", []netip.Addr{peer4, othr6}, []netip.Addr{peer4, othr6}, 2 * n, true},
		{"IPv4 only", []netip.Addr{peer4, othr4}, []netip.Addr{peer4, othr4}, 2 * n, false},
		{"no peers", nil, nil, 4 * n, false},
	}
	var drops uint64
	for _, s := range steps {
		if s.flushed {
			f.srv.Run("nft", "flush", "ruleset")
			drops = 0 // the counters go with the rules
		}
		if err := f.srv.Do(func() error { return h.SetPeerFilter(filterPort, s.peers) }); err != nil {
			t.Fatalf("%s: set: %v", s.name, err)
		}
		got := f.send(t, n, all...)
		for _, src := range all {
			want := 0
			for _, p := range s.pass {
				if p == src {
					want = n
				}
			}
			if got[src] != want {
				t.Errorf("%s: datagrams from %s: got %d, want %d", s.name, src, got[src], want)
			}
		}
		drops += s.wantDrops
		if d := f.drops(t, h); d != drops {
			t.Errorf("%s: kernel drop counter: got %d, want %d", s.name, d, drops)
		}
	}
	// Another port is not filtered.
	if err := f.srv.Do(func() error { return h.SetPeerFilter(filterPort+1, nil) }); err != nil {
		t.Fatalf("move port: %v", err)
	}
	if got := f.send(t, n, all...); len(got) != 4 {
		t.Errorf("filter on another port: received from %v, want all 4 sources", got)
	}
	if got := h.Changes(); len(got) != 1 || got[0] != "nftables peer filter udp dport 8473: drop sources other than 0 peers (inet vxtun peer-filter)" {
		t.Errorf("changes: got %q", got)
	}

	// The forward rules share the table: removing them keeps the filter,
	// Close removes both.
	if err := f.srv.Do(func() error {
		if err := h.SetForwardAccept([]netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")}); err != nil {
			return err
		}
		if err := h.SetPeerFilter(filterPort, []netip.Addr{peer4}); err != nil {
			return err
		}
		return h.SetForwardAccept(nil)
	}); err != nil {
		t.Fatalf("with forward rules: %v", err)
	}
	if got := f.send(t, n, peer4, othr4); got[peer4] != n || got[othr4] != 0 {
		t.Errorf("after forward rules were removed: got %v, want %d from %s only", got, n, peer4)
	}
	if err := f.srv.Do(h.Close); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := f.send(t, n, all...); len(got) != 4 {
		t.Errorf("after Close: received from %v, want all 4 sources", got)
	}
	if out := f.srv.Run("nft", "list", "tables"); out != "" {
		t.Errorf("after Close: tables left:\n%s", out)
	}
	if err := f.srv.Do(func() error { return h.SetPeerFilter(filterPort, nil) }); err == nil {
		t.Errorf("SetPeerFilter after Close: got nil error, want ErrClosed")
	}
}

// TestSetPeerFilterLarge: 5 000 peers, then one change; each update is
// one transaction of what changed (timings logged, not asserted).
func TestSetPeerFilterLarge(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "pfl")
	const peers = 5000
	addrs := make([]netip.Addr, peers)
	for i := range addrs {
		addrs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 0x02, 0, 0, 0, 0x05, 14: byte(i >> 8), 15: byte(i)})
	}
	h := New()
	defer func() { _ = ns.Do(h.Close) }()
	var create, change time.Duration
	var elems int
	if err := ns.Do(func() error {
		t0 := time.Now()
		if err := h.SetPeerFilter(filterPort, addrs); err != nil {
			return err
		}
		create = time.Since(t0)
		next := append(addrs[1:len(addrs):len(addrs)], netip.MustParseAddr("2001:2:0:6::1"))
		t0 = time.Now()
		if err := h.SetPeerFilter(filterPort, next); err != nil {
			return err
		}
		change = time.Since(t0)
		c, err := nftables.New()
		if err != nil {
			return err
		}
		_, s6 := peerSets()
		els, err := c.GetSetElements(s6)
		elems = len(els)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if elems != peers {
		t.Errorf("elements in %s: got %d, want %d", peerSet6, elems, peers)
	}
	t.Logf("peer filter with %d peers: create %v, one peer replaced %v", peers, create, change)
}

// BenchmarkPeerFilterReplace: with 5 000 peers, one op replaces one peer
// (an element deleted and one added, one transaction) — what a node's
// update costs in the kernel filter.
func BenchmarkPeerFilterReplace(b *testing.B) {
	nettest.RequirePrivileged(b)
	ns := nettest.NewNS(b, "pfb")
	const peers = 5000
	addrs := make([]netip.Addr, peers+1)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
	}
	h := New()
	defer func() { _ = ns.Do(h.Close) }()
	sets := [2][]netip.Addr{addrs[:peers], addrs[1:]}
	if err := ns.Do(func() error {
		if err := h.SetPeerFilter(filterPort, sets[0]); err != nil {
			return err
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := h.SetPeerFilter(filterPort, sets[(i+1)%2]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}
