package node

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/hostnet/hostnettest"
	"github.com/vxtun/vxtun/registry"
)

func TestIPMasq(t *testing.T) {
	n4 := netip.MustParsePrefix("198.19.0.0/16")
	own := netip.MustParsePrefix("198.19.1.0/24")
	for _, tt := range []struct {
		name    string
		flag    bool // Config.IPMasq (--ip-masq)
		file    bool // the node file's IPMasq
		fail    error
		want    []hostnet.MasqNet
		envWant bool
	}{
		{name: "off"},
		{name: "flag", flag: true, want: []hostnet.MasqNet{{Network: n4, Subnet: own}}, envWant: true},
		{name: "node file", file: true, want: []hostnet.MasqNet{{Network: n4, Subnet: own}}, envWant: true},
		{name: "refused", flag: true, fail: errors.New("nftables: operation not supported")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			src := newFakeSource()
			h := newHarness(t, src, true)
			h.cfg.IPMasq = tt.flag
			if tt.file {
				h.cfg.NodeFile = rewriteNodeFile(t, h.cfg.NodeFile, `"IPMasq": true, `)
			}
			if tt.fail != nil {
				h.cfg.NewHost = func() hostnet.Host {
					f := hostnettest.New()
					f.Fail(hostnettest.SetMasquerade, tt.fail)
					return f
				}
			}
			h.start(ctx)
			src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
			if tt.fail != nil {
				select {
				case err := <-h.done:
					if err == nil || !strings.Contains(err.Error(), "ip masquerade") || !errors.Is(err, tt.fail) {
						t.Fatalf("Run: got %v, want the ip masquerade error wrapping %v", err, tt.fail)
					}
				case <-ctx.Done():
					t.Fatal("Run did not fail")
				}
				return
			}
			h.waitStarted(ctx)
			nodeHost := h.host(0)
			if got := nodeHost.Masquerade(); !slices.Equal(got, tt.want) {
				t.Errorf("masquerade while running: got %v, want %v", got, tt.want)
			}
			e, err := config.ReadSubnetEnv(filepath.Join(h.dir, "subnet.env"))
			if err != nil || e.IPMasq != tt.envWant {
				t.Errorf("subnet.env: got FLANNEL_IPMASQ=%v (%v), want %v", e.IPMasq, err, tt.envWant)
			}
			h.cancel()
			if err := <-h.done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !nodeHost.Closed() || nodeHost.Masquerade() != nil {
				t.Error("the node's host was not closed at shutdown: its masquerade rules stay")
			}
		})
	}
}

func TestIPMasqFollowsLeaseMove(t *testing.T) {
	ctx := testCtx(t)
	first, second := netip.MustParsePrefix("198.19.5.0/24"), netip.MustParsePrefix("198.19.7.0/24")
	src := &leaseSource{fakeSource: newFakeSource(), changes: make(chan registry.Lease, 1),
		lease: registry.Lease{Name: "198.19.5.0-24", Subnet: first}}
	h := newHarness(t, src, false)
	h.cfg.IPMasq = true
	h.start(ctx)
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
	h.waitStarted(ctx)
	n4 := netip.MustParsePrefix("198.19.0.0/16")
	if got, want := h.host(0).Masquerade(), []hostnet.MasqNet{{Network: n4, Subnet: first}}; !slices.Equal(got, want) {
		t.Fatalf("before the move: got %v, want %v", got, want)
	}
	src.changes <- registry.Lease{Name: "198.19.7.0-24", Subnet: second}
	if _, err := h.opener.WaitOpened(ctx, 2); err != nil {
		t.Fatal(err)
	}
	h.waitStarted(ctx)
	if got, want := h.host(0).Masquerade(), []hostnet.MasqNet{{Network: n4, Subnet: second}}; !slices.Equal(got, want) {
		t.Fatalf("after the move: got %v, want %v", got, want)
	}
}

// rewriteNodeFile writes a copy of the node file with extra keys after
// its opening brace.
func rewriteNodeFile(t *testing.T, path, extra string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(out, []byte(strings.Replace(string(b), "{", "{"+extra, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
