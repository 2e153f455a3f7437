package node

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
)

func TestDataplaneChoice(t *testing.T) {
	if _, err := New(Config{Dataplane: "fast"}); err == nil || !strings.Contains(err.Error(), "auto, userspace, kernel") {
		t.Fatalf("New with dataplane \"fast\": got %v, want an error listing auto, userspace, kernel", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun: the userspace check cannot pass here")
	}
	// A legacy UDP network: the kernel dataplane cannot carry it, the
	// userspace one can; each kind's start check says so.
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "Backend": {"Type": "udp"}}`))
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	cfg := dataplane.Config{NetConf: nc, Subnet: netip.MustParsePrefix("198.19.1.0/24"), VtepMAC: mac,
		Underlay: config.Underlay{IP: netip.MustParseAddr("127.0.0.1")}, ListenAddr: netip.MustParseAddrPort("127.0.0.1:0")}
	tests := []struct {
		kind        string
		unsupported bool // the check fails with ErrKernelUnsupported
	}{
		{"", false},
		{dataplane.KindAuto, false},
		{dataplane.KindUserspace, false},
		{dataplane.KindKernel, true},
	}
	for _, tt := range tests {
		_, check := openerOf(tt.kind, func() hostnet.Host { return nil })
		err := check(cfg)
		if got := errors.Is(err, dataplane.ErrKernelUnsupported); got != tt.unsupported || (!tt.unsupported && err != nil) {
			t.Errorf("dataplane %q: check of a udp network: got %v, want unsupported=%v", tt.kind, err, tt.unsupported)
		}
	}
}
