package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
