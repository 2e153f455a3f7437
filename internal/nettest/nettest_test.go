package nettest

import (
	"strings"
	"testing"
)

func TestTwoHostsPing(t *testing.T) {
	RequirePrivileged(t)
	h := NewTwoHosts(t)
	out := h.A.Run("ip", "-br", "addr", "show", "ul0")
	if !strings.Contains(out, "198.18.0.1/24") {
		t.Fatalf("got addr %q, want 198.18.0.1/24", out)
	}
	// A UDP socket bound inside B sees B's address.
	if err := h.B.Do(func() error { return LinkUp("lo", "198.19.2.1/32") }); err != nil {
		t.Fatal(err)
	}
	out = h.B.Run("ip", "-br", "addr", "show", "lo")
	if !strings.Contains(out, "198.19.2.1/32") {
		t.Fatalf("got %q, want 198.19.2.1/32 on lo in B", out)
	}
}
