package registry

import (
	"testing"

	"github.com/vxtun/vxtun/config"
)

func TestApply(t *testing.T) {
	set := map[string]config.Peer{}
	got := Apply(set, Update{Full: true, Peers: []config.Peer{{Name: "b"}, {Name: "a"}}})
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("got %v, want [a b]", got)
	}
	got = Apply(set, Update{Events: []Event{
		{Type: PeerRemoved, Peer: config.Peer{Name: "a"}},
		{Type: PeerAdded, Peer: config.Peer{Name: "c"}},
		{Type: PeerUpdated, Peer: config.Peer{Name: "b", VNI: 7}},
	}})
	if len(got) != 2 || got[0].Name != "b" || got[0].VNI != 7 || got[1].Name != "c" {
		t.Fatalf("got %v, want [b(VNI 7) c]", got)
	}
	got = Apply(set, Update{Full: true})
	if len(got) != 0 {
		t.Fatalf("got %v after empty snapshot, want none", got)
	}
}
