package dataplane_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestUserspaceOpenClose opens the userspace dataplane in a namespace of
// its own and checks what it made on the host, its Stats, Info and
// Overhead, a rejected peer set, and that Close removes it all.
func TestUserspaceOpenClose(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "dpus")
	nettest.Veth(t, ns, "ul0", "198.18.0.1/24", nettest.NewNS(t, "dpusb"), "ul0", "198.18.0.2/24")
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("0e:00:00:00:00:01")
	cfg := dataplane.Config{
		NetConf:    nc,
		Subnet:     netip.MustParsePrefix("198.19.1.0/24"),
		Underlay:   config.Underlay{IP: netip.MustParseAddr("198.18.0.1"), Iface: "ul0", MTU: 1500, Local: true},
		ListenAddr: netip.MustParseAddrPort("198.18.0.1:8472"),
		VtepMAC:    mac,
		DeviceName: "vxdp0",
		Workers:    2,
		MTU:        1450,
	}
	var dp dataplane.Dataplane
	if err := ns.Do(func() error {
		if err := dataplane.CheckUserspace(cfg); err != nil {
			return err
		}
		cfg.Host = hostnet.New()
		var err error
		dp, err = dataplane.OpenUserspace(cfg)
		return err
	}); err != nil {
		t.Fatalf("open: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = ns.Do(dp.Close)
		}
	}()

	h := ns.Handle()
	l, err := h.LinkByName("vxdp0")
	if err != nil {
		t.Fatalf("TUN vxdp0: %v", err)
	}
	if got := l.Attrs().MTU; got != 1450 {
		t.Errorf("MTU: got %d, want 1450", got)
	}
	if got := l.Attrs().TxQLen; got < 4096 {
		t.Errorf("txqueuelen: got %d, want at least 4096", got)
	}
	out := ns.Run("ip", "-4", "addr", "show", "dev", "vxdp0")
	if !strings.Contains(out, "198.19.1.0/32") {
		t.Errorf("addresses of vxdp0: got %q, want 198.19.1.0/32", out)
	}
	out = ns.Run("ip", "-4", "route", "show", "dev", "vxdp0")
	if !strings.Contains(out, "198.19.0.0/16") {
		t.Errorf("routes via vxdp0: got %q, want 198.19.0.0/16", out)
	}
	if out := ns.Run("cat", "/proc/sys/net/ipv6/conf/vxdp0/disable_ipv6"); strings.TrimSpace(out) != "1" {
		t.Errorf("disable_ipv6 on vxdp0: got %q, want 1 (no IPv6 subnet)", out)
	}

	info := dp.Info()
	if info.Kind != "userspace" || info.Device != "vxdp0" || info.Listen != "198.18.0.1:8472" || info.Workers != 2 {
		t.Errorf("Info: got %+v, want userspace vxdp0 198.18.0.1:8472 with 2 workers", info)
	}
	if got := dp.Overhead(); got != 50 {
		t.Errorf("Overhead: got %d, want 50 (VXLAN over IPv4)", got)
	}
	st := dp.Stats()
	for _, r := range []string{"no_route", "too_big", "bad_header", "no_i_bit", "unknown_vni", "wrong_mac",
		"unknown_source", "short", "bad_inner", "arp", "send_error"} {
		if v, ok := st.Drops[r]; !ok || v != 0 {
			t.Errorf("Stats.Drops[%s]: got %d (present %v), want 0 and present", r, v, ok)
		}
	}

	good := config.Peer{Name: "node2", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 8472, VNI: 1,
		Backend: config.BackendVXLAN, VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 2},
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}
	if err := dp.SetPeers([]config.Peer{good}); err != nil {
		t.Fatalf("SetPeers(node2): %v", err)
	}
	dup := good
	dup.Name = "node3"
	if err := dp.SetPeers([]config.Peer{good, dup}); err == nil {
		t.Error("SetPeers with overlapping subnets: got nil, want an error")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err := ns.Do(dp.Close); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	if err := ns.Do(dp.Close); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if _, err := h.LinkByName("vxdp0"); err == nil {
		t.Error("vxdp0 after Close: still there, want it removed")
	}
	_ = dp.Stats() // still callable after Close
}

// TestCheckUserspacePortInUse: a port held by another socket is reported.
func TestCheckUserspacePortInUse(t *testing.T) {
	nettest.RequirePrivileged(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	ns := nettest.NewNS(t, "dpchk")
	err := ns.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4789})
		if err != nil {
			return err
		}
		defer c.Close()
		return dataplane.CheckUserspace(dataplane.Config{ListenAddr: netip.MustParseAddrPort("127.0.0.1:4789")})
	})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("CheckUserspace on a held port: got %v, want 'already in use'", err)
	}
}
