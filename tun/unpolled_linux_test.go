package tun

import (
	"testing"

	"github.com/vxtun/vxtun/internal/nettest"
)

// unpolled makes openIn open queues with Options.Unpolled (TestUnpolled).
var unpolled bool

// TestUnpolled runs the queue tests again on queues outside the runtime
// poller (Options.Unpolled) and checks that they are outside it.
func TestUnpolled(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"CloseUnblocksRead", TestCloseUnblocksRead},
		{"DeletedDeviceIsFinal", TestDeletedDeviceIsFinal},
		{"ReadDeadlineWakesRead", TestReadDeadlineWakesRead},
		{"TCPOverTunPair", TestTCPOverTunPair},
		{"UDPOverTunPair", TestUDPOverTunPair},
		{"WriteNoAlloc", TestWriteNoAlloc},
		{"ReadNoAlloc", TestReadNoAlloc},
		{"ReadBatchesQueuedFrames", TestReadBatchesQueuedFrames},
		{"TryReadWaitRead", TestTryReadWaitRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unpolled = true
			defer func() { unpolled = false }()
			tc.fn(t)
		})
	}
	t.Run("OutsidePoller", func(t *testing.T) {
		nettest.RequirePrivileged(t)
		ns := nettest.NewNS(t, "tunup")
		polled := openIn(t, ns, "vxp0", 1, Options{})
		m := openIn(t, ns, "vxu0", 2, Options{Unpolled: true})
		fd := func(q *Queue) (n int) {
			q.rc.Control(func(f uintptr) { n = int(f) })
			return n
		}
		set := nettest.EpollTargets(t)
		if !set[fd(polled.Queues()[0])] {
			t.Fatalf("control: a default queue (fd %d) is not in the runtime's epoll set %v", fd(polled.Queues()[0]), set)
		}
		for i, q := range m.Queues() {
			if set[fd(q)] {
				t.Errorf("queue %d: got fd %d in the runtime's epoll set, want it outside", i, fd(q))
			}
		}
	})
}
