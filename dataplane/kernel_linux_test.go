package dataplane_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/dataplane/dataplanetest"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/hostnet/hostnettest"
)

// kernelConfig is node 1's dataplane config (vxlan, VNI vni) with a fake
// host.
func kernelConfig(t *testing.T, backend string, extra string) (dataplane.Config, *hostnettest.Fake) {
	t.Helper()
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "Backend": {"Type": "`+backend+`"`+extra+`}}`))
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	f := hostnettest.New()
	return dataplane.Config{
		NetConf:    nc,
		Subnet:     netip.MustParsePrefix("198.19.1.0/24"),
		Underlay:   config.Underlay{IP: netip.MustParseAddr("198.18.0.1"), Iface: "ul0", MTU: 1500, Local: true},
		ListenAddr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), nc.Backend.Port),
		VtepMAC:    mac,
		DeviceName: "vxtun0",
		MTU:        1450,
		Host:       f,
	}, f
}

func kpeer(n int, mac string) config.Peer {
	m, _ := net.ParseMAC(mac)
	return config.Peer{Name: "node" + string(rune('0'+n)), PublicIP: netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}),
		Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(n), 0}), 24)},
		Backend: config.BackendVXLAN, VNI: 1, Port: 8472, VtepMAC: m}
}

func TestKernelOpen(t *testing.T) {
	tests := []struct {
		name  string
		extra string // net-conf Backend keys
		local bool
		want  string // the device, hostnet.VXLAN.String()
	}{
		{"flannel defaults", ``, true,
			"vxlan flannel.1 id 1 local 198.18.0.1 dev ul0 dstport 8472 nolearning address 0e:76:78:00:00:01 mtu 1450 addr 198.19.1.0/32"},
		{"VNI 7, IANA port, GBP", `, "VNI": 7, "Port": 4789, "GBP": true`, true,
			"vxlan flannel.7 id 7 local 198.18.0.1 dev ul0 dstport 4789 nolearning gbp address 0e:76:78:00:00:01 mtu 1450 addr 198.19.1.0/32"},
		{"NAT public IP: no local", ``, false,
			"vxlan flannel.1 id 1 dev ul0 dstport 8472 nolearning address 0e:76:78:00:00:01 mtu 1450 addr 198.19.1.0/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, f := kernelConfig(t, "vxlan", tt.extra)
			cfg.Underlay.Local = tt.local
			dp, err := dataplane.OpenKernel(cfg)
			if err != nil {
				t.Fatal(err)
			}
			name := dp.Info().Device
			d, ok := f.VXLAN(name)
			if !ok {
				t.Fatalf("no vxlan device %s on the host", name)
			}
			if got := d.String(); got != tt.want {
				t.Errorf("device: got %q, want %q", got, tt.want)
			}
			if !d.DisableIPv6 {
				t.Error("DisableIPv6: got false, want true (no IPv6 overlay)")
			}
			if got, want := dp.Info().Kind, dataplane.KindKernel; got != want {
				t.Errorf("Info().Kind: got %q, want %q", got, want)
			}
			if got := dp.Overhead(); got != 50 {
				t.Errorf("Overhead: got %d, want 50", got)
			}
			if err := dp.Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok := f.VXLAN(name); ok || !f.Closed() {
				t.Errorf("after Close: device still recorded %v, host closed %v; want false, true", ok, f.Closed())
			}
		})
	}
}

func TestKernelUnsupported(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*dataplane.Config)
	}{
		{"legacy udp", nil},
		{"IPv6 overlay", func(c *dataplane.Config) { c.Subnet6 = netip.MustParsePrefix("2001:2:0:1001::/64") }},
		{"IPv6 underlay", func(c *dataplane.Config) { c.Underlay.IP = netip.MustParseAddr("2001:2::1") }},
		{"second, IPv6 underlay", func(c *dataplane.Config) { c.ListenAddr6 = netip.MustParseAddrPort("[2001:2::1]:8472") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := "vxlan"
			if tt.setup == nil {
				backend = "udp"
			}
			cfg, f := kernelConfig(t, backend, "")
			if tt.setup != nil {
				tt.setup(&cfg)
			}
			if _, err := dataplane.OpenKernel(cfg); !errors.Is(err, dataplane.ErrKernelUnsupported) {
				t.Fatalf("OpenKernel: got %v, want ErrKernelUnsupported", err)
			}
			if !f.Closed() || slices.Contains(f.Calls(), hostnettest.AddVXLAN) {
				t.Errorf("host: closed %v, calls %q; want closed and no AddVXLAN", f.Closed(), f.Calls())
			}
		})
	}
}

func TestKernelSetPeers(t *testing.T) {
	cfg, f := kernelConfig(t, "vxlan", "")
	dp, err := dataplane.OpenKernel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	good := []config.Peer{kpeer(2, "0e:76:78:00:00:02"), kpeer(3, "0e:76:78:00:00:03")}
	if err := dp.SetPeers(good); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"fdb 0e:76:78:00:00:02 dev flannel.1 dst 198.18.0.2 self permanent",
		"fdb 0e:76:78:00:00:03 dev flannel.1 dst 198.18.0.3 self permanent",
		"neigh 198.19.2.0 lladdr 0e:76:78:00:00:02 dev flannel.1 nud permanent",
		"neigh 198.19.3.0 lladdr 0e:76:78:00:00:03 dev flannel.1 nud permanent",
		"route 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink",
		"route 198.19.3.0/24 via 198.19.3.0 dev flannel.1 onlink",
	}
	if got := f.VXLANEntries("flannel.1"); !slices.Equal(got, want) {
		t.Fatalf("entries: got %q, want %q", got, want)
	}
	bad := []struct {
		name  string
		peer  func() config.Peer
		field string
	}{
		{"other VNI", func() config.Peer { p := kpeer(4, "0e:76:78:00:00:04"); p.VNI = 2; return p }, "VNI"},
		{"other port", func() config.Peer { p := kpeer(4, "0e:76:78:00:00:04"); p.Port = 4789; return p }, "Port"},
		{"IPv6 subnet", func() config.Peer {
			p := kpeer(4, "0e:76:78:00:00:04")
			p.Subnets = append(p.Subnets, netip.MustParsePrefix("2001:2:0:1004::/64"))
			return p
		}, "Subnets[1]"},
		{"our own subnet", func() config.Peer {
			p := kpeer(4, "0e:76:78:00:00:04")
			p.Subnets = []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
			return p
		}, "Subnets[0]"},
		{"no MAC", func() config.Peer { p := kpeer(4, ""); return p }, "VtepMAC"},
	}
	for _, b := range bad {
		err := dp.SetPeers(append(slices.Clone(good), b.peer()))
		var pe *config.PeerError
		if !errors.As(err, &pe) || pe.Field != b.field || pe.Peer != "node4" {
			t.Errorf("%s: got %v, want a PeerError of node4 field %s", b.name, err, b.field)
		}
	}
	if err := dp.SetPeers(append(slices.Clone(good), kpeer(2, "0e:76:78:00:00:09"))); err == nil {
		t.Error("a second peer named node2: got nil, want an error")
	}
	// Refused by the host's own check (the dataplane does not build the
	// entries twice): node4 with node2's MAC.
	if err := dp.SetPeers(append(slices.Clone(good), kpeer(4, good[0].VtepMAC.String()))); err == nil || !strings.Contains(err.Error(), "also the MAC of") {
		t.Errorf("a MAC of another peer: got %v, want the host's error", err)
	}
	if got := f.VXLANEntries("flannel.1"); !slices.Equal(got, want) {
		t.Fatalf("entries after refused sets: got %q, want %q", got, want)
	}
	// The host refuses a change: the previous set is put back.
	f.Fail(hostnettest.SetVXLANPeers, errors.New("netlink: no buffer space"))
	if err := dp.SetPeers(good[:1]); err == nil || !strings.Contains(err.Error(), "no buffer space") {
		t.Fatalf("host refusal: got %v, want its error", err)
	}
	if got := f.VXLANEntries("flannel.1"); !slices.Equal(got, want) {
		t.Fatalf("entries after a host refusal: got %q, want %q", got, want)
	}
	if err := dp.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if got := f.VXLANEntries("flannel.1"); len(got) != 0 {
		t.Fatalf("entries after SetPeers(nil): got %q, want none", got)
	}
}

func TestKernelStatsAndRun(t *testing.T) {
	cfg, f := kernelConfig(t, "vxlan", "")
	dp, err := dataplane.OpenKernel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.SetLinkStats("flannel.1", hostnet.LinkStats{TxPackets: 3, TxBytes: 252, RxPackets: 2, RxBytes: 168, TxDropped: 1, RxErrors: 4})
	s := dp.Stats()
	if s.TxPackets != 3 || s.TxBytes != 252 || s.RxPackets != 2 || s.RxBytes != 168 {
		t.Errorf("stats: got tx %d/%d rx %d/%d, want tx 3/252 rx 2/168", s.TxPackets, s.TxBytes, s.RxPackets, s.RxBytes)
	}
	wantDrops := map[string]uint64{"tx_dropped": 1, "rx_dropped": 0, "tx_errors": 0, "rx_errors": 4}
	for r, n := range wantDrops {
		if got, ok := s.Drops[r]; !ok || got != n {
			t.Errorf("drops[%s]: got %d (present %v), want %d", r, got, ok, n)
		}
	}
	// Run notices the device going away.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	f.DeleteVXLAN("flannel.1")
	select {
	case err := <-done:
		if !errors.Is(err, hostnet.ErrNoSuchLink) {
			t.Fatalf("Run after the device was deleted: got %v, want ErrNoSuchLink", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not notice the device going away")
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dp.Stats().TxPackets; got != 3 {
		t.Errorf("stats after Close: got %d tx packets, want the last read, 3", got)
	}
}

// TestAutoFallsBack: the hostnet fake refuses the kernel's vxlan device
// (as a kernel without the module does); auto then opens the userspace
// dataplane with a fresh host, and says so in one line.
func TestAutoFallsBack(t *testing.T) {
	cfg, refusing := kernelConfig(t, "vxlan", "")
	refusing.Fail(hostnettest.AddVXLAN, errors.New("operation not supported"))
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	us := &dataplanetest.Opener{}
	fresh := hostnettest.New()
	a := dataplane.Auto{Userspace: us.Open, NewHost: func() hostnet.Host { return fresh }}
	dp, err := a.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opened := us.Opened()
	if len(opened) != 1 || dp != dataplane.Dataplane(opened[0]) {
		t.Fatalf("userspace opens: got %d, want 1 returned by Open", len(opened))
	}
	if got := opened[0].Config().Host; got != hostnet.Host(fresh) {
		t.Error("the userspace dataplane got the kernel attempt's (closed) host, want a fresh one")
	}
	if !refusing.Closed() || len(refusing.Changes()) != 0 {
		t.Errorf("kernel attempt's host: closed %v, changes %q; want closed, none", refusing.Closed(), refusing.Changes())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "dataplane: userspace") || !strings.Contains(lines[0], "operation not supported") {
		t.Errorf("log: got %q, want one line naming userspace and the kernel's refusal", lines)
	}

	// The kernel device is usable: auto uses it.
	cfg2, host2 := kernelConfig(t, "vxlan", "")
	logs.Reset()
	cfg2.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	dp2, err := a.Open(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer dp2.Close()
	if got := dp2.Info().Kind; got != dataplane.KindKernel {
		t.Errorf("Kind: got %q, want kernel", got)
	}
	if _, ok := host2.VXLAN("flannel.1"); !ok || len(us.Opened()) != 1 {
		t.Errorf("kernel device on the host %v, userspace opens %d; want true, 1", ok, len(us.Opened()))
	}
	if got := strings.TrimSpace(logs.String()); strings.Count(got, "\n") != 0 || !strings.Contains(got, "dataplane: kernel") {
		t.Errorf("log: got %q, want one line naming the kernel dataplane", got)
	}

	// Both refuse: the error names both.
	cfg3, host3 := kernelConfig(t, "vxlan", "")
	host3.Fail(hostnettest.AddVXLAN, errors.New("no vxlan here"))
	us.FailOpen = errors.New("no tun here")
	if _, err := a.Open(cfg3); err == nil || !strings.Contains(err.Error(), "no vxlan here") || !strings.Contains(err.Error(), "no tun here") {
		t.Errorf("both refuse: got %v, want both causes", err)
	}
}
