package tun

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestLinkStatsTxDropped: packets routed into a TUN nobody reads overflow
// its ring; LinkStats reports the drops as netlink's own reader does.
func TestLinkStatsTxDropped(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tunst")
	m := openIn(t, ns, "vxt0", 1, Options{})
	configureIn(t, ns, "vxt0", 1400, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
	before, err := m.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	if before.TxDropped != 0 {
		t.Fatalf("fresh link: got %d tx dropped, want 0", before.TxDropped)
	}
	sent := 3 * TxQueueLen
	if err := ns.Do(func() error {
		c, err := net.Dial("udp4", "198.19.2.1:9")
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < sent; i++ {
			if _, err := c.Write([]byte("x")); err != nil {
				return fmt.Errorf("write %d: %w", i, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := m.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	link, err := ns.Handle().LinkByName("vxt0")
	if err != nil {
		t.Fatal(err)
	}
	want := link.Attrs().Statistics.TxDropped
	if got.TxDropped != want || got.TxDropped == 0 || got.TxDropped > uint64(sent) {
		t.Errorf("got %d tx dropped, want %d (netlink's reading), in 1..%d", got.TxDropped, want, sent)
	}
	if got.RxDropped != link.Attrs().Statistics.RxDropped {
		t.Errorf("got %d rx dropped, want %d", got.RxDropped, link.Attrs().Statistics.RxDropped)
	}
	m.Close()
	if _, err := m.LinkStats(); err == nil {
		t.Errorf("after Close: got nil error, want one")
	}
}
