package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/nettest"
)

// listenIn opens a Conn inside ns and closes it in t.Cleanup.
func listenIn(t testing.TB, ns *nettest.NS, laddr string, opts *Options) *Conn {
	t.Helper()
	var c *Conn
	if unpolled {
		o := Options{}
		if opts != nil {
			o = *opts
		}
		o.Unpolled = true
		opts = &o
	}
	err := ns.Do(func() error {
		var err error
		c, err = Listen(netip.MustParseAddrPort(laddr), opts)
		return err
	})
	if err != nil {
		t.Fatalf("Listen %s in %s: %v", laddr, ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pattern fills datagram i of a test with bytes that identify it.
func pattern(n, i int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return b
}

// readDatagrams reads until want datagrams arrived (splitting GRO buffers)
// or the deadline passes; it returns the datagrams and how many GRO
// buffers (SegmentSize > 0) were seen.
func readDatagrams(t testing.TB, c *Conn, want int) (got [][]byte, groBufs int, from netip.AddrPort) {
	t.Helper()
	msgs := make([]Message, 8)
	for i := range msgs {
		msgs[i].Buf = make([]byte, MaxRead)
	}
	timer := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer timer.Stop()
	for len(got) < want {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), want, err)
		}
		for _, m := range msgs[:n] {
			if m.Trunc {
				t.Fatalf("message truncated (N=%d)", m.N)
			}
			if m.SegmentSize > 0 && m.N > m.SegmentSize {
				groBufs++
			}
			from = m.From
			for _, d := range m.Datagrams(nil) {
				got = append(got, append([]byte(nil), d...))
			}
		}
	}
	return got, groBufs, from
}

func checkSame(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: got %d bytes %x…, want %d bytes %x…", i, len(got[i]), got[i][:min(8, len(got[i]))], len(want[i]), want[i][:min(8, len(want[i]))])
		}
	}
}

// TestGSOAcrossVeth: a GSO send of N segments over the two-host underlay
// arrives as N datagrams (receiver without GRO) or as GRO buffers that split
// back into the same bytes (receiver with GRO); also with GSO off, where
// WriteBatch splits the message itself.
func TestGSOAcrossVeth(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	for _, tc := range []struct {
		name         string
		send, recv   Options
		expectGROBuf bool
	}{
		{"gso to gro", Options{RequireGSO: true}, Options{RequireGRO: true}, true},
		{"gso to plain", Options{RequireGSO: true}, Options{DisableGRO: true}, false},
		{"split to gro", Options{DisableGSO: true}, Options{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx := listenIn(t, h.B, "198.18.0.2:0", &tc.recv)
			tx := listenIn(t, h.A, "198.18.0.1:0", &tc.send)
			if tx.GSO() != !tc.send.DisableGSO {
				t.Fatalf("sender GSO() = %v, want %v", tx.GSO(), !tc.send.DisableGSO)
			}
			dst := NewAddr(rx.LocalAddr())
			const n, size = 40, 1400
			var want [][]byte
			for i := 0; i < n; i++ {
				want = append(want, pattern(size, i))
			}
			want[n-1] = want[n-1][:333] // short last segment
			msgs := AppendGSO(nil, want, &dst)
			if len(msgs) != 1 || msgs[0].SegmentSize != size {
				t.Fatalf("AppendGSO: got %d messages (seg %d), want 1 of %d", len(msgs), msgs[0].SegmentSize, size)
			}
			if sent, err := tx.WriteBatch(msgs); sent != 1 || err != nil {
				t.Fatalf("WriteBatch: got %d, %v; want 1, nil", sent, err)
			}
			got, groBufs, from := readDatagrams(t, rx, n)
			checkSame(t, got, want)
			if from != tx.LocalAddr() {
				t.Errorf("source: got %s, want %s", from, tx.LocalAddr())
			}
			if tc.expectGROBuf && groBufs == 0 {
				t.Errorf("receiver with GRO saw no coalesced buffer")
			}
			if !tc.expectGROBuf && !rx.GRO() && groBufs != 0 {
				t.Errorf("receiver without GRO saw %d coalesced buffers", groBufs)
			}
		})
	}
}

// TestDontFragment: a datagram too large for the 1500-byte underlay fails
// with EMSGSIZE instead of leaving as fragments, and the batch can resume
// after it.
func TestDontFragment(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	rx := listenIn(t, h.B, "198.18.0.2:0", &Options{DisableGRO: true})
	tx := listenIn(t, h.A, "198.18.0.1:0", nil)
	dst := NewAddr(rx.LocalAddr())
	small1, big, small2 := pattern(100, 1), pattern(1500-28+1, 2), pattern(200, 3)
	msgs := []Message{{Buf: small1, Addr: &dst}, {Buf: big, Addr: &dst}, {Buf: small2, Addr: &dst}}
	n, err := tx.WriteBatch(msgs)
	if n != 1 || !errors.Is(err, unix.EMSGSIZE) {
		t.Fatalf("WriteBatch with an oversize datagram: got %d, %v; want 1, EMSGSIZE", n, err)
	}
	if n2, err := tx.WriteBatch(msgs[n+1:]); n2 != 1 || err != nil {
		t.Fatalf("resuming after the oversize datagram: got %d, %v; want 1, nil", n2, err)
	}
	// The largest that fits goes through, and nothing else arrived.
	fit := pattern(1500-28, 4)
	if n, err := tx.WriteBatch([]Message{{Buf: fit, Addr: &dst}}); n != 1 || err != nil {
		t.Fatalf("WriteBatch of a 1472-byte datagram: got %d, %v", n, err)
	}
	got, _, _ := readDatagrams(t, rx, 3)
	checkSame(t, got, [][]byte{small1, small2, fit})
	// The same holds for a GSO segment larger than the MTU (EINVAL from the
	// kernel's GSO checks, or EMSGSIZE).
	if tx.GSO() {
		two := append(pattern(1600, 5), pattern(1600, 6)...)
		_, err := tx.WriteBatch([]Message{{Buf: two, Addr: &dst, SegmentSize: 1600}})
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EMSGSIZE) {
			t.Errorf("GSO with 1600-byte segments over MTU 1500: got %v, want EINVAL or EMSGSIZE", err)
		}
	}
	// With DF in force, an over-MTU send is refused locally, so the peer
	// must not have any reassembly activity.
	out := h.B.Run("cat", "/proc/net/snmp")
	if reasm := snmpField(out, "Ip:", "ReasmReqds"); reasm != "0" {
		t.Errorf("receiver IP ReasmReqds: got %s, want 0 (fragments arrived)", reasm)
	}
}

// TestPathMTU: PathMTU reports the link MTU, then a lower route MTU, and
// sends nothing.
func TestPathMTU(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	rx := listenIn(t, h.B, "198.18.0.2:0", &Options{DisableGRO: true})
	tx := listenIn(t, h.A, "198.18.0.1:0", nil)
	dst := NewAddr(rx.LocalAddr())
	if mtu, err := tx.PathMTU(&dst); err != nil || mtu != 1500 {
		t.Fatalf("path mtu over the veth: got %d, %v; want 1500", mtu, err)
	}
	h.A.Run("ip", "route", "add", "198.18.0.2/32", "dev", "ul0", "mtu", "1400")
	if mtu, err := tx.PathMTU(&dst); err != nil || mtu != 1400 {
		t.Fatalf("path mtu with a 1400-byte route: got %d, %v; want 1400", mtu, err)
	}
	if mtu, err := tx.PathMTU(&Addr{}); err == nil {
		t.Fatalf("path mtu to the zero Addr: got %d, nil; want an error", mtu)
	}
	out := h.B.Run("cat", "/proc/net/snmp")
	if got := snmpField(out, "Udp:", "InDatagrams"); got != "0" {
		t.Errorf("receiver UDP InDatagrams: got %s, want 0 (the probe sent something)", got)
	}
	tx.Close()
	if _, err := tx.PathMTU(&dst); !errors.Is(err, net.ErrClosed) {
		t.Errorf("path mtu after Close: got %v, want net.ErrClosed", err)
	}
}

func snmpField(snmp, prefix, field string) string {
	var names []string
	for _, line := range bytes.Split([]byte(snmp), []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) == 0 || string(f[0]) != prefix {
			continue
		}
		if names == nil {
			for _, x := range f {
				names = append(names, string(x))
			}
			continue
		}
		for i, x := range f {
			if i < len(names) && names[i] == field {
				return string(x)
			}
		}
	}
	return "?"
}

// TestReusePort: two sockets bind the same port; flows from many source
// ports are spread over both.
func TestReusePort(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	rx1 := listenIn(t, h.B, "198.18.0.2:0", &Options{DisableGRO: true})
	port := rx1.LocalAddr().Port()
	rx2 := listenIn(t, h.B, fmt.Sprintf("198.18.0.2:%d", port), &Options{DisableGRO: true})
	if rx2.LocalAddr() != rx1.LocalAddr() {
		t.Fatalf("second socket bound %s, want %s", rx2.LocalAddr(), rx1.LocalAddr())
	}
	// Without SO_REUSEPORT the same bind fails.
	err := h.B.Do(func() error {
		c, err := Listen(rx1.LocalAddr(), &Options{NoReusePort: true})
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind without SO_REUSEPORT: got %v, want EADDRINUSE", err)
	}
	dst := NewAddr(rx1.LocalAddr())
	const flows = 32
	for i := 0; i < flows; i++ {
		tx := listenIn(t, h.A, "198.18.0.1:0", nil)
		if n, err := tx.WriteBatch([]Message{{Buf: pattern(64, i), Addr: &dst}}); n != 1 || err != nil {
			t.Fatalf("flow %d: WriteBatch: %d, %v", i, n, err)
		}
		tx.Close()
	}
	counts := [2]int{}
	deadline := time.Now().Add(5 * time.Second)
	for counts[0]+counts[1] < flows && time.Now().Before(deadline) {
		for i, c := range []*Conn{rx1, rx2} {
			msgs := []Message{{Buf: make([]byte, 2048)}}
			n, err := readNonBlocking(c, msgs)
			if err != nil {
				t.Fatal(err)
			}
			counts[i] += n
		}
	}
	if counts[0]+counts[1] != flows {
		t.Fatalf("received %d+%d datagrams, want %d", counts[0], counts[1], flows)
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Errorf("SO_REUSEPORT did not spread %d flows: %d and %d", flows, counts[0], counts[1])
	}
}

// readNonBlocking is one recvmmsg that does not wait (test helper).
func readNonBlocking(c *Conn, msgs []Message) (int, error) {
	var n int
	var rerr error
	err := c.rc.Control(func(fd uintptr) {
		var buf [MaxRead]byte
		for n < len(msgs) {
			k, _, e := unix.Recvfrom(int(fd), buf[:], unix.MSG_DONTWAIT)
			if e == unix.EAGAIN {
				return
			}
			if e != nil {
				rerr = e
				return
			}
			msgs[n].N = copy(msgs[n].Buf, buf[:k])
			n++
		}
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// TestLoopbackV6 covers the IPv6 socket path (dual stack) on lo: GSO,
// gather lists, and IPv4 through the IPv6 socket.
func TestLoopbackV6(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "u6")
	rx := listenIn(t, ns, "[::]:0", nil)
	// The senders bind without SO_REUSEPORT: an ephemeral bind of a
	// reuseport socket may be given rx's port, and a datagram to it would
	// then go to the more specific sender socket.
	tx := listenIn(t, ns, "[::1]:0", &Options{NoReusePort: true})
	dst := NewAddr(netip.AddrPortFrom(netip.IPv6Loopback(), rx.LocalAddr().Port()))
	var want [][]byte
	for i := 0; i < 10; i++ {
		want = append(want, pattern(1000, i))
	}
	msgs := AppendGSO(nil, want, &dst)
	msgs = append(msgs, Message{Bufs: [][]byte{want[0][:10], want[1][:20]}, Addr: &dst})
	if n, err := tx.WriteBatch(msgs); n != 2 || err != nil {
		t.Fatalf("WriteBatch v6: got %d, %v; want 2, nil", n, err)
	}
	got, _, from := readDatagrams(t, rx, 11)
	checkSame(t, got, append(want, append(append([]byte{}, want[0][:10]...), want[1][:20]...)))
	if from != tx.LocalAddr() {
		t.Errorf("v6 source: got %s, want %s", from, tx.LocalAddr())
	}
	// IPv4 to the dual-stack receiver through a sockaddr_in.
	tx4 := listenIn(t, ns, "127.0.0.1:0", &Options{NoReusePort: true})
	dst4 := NewAddr(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.LocalAddr().Port()))
	if n, err := tx4.WriteBatch([]Message{{Buf: want[3], Addr: &dst4}}); n != 1 || err != nil {
		t.Fatalf("WriteBatch v4→dual stack: %d, %v", n, err)
	}
	got, _, from = readDatagrams(t, rx, 1)
	checkSame(t, got, want[3:4])
	if from != tx4.LocalAddr() {
		t.Errorf("v4-mapped source: got %s, want %s (unmapped)", from, tx4.LocalAddr())
	}
}

// TestSplitFallbackGather: with GSO off, a gather-list message whose
// segment boundaries cross buffer boundaries is split correctly.
func TestSplitFallbackGather(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "us")
	rx := listenIn(t, ns, "127.0.0.1:0", &Options{DisableGRO: true})
	tx := listenIn(t, ns, "127.0.0.1:0", &Options{DisableGSO: true, BatchSize: 8})
	dst := NewAddr(rx.LocalAddr())
	payload := pattern(2500, 9)
	// Buffers of 700, 1, 999, 800 bytes; segments of 600.
	bufs := [][]byte{payload[:700], payload[700:701], payload[701:1700], payload[1700:]}
	msgs := []Message{
		{Bufs: bufs, Addr: &dst, SegmentSize: 600},
		{Buf: payload[:1234], Addr: &dst, SegmentSize: 500},
		{Buf: payload[:10], Addr: &dst},
	}
	n, err := tx.WriteBatch(msgs)
	if n != 3 || err != nil {
		t.Fatalf("WriteBatch: got %d, %v; want 3, nil", n, err)
	}
	var want [][]byte
	for off := 0; off < 2500; off += 600 {
		want = append(want, payload[off:min(off+600, 2500)])
	}
	for off := 0; off < 1234; off += 500 {
		want = append(want, payload[off:min(off+500, 1234)])
	}
	want = append(want, payload[:10])
	got, _, _ := readDatagrams(t, rx, len(want))
	checkSame(t, got, want)
}

// TestSteadyStateAllocs: WriteBatch and ReadBatch allocate nothing per batch.
func TestSteadyStateAllocs(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "ua")
	for _, o := range []Options{{}, {DisableGSO: true, DisableGRO: true}} {
		rx := listenIn(t, ns, "127.0.0.1:0", &o)
		tx := listenIn(t, ns, "127.0.0.1:0", &o)
		dst := NewAddr(rx.LocalAddr())
		var dgrams [][]byte
		for i := 0; i < 16; i++ {
			dgrams = append(dgrams, pattern(1200, i))
		}
		smsgs := make([]Message, 0, 16)
		rmsgs := make([]Message, 16)
		for i := range rmsgs {
			rmsgs[i].Buf = make([]byte, MaxRead)
		}
		var segs [][]byte
		allocs := testing.AllocsPerRun(200, func() {
			smsgs = AppendGSO(smsgs[:0], dgrams, &dst)
			if _, err := tx.WriteBatch(smsgs); err != nil {
				t.Fatal(err)
			}
			got := 0
			for got < len(dgrams) {
				n, err := rx.ReadBatch(rmsgs)
				if err != nil {
					t.Fatal(err)
				}
				for i := range rmsgs[:n] {
					segs = rmsgs[i].Datagrams(segs[:0])
					got += len(segs)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("options %+v: got %v allocs per batch round trip, want 0", o, allocs)
		}
	}
}

// TestCloseUnblocksRead: Close makes a blocked ReadBatch return.
func TestCloseUnblocksRead(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "uc")
	c := listenIn(t, ns, "127.0.0.1:0", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.ReadBatch([]Message{{Buf: make([]byte, 100)}})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("ReadBatch after Close: got nil error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked 5s after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestWriteBatchBadMessage: an invalid message in the middle of a batch is
// reported at its index after the messages before it were sent.
func TestWriteBatchBadMessage(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "ub")
	rx := listenIn(t, ns, "127.0.0.1:0", &Options{DisableGRO: true})
	tx := listenIn(t, ns, "127.0.0.1:0", nil)
	dst := NewAddr(rx.LocalAddr())
	a, c := pattern(10, 1), pattern(20, 2)
	for _, bad := range []Message{
		{Buf: []byte{1}},
		{Buf: []byte{1}, Addr: &Addr{}},
		{Buf: []byte{1}, Addr: &dst, SegmentSize: -1},
	} {
		msgs := []Message{{Buf: a, Addr: &dst}, bad, {Buf: c, Addr: &dst}}
		n, err := tx.WriteBatch(msgs)
		if n != 1 || !errors.Is(err, ErrBadMessage) {
			t.Fatalf("WriteBatch with bad message %+v: got %d, %v; want 1, ErrBadMessage", bad, n, err)
		}
		if n, err := tx.WriteBatch(msgs[2:]); n != 1 || err != nil {
			t.Fatalf("resume: got %d, %v", n, err)
		}
		got, _, _ := readDatagrams(t, rx, 2)
		checkSame(t, got, [][]byte{a, c})
	}
}

// TestDontFragmentV6: the dual-stack IPv6 socket refuses over-MTU datagrams
// too, for IPv6 destinations and for IPv4 ones sent through it.
func TestDontFragmentV6(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "u6df")
	ns.Run("ip", "link", "set", "lo", "mtu", "1500")
	rx := listenIn(t, ns, "[::]:0", &Options{DisableGRO: true})
	tx := listenIn(t, ns, "[::]:0", nil)
	port := rx.LocalAddr().Port()
	for _, tc := range []struct {
		dst      string
		overhead int
	}{{"::1", 48}, {"127.0.0.1", 28}} {
		dst := NewAddr(netip.AddrPortFrom(netip.MustParseAddr(tc.dst), port))
		fit, big := pattern(1500-tc.overhead, 1), pattern(1500-tc.overhead+1, 2)
		if n, err := tx.WriteBatch([]Message{{Buf: big, Addr: &dst}}); n != 0 || !errors.Is(err, unix.EMSGSIZE) {
			t.Errorf("to %s: %d-byte datagram over MTU 1500: got %d, %v; want 0, EMSGSIZE", tc.dst, len(big), n, err)
		}
		if n, err := tx.WriteBatch([]Message{{Buf: fit, Addr: &dst}}); n != 1 || err != nil {
			t.Fatalf("to %s: %d-byte datagram: got %d, %v; want 1, nil", tc.dst, len(fit), n, err)
		}
		got, _, _ := readDatagrams(t, rx, 1)
		checkSame(t, got, [][]byte{fit})
	}
}

// TestGSOEIOFallback: when the kernel refuses a GSO send with EIO, the Conn
// turns GSO off and resends the same messages as separate datagrams.
func TestGSOEIOFallback(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "ue")
	rx := listenIn(t, ns, "127.0.0.1:0", &Options{DisableGRO: true})
	tx := listenIn(t, ns, "127.0.0.1:0", &Options{RequireGSO: true})
	tx.injectGSOEIO = true
	dst := NewAddr(rx.LocalAddr())
	first := pattern(50, 0)
	var run [][]byte
	for i := 1; i <= 5; i++ {
		run = append(run, pattern(300, i))
	}
	msgs := append([]Message{{Buf: first, Addr: &dst}}, AppendGSO(nil, run, &dst)...)
	if n, err := tx.WriteBatch(msgs); n != 2 || err != nil {
		t.Fatalf("WriteBatch: got %d, %v; want 2, nil", n, err)
	}
	if tx.GSO() {
		t.Error("GSO() still true after EIO")
	}
	got, _, _ := readDatagrams(t, rx, 6)
	checkSame(t, got, append([][]byte{first}, run...))
}

// TestGROTruncated: a GRO buffer that does not fit the receive buffer is
// reported with Trunc.
func TestGROTruncated(t *testing.T) {
	nettest.RequirePrivileged(t)
	h := nettest.NewTwoHosts(t)
	rx := listenIn(t, h.B, "198.18.0.2:0", &Options{RequireGRO: true})
	tx := listenIn(t, h.A, "198.18.0.1:0", &Options{RequireGSO: true})
	dst := NewAddr(rx.LocalAddr())
	var run [][]byte
	for i := 0; i < 8; i++ {
		run = append(run, pattern(1000, i))
	}
	if n, err := tx.WriteBatch(AppendGSO(nil, run, &dst)); n != 1 || err != nil {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	msgs := []Message{{Buf: make([]byte, 2500)}}
	n, err := rx.ReadBatch(msgs)
	if n != 1 || err != nil {
		t.Fatalf("ReadBatch: %d, %v", n, err)
	}
	m := msgs[0]
	if m.SegmentSize != 1000 || !m.Trunc || m.N != 2500 {
		t.Errorf("small buffer for an 8000-byte GRO buffer: got N %d seg %d trunc %v, want N 2500 seg 1000 trunc true", m.N, m.SegmentSize, m.Trunc)
	}
}

// TestSocketBuffers: Listen gets the buffer sizes it asks for (root may
// exceed rmem_max through SO_RCVBUFFORCE).
func TestSocketBuffers(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "ubuf")
	c := listenIn(t, ns, "127.0.0.1:0", &Options{RecvBuffer: 16 << 20, SendBuffer: 12 << 20})
	var rcv, snd int
	var gerr error
	if err := c.rc.Control(func(fd uintptr) {
		rcv, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if gerr == nil {
			snd, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		}
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	// The kernel reports double the requested size (bookkeeping overhead).
	if rcv < 16<<20 || snd < 12<<20 {
		t.Errorf("buffers: got rcv %d snd %d, want at least %d and %d", rcv, snd, 16<<20, 12<<20)
	}
}

// TestRxQueueOverflows: datagrams the kernel drops for a full receive
// buffer show in RxQueueOverflows once the next datagram is read.
func TestRxQueueOverflows(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "uo")
	rx := listenIn(t, ns, "127.0.0.1:0", &Options{RecvBuffer: 4096, DisableGRO: true})
	tx := listenIn(t, ns, "127.0.0.1:0", &Options{DisableGSO: true})
	dst := NewAddr(rx.LocalAddr())
	const sent = 200
	msgs := make([]Message, sent)
	for i := range msgs {
		msgs[i] = Message{Buf: pattern(1000, i), Addr: &dst}
	}
	if _, err := tx.WriteBatch(msgs); err != nil {
		t.Fatal(err)
	}
	rmsgs := make([]Message, 64)
	for i := range rmsgs {
		rmsgs[i].Buf = make([]byte, 2048)
	}
	// Read what the buffer kept: everything queued before the first drop.
	got := 0
	for got < sent {
		deadline := time.Now().Add(200 * time.Millisecond)
		setReadDeadline(rx, deadline)
		n, err := rx.ReadBatch(rmsgs)
		if err != nil {
			break
		}
		got += n
	}
	setReadDeadline(rx, time.Time{})
	if got == 0 || got >= sent {
		t.Fatalf("got %d of %d datagrams through a 4 KiB buffer, want some dropped", got, sent)
	}
	if n := rx.RxQueueOverflows(); n != 0 {
		t.Errorf("before the next datagram: got %d overflows, want 0 (not yet reported)", n)
	}
	if _, err := tx.WriteBatch(msgs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.ReadBatch(rmsgs); err != nil {
		t.Fatal(err)
	}
	if got, want := rx.RxQueueOverflows(), uint64(sent-got); got != want {
		t.Errorf("got %d overflows, want %d (sent %d, received %d)", got, want, sent, sent-int(want))
	}
}

// TestSendOnly: a send-only socket sends from its own port and queues
// nothing sent to it.
func TestSendOnly(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "uso")
	rx := listenIn(t, ns, "127.0.0.1:0", nil)
	so := listenIn(t, ns, "127.0.0.1:0", &Options{SendOnly: true, NoReusePort: true})
	if so.LocalAddr().Port() == 0 || so.LocalAddr().Port() == rx.LocalAddr().Port() {
		t.Fatalf("send-only port %d, receiver %d: want a port of its own", so.LocalAddr().Port(), rx.LocalAddr().Port())
	}
	if so.GRO() {
		t.Errorf("send-only socket has GRO on")
	}
	dst := NewAddr(rx.LocalAddr())
	if _, err := so.WriteBatch([]Message{{Buf: pattern(100, 1), Addr: &dst}}); err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Buf: make([]byte, 2048)}}
	if _, err := rx.ReadBatch(msgs); err != nil {
		t.Fatal(err)
	}
	if msgs[0].From != so.LocalAddr() || msgs[0].N != 100 {
		t.Errorf("got %d bytes from %v, want 100 from %v", msgs[0].N, msgs[0].From, so.LocalAddr())
	}
	// Datagrams to the send-only socket are dropped by its filter: a read
	// finds nothing (the deadline only ends the wait).
	back := NewAddr(so.LocalAddr())
	if _, err := rx.WriteBatch([]Message{{Buf: pattern(100, 2), Addr: &back}, {Buf: pattern(100, 3), Addr: &back}}); err != nil {
		t.Fatal(err)
	}
	setReadDeadline(so, time.Now().Add(100*time.Millisecond))
	if n, err := so.ReadBatch(msgs); err == nil {
		t.Errorf("send-only socket received %d messages, want none", n)
	}
}

// setReadDeadline sets the read deadline of c's socket, polled or not.
func setReadDeadline(c *Conn, t time.Time) {
	_ = c.sock.(interface{ SetReadDeadline(time.Time) error }).SetReadDeadline(t)
}

// unpolled makes listenIn open sockets with Options.Unpolled
// (TestUnpolled).
var unpolled bool

// TestUnpolled runs the socket tests again on sockets outside the runtime
// poller (Options.Unpolled), and checks that they are outside it and that
// waits and Close behave as with the poller.
func TestUnpolled(t *testing.T) {
	nettest.RerunWith(t, &unpolled,
		nettest.NamedTest{Name: "GSOAcrossVeth", Fn: TestGSOAcrossVeth},
		nettest.NamedTest{Name: "DontFragment", Fn: TestDontFragment},
		nettest.NamedTest{Name: "PathMTU", Fn: TestPathMTU},
		nettest.NamedTest{Name: "ReusePort", Fn: TestReusePort},
		nettest.NamedTest{Name: "LoopbackV6", Fn: TestLoopbackV6},
		nettest.NamedTest{Name: "SteadyStateAllocs", Fn: TestSteadyStateAllocs},
		nettest.NamedTest{Name: "CloseUnblocksRead", Fn: TestCloseUnblocksRead},
		nettest.NamedTest{Name: "DontFragmentV6", Fn: TestDontFragmentV6},
		nettest.NamedTest{Name: "SendOnly", Fn: TestSendOnly},
		nettest.NamedTest{Name: "RxQueueOverflows", Fn: TestRxQueueOverflows},
	)
	t.Run("OutsidePoller", func(t *testing.T) {
		nettest.RequirePrivileged(t)
		ns := nettest.NewNS(t, "up")
		polled := listenIn(t, ns, "127.0.0.1:0", nil)
		c := listenIn(t, ns, "127.0.0.1:0", &Options{Unpolled: true})
		fd := func(c *Conn) int { return nettest.RawFd(t, c.rc) }
		set := nettest.EpollTargets(t)
		if !set[fd(polled)] {
			t.Fatalf("control: a default socket (fd %d) is not in the runtime's epoll set %v", fd(polled), set)
		}
		if set[fd(c)] {
			t.Errorf("got the unpolled socket (fd %d) in the runtime's epoll set, want it outside", fd(c))
		}
		// WaitRead wakes for a datagram that arrives later; TryReadBatch
		// then reads it.
		waited := make(chan error, 1)
		go func() { waited <- c.WaitRead() }()
		time.Sleep(20 * time.Millisecond)
		dst := NewAddr(c.LocalAddr())
		if _, err := polled.WriteBatch([]Message{{Buf: pattern(100, 1), Addr: &dst}}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-waited:
			if err != nil {
				t.Fatalf("WaitRead: got %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitRead did not return for a datagram")
		}
		msgs := []Message{{Buf: make([]byte, MaxRead)}}
		if n, err := c.TryReadBatch(msgs); n != 1 || err != nil || !bytes.Equal(msgs[0].Buf[:msgs[0].N], pattern(100, 1)) {
			t.Fatalf("TryReadBatch: got %d, %v, want the datagram", n, err)
		}
		if n, err := c.TryReadBatch(msgs); n != 0 || err != nil {
			t.Fatalf("TryReadBatch on an empty socket: got %d, %v, want 0, nil", n, err)
		}
		// Close ends a waiting WaitRead with net.ErrClosed.
		go func() { waited <- c.WaitRead() }()
		time.Sleep(20 * time.Millisecond)
		c.Close()
		select {
		case err := <-waited:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("WaitRead after Close: got %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitRead still waiting 5 s after Close")
		}
	})
}
