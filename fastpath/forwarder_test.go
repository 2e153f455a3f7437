package fastpath

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/tun"
)

func TestNewRejects(t *testing.T) {
	lo := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	dev := newFakeDev("fake", func([][]byte, int) {})
	for _, tc := range []struct {
		name string
		cfg  Config
		devs []tun.Device
		want string
	}{
		{"no device", Config{Backend: config.BackendUDP, ListenAddr: lo}, nil, "no tun device"},
		{"backend", Config{Backend: "gre", ListenAddr: lo}, []tun.Device{dev}, "unknown backend"},
		{"no mac", Config{Backend: config.BackendVXLAN, ListenAddr: lo}, []tun.Device{dev}, "vtep mac"},
		{"multicast mac", Config{Backend: config.BackendVXLAN, ListenAddr: lo, VtepMAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}, []tun.Device{dev}, "vtep mac"},
		{"vni", Config{Backend: config.BackendVXLAN, ListenAddr: lo, VtepMAC: mac1, VNI: 1 << 24}, []tun.Device{dev}, "24 bits"},
		{"mtu", Config{Backend: config.BackendUDP, ListenAddr: lo, UnderlayMTU: 100}, []tun.Device{dev}, "mtu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.cfg, tc.devs)
			if err == nil {
				f.Close()
				t.Fatalf("got no error, want one mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSetPeersRejectsAndKeepsOld(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	f, err := New(Config{Backend: config.BackendVXLAN, VNI: 1, ListenAddr: netip.AddrPortFrom(lo, freeUDPPort(t, lo)), VtepMAC: mac1},
		[]tun.Device{newFakeDev("fake", func([][]byte, int) {})})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	good := config.Peer{Name: "node2", PublicIP: netip.MustParseAddr("198.18.0.2"), Backend: config.BackendVXLAN, VNI: 1,
		VtepMAC: mac2, Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}
	if err := f.SetPeers([]config.Peer{good}); err != nil {
		t.Fatal(err)
	}
	udpPeer := good
	udpPeer.Name, udpPeer.Backend = "u", config.BackendUDP
	v6Peer := good
	v6Peer.Name, v6Peer.PublicIP = "v6", netip.MustParseAddr("2001:db8::2")
	dup := good
	dup.Name = "dup"
	noMAC := good
	noMAC.Name, noMAC.VtepMAC, noMAC.Subnets = "nomac", nil, []netip.Prefix{netip.MustParsePrefix("198.19.3.0/24")}
	for _, tc := range []struct {
		name  string
		peers []config.Peer
		want  string
		is    error
	}{
		{"backend mismatch", []config.Peer{udpPeer}, "backend", nil},
		{"ipv6 peer on ipv4 socket", []config.Peer{v6Peer}, "ipv6", nil},
		{"duplicate subnet", []config.Peer{good, dup}, "", routing.ErrDuplicatePrefix},
		{"no vtep mac", []config.Peer{noMAC}, "", routing.ErrInvalidPeer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.SetPeers(tc.peers)
			if err == nil || (tc.want != "" && !strings.Contains(err.Error(), tc.want)) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("got %v, want an error (%q / %v)", err, tc.want, tc.is)
			}
			r := f.table.Load().Lookup([]byte{198, 19, 2, 1})
			if r == nil || r.Name != "node2" {
				t.Fatalf("after a rejected update 198.19.2.1 routes to %v, want node2 (old table kept)", r)
			}
		})
	}
}

// TestOverhead: the overhead New's encapsulation reports for the family of
// the bound underlay address (loopback sockets, no link is touched).
func TestOverhead(t *testing.T) {
	for _, tc := range []struct {
		backend config.Backend
		addr    string
		want    int
	}{
		{config.BackendVXLAN, "127.0.0.1", 50},
		{config.BackendVXLAN, "::1", 70},
		{config.BackendUDP, "127.0.0.1", 28},
		{config.BackendUDP, "::1", 48},
	} {
		lo := netip.MustParseAddr(tc.addr)
		f, err := New(Config{Backend: tc.backend, VNI: 1, VtepMAC: mac1, ListenAddr: netip.AddrPortFrom(lo, freeUDPPort(t, lo))},
			[]tun.Device{newFakeDev("fake", func([][]byte, int) {})})
		if err != nil {
			t.Fatalf("%s on %s: %v", tc.backend, tc.addr, err)
		}
		if got := f.Overhead(); got != tc.want {
			t.Errorf("%s on %s: Overhead got %d, want %d", tc.backend, tc.addr, got, tc.want)
		}
		f.Close()
	}
}
