package etcdtest

import (
	"testing"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestStartInNamespace: a server inside a test namespace, on the
// namespace's underlay address, reached by a client dialing from there.
func TestStartInNamespace(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	s := StartWith(t, Options{Host: "198.18.0.1", Do: h.A.Do})
	if got := s.Endpoints()[0]; got[:len("http://198.18.0.1:")] != "http://198.18.0.1:" {
		t.Fatalf("got endpoint %s, want http://198.18.0.1:<port>", got)
	}
	c := s.Client(t)
	Put(t, c, "/ns", "ok")
	s.Stop()
	s.Restart() // through Options.Do again: back inside the namespace
	Put(t, c, "/ns", "again")
}
