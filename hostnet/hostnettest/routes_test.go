package hostnettest

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vxtun/vxtun/hostnet"
)

func TestFakePeerRoutes(t *testing.T) {
	f := New()
	f.SetConnected("ul0", netip.MustParsePrefix("198.18.0.1/24"))
	r := func(dst, via string) hostnet.Route {
		return hostnet.Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Dev: "ul0"}
	}
	for _, tt := range []struct {
		ip   string
		want bool
	}{{"198.18.0.2", true}, {"198.18.0.1", false}, {"198.18.1.2", false}} {
		if got, err := f.OnLink("ul0", netip.MustParseAddr(tt.ip)); err != nil || got != tt.want {
			t.Errorf("OnLink(%s): got %t, %v; want %t", tt.ip, got, err, tt.want)
		}
	}
	if _, err := f.OnLink("nosuch", netip.MustParseAddr("198.18.0.2")); err == nil {
		t.Error("OnLink on an unknown link: got nil error")
	}
	err := f.SetPeerRoutes("a", []hostnet.Route{r("198.19.2.0/24", "198.18.0.2"), r("198.19.3.0/24", "198.18.1.3")})
	if res := hostnet.RouteErrors(err); len(res) != 1 || res[netip.MustParsePrefix("198.19.3.0/24")] == nil || !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("off-link gateway: got %v, want one RouteError with ENETUNREACH", err)
	}
	if got, want := f.PeerRoutes("a"), []hostnet.Route{r("198.19.2.0/24", "198.18.0.2")}; !slices.Equal(got, want) {
		t.Errorf("routes: got %v, want %v", got, want)
	}
	if err := f.SetPeerRoutes("a", []hostnet.Route{r("198.19.2.0/24", "198.18.0.2"), r("198.19.2.0/24", "198.18.0.3")}); err == nil {
		t.Error("duplicate destination: got nil error")
	}
	if got := f.PeerRouteOwners(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("owners: got %v, want [a]", got)
	}
	_ = f.Close()
	if got := f.PeerRoutes("a"); len(got) != 0 {
		t.Errorf("after Close: got %v, want none", got)
	}
	if err := f.SetPeerRoutes("a", nil); !errors.Is(err, hostnet.ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
}
