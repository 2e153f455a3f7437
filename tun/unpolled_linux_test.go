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
	nettest.RerunWith(t, &unpolled,
		nettest.NamedTest{Name: "CloseUnblocksRead", Fn: TestCloseUnblocksRead},
		nettest.NamedTest{Name: "DeletedDeviceIsFinal", Fn: TestDeletedDeviceIsFinal},
		nettest.NamedTest{Name: "ReadDeadlineWakesRead", Fn: TestReadDeadlineWakesRead},
		nettest.NamedTest{Name: "TCPOverTunPair", Fn: TestTCPOverTunPair},
		nettest.NamedTest{Name: "UDPOverTunPair", Fn: TestUDPOverTunPair},
		nettest.NamedTest{Name: "WriteNoAlloc", Fn: TestWriteNoAlloc},
		nettest.NamedTest{Name: "ReadNoAlloc", Fn: TestReadNoAlloc},
		nettest.NamedTest{Name: "ReadBatchesQueuedFrames", Fn: TestReadBatchesQueuedFrames},
		nettest.NamedTest{Name: "TryReadWaitRead", Fn: TestTryReadWaitRead},
	)
	t.Run("OutsidePoller", func(t *testing.T) {
		nettest.RequirePrivileged(t)
		ns := nettest.NewNS(t, "tunup")
		polled := openIn(t, ns, "vxp0", 1, Options{})
		m := openIn(t, ns, "vxu0", 2, Options{Unpolled: true})
		fd := func(q *Queue) int { return nettest.RawFd(t, q.rc) }
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
