package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

func TestGoToolBuild(t *testing.T) {
	cache := t.TempDir()
	g := GoTool{Name: "x", Version: "v1.2.3", Packages: []string{"example.com/a/cmd/one", "example.com/a/cmd/two"}}
	bin := filepath.Join(cache, "x-v1.2.3", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"one", "two"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Cached: nothing is built.
	got, err := g.Build(context.Background(), cache)
	if err != nil || got != bin {
		t.Fatalf("cached: got %q, %v; want %q, nil", got, err, bin)
	}
	// Not buildable (no proxy): unavailable, with the reason.
	t.Setenv("GOPROXY", "off")
	g.Version = "v9.9.9"
	_, err = g.Build(context.Background(), cache)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "go install") {
		t.Errorf("unbuildable: got %v, want an ErrUnavailable naming go install", err)
	}
}

func TestNebulaConfig(t *testing.T) {
	tb := fakeTestbed()
	c := nebulaConfig("/d/ca.crt", "/d/n1.crt", "/d/n1.key", tb.Nodes[0], tb.Nodes[1])
	for _, want := range []string{
		`"198.19.255.2": ["198.18.0.2:4242"]`,
		"host: 198.18.0.1\n  port: 4242",
		"mtu: 1440",
		"- route: 198.19.2.0/24\n      via: 198.19.255.2",
		"local_cidr: any",
		"am_lighthouse: false",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
}

// TestPeerModesUp brings wireguard-go and nebula up (pod-to-pod ping) when
// they are already built in the tool cache ($VXBENCH_TOOL_CACHE or the
// default); building them needs the module proxy, which a test must not
// depend on, so an empty cache skips with the command that fills it.
func TestPeerModesUp(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "iperf3", "bridge", "ss", "wg")
	cache := os.Getenv("VXBENCH_TOOL_CACHE")
	if cache == "" {
		cache = DefaultToolCache()
	}
	for _, g := range []GoTool{WireGuardGoTool, NebulaTool} {
		for _, p := range g.Packages {
			if _, err := os.Stat(filepath.Join(cache, g.Name+"-"+g.Version, "bin", filepath.Base(p))); err != nil {
				t.Skipf("%s not built in %s (go run ./cmd/vxbench -quick -modes %s builds it)", p, cache, g.Name)
			}
		}
	}
	cfg := QuickConfig()
	cfg.OutDir, cfg.ToolCache = t.TempDir(), cache
	cfg.Modes = []string{ModeWireGuardGo, ModeNebula}
	h, err := NewHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, name := range cfg.Modes {
		mode, err := newMode(name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mode.(interface{ attach(*Harness) }).attach(h)
		mr := &modeRun{mode: mode, res: newModeResult(name)}
		if err := h.setup(ctx, mr); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(mode.PIDs()) != 2 {
			t.Errorf("%s: got %d daemons, want 2", name, len(mode.PIDs()))
		}
		if n := mode.(interface{ Note() string }).Note(); !strings.Contains(n, "encryption") {
			t.Errorf("%s: note %q does not mention encryption", name, n)
		}
		if err := mode.Stop(); err != nil {
			t.Errorf("%s: stop: %v", name, err)
		}
	}
}
