package tun

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/internal/nettest"
	"golang.org/x/sys/unix"
)

// openIn opens a TUN in ns.
func openIn(t testing.TB, ns *nettest.NS, name string, queues int, opts Options) *Multi {
	t.Helper()
	var m *Multi
	opts.Unpolled = opts.Unpolled || unpolled
	if err := ns.Do(func() error {
		var err error
		m, err = Open(name, queues, opts)
		return err
	}); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// configureIn configures the link name in ns through hostnet, as the
// dataplane does; the returned Host undoes it.
func configureIn(t testing.TB, ns *nettest.NS, name string, mtu int, addrs, routes []netip.Prefix) hostnet.Host {
	t.Helper()
	h := hostnet.New()
	if err := ns.Do(func() error {
		return h.ConfigureLink(hostnet.Link{Name: name, MTU: mtu, TxQueueLen: TxQueueLen, Addrs: addrs, Routes: routes})
	}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	return h
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func TestOpenConfigure(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	m := openIn(t, ns, "vxt0", 2, Options{})
	t.Logf("offloads on this kernel: %v", m.Offloads())
	want := OffloadVnetHdr | OffloadCsum | OffloadTSO | OffloadMultiQueue
	if m.Offloads()&want != want {
		t.Fatalf("offloads: got %v, want at least %v", m.Offloads(), want)
	}
	if m.Name() != "vxt0" || len(m.Queues()) != 2 || len(m.Devices()) != 2 {
		t.Fatalf("got name %q and %d queues, want vxt0 and 2", m.Name(), len(m.Queues()))
	}
	if q := m.Queues()[0]; q.BatchSize() != DefaultBatchSize || q.Name() != "vxt0" {
		t.Fatalf("queue: got batch %d name %q", q.BatchSize(), q.Name())
	}
	addr := netip.MustParsePrefix("198.19.1.0/32")
	route := netip.MustParsePrefix("198.19.0.0/16")
	l := configureIn(t, ns, "vxt0", 1400, []netip.Prefix{addr}, []netip.Prefix{route})
	if mtu, err := m.Queues()[1].MTU(); err != nil || mtu != 1400 {
		t.Fatalf("mtu: got %d, %v; want 1400", mtu, err)
	}
	h := ns.Handle()
	link, err := h.LinkByName("vxt0")
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("link not up")
	}
	if got := link.Attrs().TxQLen; got != TxQueueLen {
		t.Fatalf("txqueuelen: got %d, want %d", got, TxQueueLen)
	}
	countAddrs := func() int {
		as, err := h.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}
	countRoutes := func() int {
		rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixNet(route)}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if a, r := countAddrs(), countRoutes(); a != 1 || r != 1 {
		t.Fatalf("after configure: got %d addresses, %d routes; want 1, 1", a, r)
	}
	// Configuring again is accepted (nothing new added).
	l2 := configureIn(t, ns, "vxt0", 1400, []netip.Prefix{addr}, []netip.Prefix{route})
	if got := l2.Changes(); len(got) != 0 {
		t.Fatalf("second configure claims to have changed %q", got)
	}
	if err := ns.Do(l.Close); err != nil {
		t.Fatalf("unconfigure: %v", err)
	}
	if a, r := countAddrs(), countRoutes(); a != 0 || r != 0 {
		t.Fatalf("after unconfigure: got %d addresses, %d routes; want 0, 0", a, r)
	}
	l3 := configureIn(t, ns, "vxt0", 1400, []netip.Prefix{addr}, []netip.Prefix{route})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("vxt0"); err == nil {
		t.Fatalf("link still exists after closing the last queue")
	}
	if err := ns.Do(l3.Close); err != nil {
		t.Fatalf("close of a host whose link was removed: got %v, want nil", err)
	}
}

// blockedRead starts a Read on q and returns its result channel once the
// Read has had time to block.
func blockedRead(q *Queue) <-chan error {
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(q.BatchSize(), 2048)
		_, err := q.Read(bufs, sizes, 0)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	return errc
}

func TestCloseUnblocksRead(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	for _, opts := range []Options{{}, {NoVnetHdr: true}} {
		m := openIn(t, ns, "", 1, opts)
		q := m.Queues()[0]
		errc := blockedRead(q)
		m.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("%+v: read after close: got %v, want os.ErrClosed", opts, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%+v: Close did not unblock Read", opts)
		}
	}
}

// TestDeletedDeviceIsFinal: a TUN deleted under an open queue (ip link del)
// wakes a blocked Read with ErrDeviceRemoved, and Write reports it too, so
// the forwarder stops at once with an accurate message.
func TestDeletedDeviceIsFinal(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	for _, opts := range []Options{{}, {NoVnetHdr: true}} {
		m := openIn(t, ns, "vxdel0", 1, opts)
		q := m.Queues()[0]
		errc := blockedRead(q)
		ns.Run("ip", "link", "del", "vxdel0")
		select {
		case err := <-errc:
			if !errors.Is(err, ErrDeviceRemoved) {
				t.Fatalf("%+v: read after delete: got %v, want ErrDeviceRemoved", opts, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%+v: deleting the device did not unblock Read", opts)
		}
		pkt := make([]byte, 40)
		pkt[0] = 0x45
		if _, err := q.Write([][]byte{pkt}, 0); !errors.Is(err, ErrDeviceRemoved) {
			t.Fatalf("%+v: write after delete: got %v, want ErrDeviceRemoved", opts, err)
		}
		m.Close()
	}
}

// TestReadDeadlineWakesRead: SetReadDeadline wakes a blocked Read with
// os.ErrDeadlineExceeded without closing the queue, and once cleared the
// queue reads again.
func TestReadDeadlineWakesRead(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	for _, opts := range []Options{{}, {NoVnetHdr: true}} {
		m := openIn(t, ns, "vxt0", 1, opts)
		configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
		q := m.Queues()[0]
		bufs, sizes := makeBufs(q.BatchSize(), 2048)
		errc := make(chan error, 1)
		go func() {
			for { // the new link may send a packet or two of its own
				if _, err := q.Read(bufs, sizes, 0); err != nil {
					errc <- err
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		if err := q.SetReadDeadline(time.Now()); err != nil {
			t.Fatalf("%+v: SetReadDeadline: %v", opts, err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%+v: read after deadline: got %v, want os.ErrDeadlineExceeded", opts, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%+v: SetReadDeadline did not unblock Read", opts)
		}
		if err := q.SetReadDeadline(time.Time{}); err != nil {
			t.Fatalf("%+v: clear deadline: %v", opts, err)
		}
		// The queue still works: a datagram routed into the TUN is read.
		if err := ns.Do(func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 5), Port: 9})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("after deadline"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := q.Read(bufs, sizes, 0)
			if err != nil {
				t.Fatalf("%+v: read after clearing the deadline: %v", opts, err)
			}
			if p := bufs[n-1][:sizes[n-1]]; len(p) > 28 && p[9] == encap.ProtocolUDP {
				if got := string(p[28:]); got != "after deadline" {
					t.Fatalf("%+v: got payload %q, want %q", opts, got, "after deadline")
				}
				break
			}
		}
		m.Close()
		if err := q.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("%+v: deadline on a closed queue: got %v, want os.ErrClosed", opts, err)
		}
	}
}

// shuttle forwards every packet read from one queue to another until either
// is closed.
func shuttle(from, to *Queue, batch int, wg *sync.WaitGroup) {
	defer wg.Done()
	const offset = 32
	if batch == 0 {
		batch = from.BatchSize()
	}
	bufs, sizes := makeBufs(batch, offset+9000)
	pkts := make([][]byte, len(bufs))
	for {
		n, err := from.Read(bufs, sizes, offset)
		if err != nil {
			return
		}
		for i := range n {
			pkts[i] = bufs[i][:offset+sizes[i]]
		}
		if _, err := to.Write(pkts[:n], offset); err != nil {
			return
		}
	}
}

// tunPair builds two namespaces, each with a TUN, and shuttles packets
// between the TUNs: 198.19.1.1 (in A) and 198.19.2.1 (in B) reach each
// other through Read/Write of this package.
func tunPair(t testing.TB, queues int, optsA, optsB Options) (a, b *nettest.NS, ma, mb *Multi) {
	return tunPairBatch(t, queues, 0, optsA, optsB)
}

// tunPairBatch is tunPair with the shuttle reading batch packets at a time
// (0: BatchSize).
func tunPairBatch(t testing.TB, queues, batch int, optsA, optsB Options) (a, b *nettest.NS, ma, mb *Multi) {
	nettest.RequirePrivileged(t)
	a, b = nettest.NewNS(t, "tuna"), nettest.NewNS(t, "tunb")
	ma = openIn(t, a, "vxt0", queues, optsA)
	mb = openIn(t, b, "vxt0", queues, optsB)
	t.Logf("offloads A %v, B %v", ma.Offloads(), mb.Offloads())
	configureIn(t, a, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
	configureIn(t, b, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.2.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")})
	var wg sync.WaitGroup
	for i := range queues {
		wg.Add(2)
		go shuttle(ma.Queues()[i], mb.Queues()[i], batch, &wg)
		go shuttle(mb.Queues()[i], ma.Queues()[i], batch, &wg)
	}
	t.Cleanup(func() {
		ma.Close()
		mb.Close()
		wg.Wait()
	})
	return a, b, ma, mb
}

// tcpEcho sends size bytes from A to an echo server in B and checks that
// the same bytes (by hash) arrive in B and come back.
func tcpEcho(t *testing.T, a, b *nettest.NS, size int) {
	t.Helper()
	x := nettest.Transfer{Dst: netip.MustParseAddr("198.19.2.1"), Size: int64(size), Seed: 1}
	if _, err := x.Echo(context.Background(), a, b); err != nil {
		t.Fatal(err)
	}
}

func sumStats(m *Multi) Stats {
	var s Stats
	for _, q := range m.Queues() {
		x := q.Stats()
		s.BadFrames += x.BadFrames
		s.WriteErrors += x.WriteErrors
		s.GSOFrames += x.GSOFrames
		s.SuperWrites += x.SuperWrites
	}
	return s
}

// TestTCPOverTunPair: 24 MiB each way through two real TUNs with offloads.
// The kernel hands super-packets to Read (TSO), the shuttle writes them
// coalesced again (GRO); the content hash proves both ends.
func TestTCPOverTunPair(t *testing.T) {
	a, b, ma, mb := tunPair(t, 2, Options{}, Options{})
	start := time.Now()
	const size = 24 << 20
	tcpEcho(t, a, b, size)
	sa, sb := sumStats(ma), sumStats(mb)
	el := time.Since(start)
	t.Logf("%d MiB each way in %v (%.2f Gbit/s each way); A %+v; B %+v", size>>20, el, float64(size)*8/el.Seconds()/1e9, sa, sb)
	if sa.GSOFrames == 0 || sb.GSOFrames == 0 {
		t.Errorf("super-packets read: A %d, B %d; want > 0 on both", sa.GSOFrames, sb.GSOFrames)
	}
	if sa.SuperWrites == 0 || sb.SuperWrites == 0 {
		t.Errorf("super-packets written: A %d, B %d; want > 0 on both", sa.SuperWrites, sb.SuperWrites)
	}
	if sa.BadFrames+sb.BadFrames+sa.WriteErrors+sb.WriteErrors != 0 {
		t.Errorf("drops: A %+v, B %+v; want none", sa, sb)
	}
}

// TestTCPOverTunPairSmallBatch: with 3 buffers per Read a super-packet is
// returned over many Reads.
func TestTCPOverTunPairSmallBatch(t *testing.T) {
	a, b, ma, _ := tunPairBatch(t, 1, 3, Options{}, Options{})
	tcpEcho(t, a, b, 4<<20)
	if s := sumStats(ma); s.GSOFrames == 0 || s.BadFrames != 0 {
		t.Fatalf("stats %+v: want super-packets and no bad frames", s)
	}
}

// TestTCPOverTunPairNoVnetHdr: the same without the virtio-net header, one
// packet per read and write; and a mixed pair.
func TestTCPOverTunPairNoVnetHdr(t *testing.T) {
	for _, c := range []struct {
		name   string
		oa, ob Options
	}{
		{"both", Options{NoVnetHdr: true}, Options{NoVnetHdr: true}},
		{"mixed", Options{}, Options{NoVnetHdr: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, ma, mb := tunPair(t, 1, c.oa, c.ob)
			if c.oa.NoVnetHdr && ma.Offloads()&OffloadVnetHdr != 0 {
				t.Fatalf("offloads: got %v, want no vnet_hdr", ma.Offloads())
			}
			if mb.Queues()[0].BatchSize() != 1 {
				t.Fatalf("batch size without vnet_hdr: got %d, want 1", mb.Queues()[0].BatchSize())
			}
			tcpEcho(t, a, b, 4<<20)
			if s := sumStats(mb); s.GSOFrames != 0 || s.SuperWrites != 0 {
				t.Fatalf("no-vnet device did offload: %+v", s)
			}
		})
	}
}

// TestUDPOverTunPair: a UDP_SEGMENT sender in A makes the kernel hand
// GSO_UDP_L4 super-packets to the TUN (USO); Read splits them, Write
// coalesces them again, and a plain UDP socket in B gets intact datagrams.
func TestUDPOverTunPair(t *testing.T) {
	a, b, ma, mb := tunPair(t, 1, Options{}, Options{})
	if ma.Offloads()&OffloadUSO == 0 {
		t.Skipf("kernel did not grant USO (%v)", ma.Offloads())
	}
	var rc *net.UDPConn
	if err := b.Do(func() error {
		var err error
		rc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 19, 2, 1)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetReadBuffer(8 << 20)
	var sc *net.UDPConn
	if err := a.Do(func() error {
		var err error
		sc, err = net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	const seg, perSend, sends = 1400, 40, 50
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg)
	}); err != nil || serr != nil {
		t.Fatalf("UDP_SEGMENT: %v %v", err, serr)
	}
	datagram := func(i int) []byte {
		d := pattern(seg, byte(i))
		binary.BigEndian.PutUint32(d, uint32(i))
		return d
	}
	go func() {
		buf := make([]byte, 0, seg*perSend)
		for s := range sends {
			buf = buf[:0]
			for k := range perSend {
				buf = append(buf, datagram(s*perSend+k)...)
			}
			if _, err := sc.Write(buf); err != nil {
				t.Errorf("send: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	got := 0
	buf := make([]byte, 65536)
	rc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for got < sends*perSend {
		rc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := rc.Read(buf)
		if err != nil {
			break
		}
		if n != seg {
			t.Fatalf("datagram of %d bytes, want %d", n, seg)
		}
		i := int(binary.BigEndian.Uint32(buf))
		if want := datagram(i); !bytes.Equal(buf[:n], want) {
			t.Fatalf("datagram %d corrupted", i)
		}
		got++
	}
	sa, sb := sumStats(ma), sumStats(mb)
	t.Logf("got %d of %d datagrams; A %+v; B %+v", got, sends*perSend, sa, sb)
	if got < sends*perSend*9/10 {
		t.Errorf("got %d of %d datagrams, want at least 90%%", got, sends*perSend)
	}
	if sa.GSOFrames == 0 || sb.SuperWrites == 0 {
		t.Errorf("USO split %d, UDP coalesced %d; want both > 0", sa.GSOFrames, sb.SuperWrites)
	}
}

// TestWriteManySmallUDP: one Write of many small datagrams of one flow
// (more than the kernel's UDP GSO segment limit) is accepted whole and every
// datagram arrives.
func TestWriteManySmallUDP(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	m := openIn(t, ns, "vxt0", 1, Options{})
	if m.Offloads()&OffloadUSO == 0 {
		t.Skipf("kernel did not grant USO (%v)", m.Offloads())
	}
	configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.2.1/32")}, nil)
	var rc *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		rc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 19, 2, 1), Port: 5300})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetReadBuffer(4 << 20)
	const count, size = 300, 64
	pkts := tcpFlow(t, pktSpec{udp: true, id: 1, sport: 4000, dport: 5300}, count, size, 0)
	const offset = 16
	q := m.Queues()[0]
	if n, err := q.Write(withHeadroom(pkts, offset), offset); err != nil || n != count {
		t.Fatalf("write: got %d, %v, want %d, nil", n, err, count)
	}
	if s := q.Stats(); s.WriteErrors != 0 || s.SuperWrites == 0 {
		t.Fatalf("stats %+v: want super-packets written and no write errors", s)
	}
	buf := make([]byte, 2048)
	for i := range count {
		rc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := rc.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v", i, count, err)
		}
		if want := pkts[i][28:]; !bytes.Equal(buf[:n], want) {
			t.Fatalf("datagram %d: got %d bytes %x, want %x", i, n, buf[:min(n, 8)], want[:8])
		}
	}
}

// TestWriteNoAlloc: writing a batch that coalesces into a super-packet, and
// single packets, allocates nothing once the queue has seen a batch.
func TestWriteNoAlloc(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	m := openIn(t, ns, "vxt0", 1, Options{})
	configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.2.1/32")}, nil)
	const offset = 32
	pkts := concat(tcpFlow(t, pktSpec{seq: 1, tsopt: true}, 40, 1448, 0), tcpFlow(t, pktSpec{sport: 7, dport: 9, flags: encap.TCPFlagACK | encap.TCPFlagFIN}, 1, 10, 0))
	orig := withHeadroom(pkts, offset)
	bufs := withHeadroom(pkts, offset)
	q := m.Queues()[0]
	write := func() {
		copy(bufs[0], orig[0])
		if n, err := q.Write(bufs, offset); err != nil || n != len(bufs) {
			t.Fatalf("write: got %d, %v", n, err)
		}
	}
	write()
	if allocs := testing.AllocsPerRun(50, write); allocs != 0 {
		t.Fatalf("got %v allocs per Write, want 0", allocs)
	}
	if s := q.Stats(); s.SuperWrites == 0 || s.WriteErrors != 0 {
		t.Fatalf("stats %+v: want super-packets written and no errors", s)
	}
}

// TestReadNoAlloc: reading plain and super-packets allocates nothing.
func TestReadNoAlloc(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	m := openIn(t, ns, "vxt0", 1, Options{})
	configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
	var sc *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		sc, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 5), Port: 9})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	raw, _ := sc.SyscallConn()
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, 1000) })
	q := m.Queues()[0]
	bufs, sizes := makeBufs(q.BatchSize(), 2048)
	for _, size := range []int{100, 8000} {
		msg := make([]byte, size)
		want := (size + 999) / 1000
		rd := func() {
			if _, err := sc.Write(msg); err != nil {
				t.Fatal(err)
			}
			for got := 0; got < want; {
				n, err := q.Read(bufs, sizes, 16)
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if p := bufs[i][16 : 16+sizes[i]]; p[0] == 0x45 && p[9] == encap.ProtocolUDP {
						got++
					}
				}
			}
		}
		rd()
		if allocs := testing.AllocsPerRun(50, rd); allocs != 0 {
			t.Fatalf("%d-byte send: got %v allocs per Read, want 0", size, allocs)
		}
	}
}

// TestReadBatchesQueuedFrames: frames that queued up before Read are
// returned by one Read (up to len(bufs)), the rest by the next.
func TestReadBatchesQueuedFrames(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	for _, batch := range []int{DefaultBatchSize, 4} {
		m := openIn(t, ns, "vxt0", 1, Options{})
		configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
		q := m.Queues()[0]
		const sent = 10
		if err := ns.Do(func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 5), Port: 9})
			if err != nil {
				return err
			}
			defer c.Close()
			for i := range sent {
				if _, err := c.Write([]byte{byte(i)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		bufs, sizes := makeBufs(batch, 2048)
		var got []byte // payload bytes in arrival order
		var reads []int
		for len(got) < sent {
			n, err := q.Read(bufs, sizes, 0)
			if err != nil {
				t.Fatal(err)
			}
			reads = append(reads, n)
			for i := range n {
				if p := bufs[i][:sizes[i]]; len(p) == 29 && p[9] == encap.ProtocolUDP {
					got = append(got, p[28])
				}
			}
		}
		if want := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !bytes.Equal(got, want) {
			t.Fatalf("batch %d: got payloads %v, want %v", batch, got, want)
		}
		// Everything was queued before the first Read: full reads until the
		// datagrams (and any packet of the link's own) are drained.
		wantReads := (sent + batch - 1) / batch
		if len(reads) > wantReads+1 {
			t.Fatalf("batch %d: %d reads of %v packets, want at most %d", batch, len(reads), reads, wantReads+1)
		}
		if reads[0] < min(batch, sent) {
			t.Fatalf("batch %d: first read returned %d packets, want %d", batch, reads[0], min(batch, sent))
		}
		m.Close()
	}
}

// BenchmarkTCPOverTunPair: one TCP stream from A to a discarding server in
// B through two real TUNs and the shuttle (Read split, Write coalesce), in
// Gbit/s. It measures the TUN path alone, without encapsulation.
//
//	go test -run XXX -bench TCPOverTunPair ./tun/
func BenchmarkTCPOverTunPair(b *testing.B) {
	na, nb, ma, mb := tunPair(b, 1, Options{}, Options{})
	var ln net.Listener
	if err := nb.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", "198.19.2.1:0")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	var c net.Conn
	if err := na.Do(func() error {
		var err error
		c, err = net.Dial("tcp4", ln.Addr().String())
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf))*8*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gbit/s")
	sa, sb := sumStats(ma), sumStats(mb)
	b.ReportMetric(float64(sa.GSOFrames), "super-reads")
	b.ReportMetric(float64(sb.SuperWrites), "super-writes")
}
