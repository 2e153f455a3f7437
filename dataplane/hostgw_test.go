package dataplane_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/dataplane/dataplanetest"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/hostnet/hostnettest"
)

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func netConf(t *testing.T, backend string) *config.NetConf {
	t.Helper()
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "Backend": `+backend+`}`))
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// gwConfig is node 1's config: 198.18.0.1/24 on ul0, subnet 198.19.1.0/24.
func gwConfig(t *testing.T, nc *config.NetConf, host hostnet.Host, log *logBuf) dataplane.Config {
	return dataplane.Config{
		NetConf:  nc,
		Subnet:   netip.MustParsePrefix("198.19.1.0/24"),
		Underlay: config.Underlay{IP: netip.MustParseAddr("198.18.0.1"), Iface: "ul0", MTU: 1500, Local: true},
		Host:     host,
		Logger:   slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func gwPeer(n int, ip string, b config.Backend) config.Peer {
	p := config.Peer{Name: fmt.Sprintf("node%d", n), PublicIP: netip.MustParseAddr(ip), Backend: b,
		Subnets: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", n))}}
	if b == config.BackendVXLAN {
		p.VNI, p.Port, p.VtepMAC = 1, 8472, net.HardwareAddr{0x0e, 0, 0, 0, 0, byte(n)}
	}
	return p
}

func routes(rs ...string) []hostnet.Route {
	var out []hostnet.Route
	for _, r := range rs {
		dst, via, _ := strings.Cut(r, " via ")
		out = append(out, hostnet.Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Dev: "ul0"})
	}
	return out
}

func TestHostGWSetPeers(t *testing.T) {
	host := hostnettest.New()
	host.SetConnected("ul0", netip.MustParsePrefix("198.18.0.1/24"))
	var log logBuf
	dp, err := dataplane.OpenHostGW(gwConfig(t, netConf(t, `{"Type": "host-gw"}`), host, &log))
	if err != nil {
		t.Fatal(err)
	}
	hg := config.BackendHostGW
	refusals := func(peer string) uint64 { return dp.Stats().PeerDrops[peer][dataplane.DropNotOnLink] }
	steps := []struct {
		name      string
		peers     []config.Peer
		routes    []hostnet.Route
		node3Drop uint64
		logged    int // "no direct route" lines so far
	}{
		{"one on-link, one not", []config.Peer{gwPeer(2, "198.18.0.2", hg), gwPeer(3, "198.18.1.3", hg)},
			routes("198.19.2.0/24 via 198.18.0.2"), 1, 1},
		{"the same again: logged and counted once", []config.Peer{gwPeer(2, "198.18.0.2", hg), gwPeer(3, "198.18.1.3", hg)},
			routes("198.19.2.0/24 via 198.18.0.2"), 1, 1},
		{"node3 moves onto the subnet", []config.Peer{gwPeer(2, "198.18.0.2", hg), gwPeer(3, "198.18.0.3", hg)},
			routes("198.19.2.0/24 via 198.18.0.2", "198.19.3.0/24 via 198.18.0.3"), 1, 1},
		{"node3 leaves it again", []config.Peer{gwPeer(2, "198.18.0.22", hg), gwPeer(3, "198.18.2.3", hg)},
			routes("198.19.2.0/24 via 198.18.0.22"), 2, 2},
		{"node2 gone", []config.Peer{gwPeer(3, "198.18.2.3", hg)}, nil, 2, 2},
	}
	for _, st := range steps {
		if err := dp.SetPeers(st.peers); err != nil {
			t.Fatalf("%s: SetPeers: got %v, want nil (a refused peer must not fail the set)", st.name, err)
		}
		if got := host.PeerRoutes(dataplane.HostGWOwner); !slices.Equal(got, st.routes) {
			t.Errorf("%s: routes: got %v, want %v", st.name, got, st.routes)
		}
		if got := refusals("node3"); got != st.node3Drop {
			t.Errorf("%s: node3 %s: got %d, want %d", st.name, dataplane.DropNotOnLink, got, st.node3Drop)
		}
		if got := log.count("no direct route to peer"); got != st.logged {
			t.Errorf("%s: refusals logged: got %d, want %d\n%s", st.name, got, st.logged, log.String())
		}
	}
	if want := `error adding route to 198.19.3.0/24 via 198.18.1.3 dev ul0: network is unreachable`; !strings.Contains(log.String(), want) {
		t.Errorf("log: want flanneld's words %q in\n%s", want, log.String())
	}

	// A malformed or foreign peer rejects the set; the routes stay.
	before := host.PeerRoutes(dataplane.HostGWOwner)
	for _, bad := range [][]config.Peer{
		{gwPeer(2, "198.18.0.2", config.BackendVXLAN)},
		{gwPeer(2, "198.18.0.2", hg), gwPeer(2, "198.18.0.3", hg)},
		{gwPeer(1, "198.18.0.5", hg)}, // our own subnet
		{gwPeer(2, "198.18.0.1", hg)}, // our own address
	} {
		if err := dp.SetPeers(bad); err == nil {
			t.Errorf("SetPeers(%v): got nil, want an error", bad)
		}
	}
	if got := host.PeerRoutes(dataplane.HostGWOwner); !slices.Equal(got, before) {
		t.Errorf("after rejected sets: got %v, want %v", got, before)
	}
	if err := dp.SetPeers([]config.Peer{gwPeer(2, "198.18.0.2", hg)}); err != nil {
		t.Fatal(err)
	}
	if got, want := dp.Info().Kind, "host-gw"; got != want {
		t.Errorf("Info().Kind: got %q, want %q", got, want)
	}
	if got := dp.Overhead(); got != 0 {
		t.Errorf("Overhead: got %d, want 0", got)
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}
	if !host.Closed() || len(host.PeerRouteOwners()) != 0 {
		t.Errorf("after Close: host closed %t, owners %v; want closed, none", host.Closed(), host.PeerRouteOwners())
	}
}

func TestHostGWHostFailure(t *testing.T) {
	host := hostnettest.New()
	host.SetConnected("ul0", netip.MustParsePrefix("198.18.0.1/24"))
	var log logBuf
	dp, err := dataplane.OpenHostGW(gwConfig(t, netConf(t, `{"Type": "host-gw"}`), host, &log))
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	boom := errors.New("netlink: boom")
	host.Fail(hostnettest.SetPeerRoutes, boom)
	if err := dp.SetPeers([]config.Peer{gwPeer(2, "198.18.0.2", config.BackendHostGW)}); !errors.Is(err, boom) {
		t.Errorf("SetPeers with a failing host: got %v, want %v", err, boom)
	}
	host.Fail(hostnettest.OnLink, boom)
	if err := dp.SetPeers([]config.Peer{gwPeer(2, "198.18.0.2", config.BackendHostGW)}); !errors.Is(err, boom) {
		t.Errorf("SetPeers with a failing on-link check: got %v, want %v", err, boom)
	}
}

func TestCheckHostGW(t *testing.T) {
	nc := netConf(t, `{"Type": "host-gw"}`)
	tests := []struct {
		name string
		u    config.Underlay
		ok   bool
	}{
		{"local", config.Underlay{IP: netip.MustParseAddr("198.18.0.1"), Iface: "ul0", Local: true}, true},
		{"NAT address", config.Underlay{IP: netip.MustParseAddr("198.18.0.99"), Iface: "ul0"}, false},
		{"no interface", config.Underlay{IP: netip.MustParseAddr("198.18.0.99")}, false},
	}
	for _, tt := range tests {
		host := hostnettest.New()
		_, err := dataplane.OpenHostGW(dataplane.Config{NetConf: nc, Underlay: tt.u, Host: host})
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, dataplane.ErrHostGWNAT)) {
			t.Errorf("%s: got %v, want ok=%t (else ErrHostGWNAT)", tt.name, err, tt.ok)
		}
		if !tt.ok && !host.Closed() {
			t.Errorf("%s: a failed Open left the host open", tt.name)
		}
	}
}

func TestDirectRouting(t *testing.T) {
	host := hostnettest.New()
	host.SetConnected("ul0", netip.MustParsePrefix("198.18.0.1/24"))
	var log logBuf
	inner := dataplanetest.Opener{Reject: func(peers []config.Peer) error {
		for _, p := range peers {
			if p.PublicIP == netip.MustParseAddr("198.18.0.1") {
				return errors.New("our own address")
			}
		}
		return nil
	}}
	dp, err := dataplane.OpenDirectRoutingWith(inner.Open)(gwConfig(t, netConf(t, `{"Type": "vxlan", "DirectRouting": true}`), host, &log))
	if err != nil {
		t.Fatal(err)
	}
	fake := inner.Opened()[0]
	vx := config.BackendVXLAN
	steps := []struct {
		name   string
		peers  []config.Peer
		routes []hostnet.Route
		direct []string
	}{
		{"one same-subnet peer, one behind a router", []config.Peer{gwPeer(2, "198.18.0.2", vx), gwPeer(3, "198.18.1.3", vx)},
			routes("198.19.2.0/24 via 198.18.0.2"), []string{"node2"}},
		{"node3 moves onto our subnet", []config.Peer{gwPeer(2, "198.18.0.2", vx), gwPeer(3, "198.18.0.3", vx)},
			routes("198.19.2.0/24 via 198.18.0.2", "198.19.3.0/24 via 198.18.0.3"), []string{"node2", "node3"}},
		{"node2 moves away", []config.Peer{gwPeer(2, "198.18.5.2", vx), gwPeer(3, "198.18.0.3", vx)},
			routes("198.19.3.0/24 via 198.18.0.3"), []string{"node3"}},
	}
	for _, st := range steps {
		if err := dp.SetPeers(st.peers); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := host.PeerRoutes(dataplane.DirectRoutingOwner); !slices.Equal(got, st.routes) {
			t.Errorf("%s: routes: got %v, want %v", st.name, got, st.routes)
		}
		// The VXLAN dataplane knows every peer: inbound VXLAN from a
		// direct peer is accepted, and a peer without a route is reached.
		if got := fake.Peers(); len(got) != len(st.peers) {
			t.Errorf("%s: inner dataplane peers: got %d, want all %d", st.name, len(got), len(st.peers))
		}
		if got := dataplane.DirectPeers(dp); !slices.Equal(got, st.direct) {
			t.Errorf("%s: direct peers: got %v, want %v", st.name, got, st.direct)
		}
	}
	if got := log.count("routed through VXLAN"); got != 1 {
		t.Errorf("moves to VXLAN logged: got %d, want 1\n%s", got, log.String())
	}
	if got := dp.Stats().PeerDrops["node2"][dataplane.DropNotOnLink]; got != 0 {
		t.Errorf("DirectRouting counts no refusals: got %d for node2", got)
	}

	// The host fails: the inner dataplane gets the previous set back.
	prev := fake.Peers()
	host.Fail(hostnettest.SetPeerRoutes, errors.New("boom"))
	if err := dp.SetPeers([]config.Peer{gwPeer(4, "198.18.0.4", vx)}); err == nil {
		t.Fatal("SetPeers with a failing host: got nil error")
	}
	if got := fake.Peers(); !slices.EqualFunc(got, prev, func(a, b config.Peer) bool { return a.Name == b.Name }) {
		t.Errorf("inner peers after a failed update: got %v, want the previous %v", got, prev)
	}
	// The inner dataplane refuses: the routes are not touched.
	if err := dp.SetPeers([]config.Peer{gwPeer(2, "198.18.0.1", vx)}); err == nil {
		t.Error("a peer with our address: got nil error")
	}
	if got := host.PeerRoutes(dataplane.DirectRoutingOwner); len(got) != 1 {
		t.Errorf("routes after a rejected set: got %v, want node3's", got)
	}
	if got, want := dp.Info().Kind, "fake+direct-routing"; got != want {
		t.Errorf("Info().Kind: got %q, want %q", got, want)
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}
	if !host.Closed() || !fake.Closed() {
		t.Errorf("after Close: host closed %t, inner closed %t; want both", host.Closed(), fake.Closed())
	}
}
