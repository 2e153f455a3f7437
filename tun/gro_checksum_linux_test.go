package tun

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/internal/nettest"
)

// ipInHdrErrors returns the Ip InHdrErrors counter of ns (/proc/net/snmp of
// the calling thread's namespace).
func ipInHdrErrors(t *testing.T, ns *nettest.NS) uint64 {
	t.Helper()
	var v uint64
	if err := ns.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != "Ip:" {
				continue
			}
			if names == nil {
				names = fields
				continue
			}
			for i, n := range names {
				if n == "InHdrErrors" && i < len(fields) {
					v, err = strconv.ParseUint(fields[i], 10, 64)
					return err
				}
			}
			return fmt.Errorf("no InHdrErrors in %v", names)
		}
		return fmt.Errorf("no Ip lines: %v", sc.Err())
	}); err != nil {
		t.Fatalf("read snmp: %v", err)
	}
	return v
}

// TestWriteBadIPv4HeaderNotDelivered: eight TCP segments with a bad IPv4
// header checksum, written in one batch with good segments before and after
// them, never reach the socket: Write does not coalesce them (which would
// give them a fresh checksum) but writes each as it is, and the kernel drops
// it (IpInHdrErrors). The good segments after them carry the same sequence
// numbers with other bytes, so the stream shows which of the two arrived.
func TestWriteBadIPv4HeaderNotDelivered(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tun")
	m := openIn(t, ns, "vxt0", 1, Options{})
	configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.2.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")})
	var ln *net.TCPListener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(198, 19, 2, 1), Port: 5201})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	q := m.Queues()[0]
	const offset = 16
	write := func(pkts ...[]byte) {
		t.Helper()
		if n, err := q.Write(withHeadroom(pkts, offset), offset); err != nil || n != len(pkts) {
			t.Fatalf("write: got %d, %v, want %d, nil", n, err, len(pkts))
		}
	}

	// Handshake by hand: our side of the connection lives in the test.
	const isn = 1000
	write(pktSpec{seq: isn, id: 1, flags: encap.TCPFlagSYN}.build(t))
	peerISN := readSynAck(t, q)
	write(pktSpec{seq: isn + 1, ack: peerISN + 1, id: 2}.build(t))
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer c.Close()

	const mss = 1000
	base := pktSpec{ack: peerISN + 1}
	before := tcpFlow(t, with(base, isn+1, 10), 4, mss, 0)
	bad := tcpFlow(t, with(base, isn+1+4*mss, 14), 8, mss, 0)
	for _, p := range bad {
		for i := 40; i < len(p); i++ {
			p[i] ^= 0xa5 // other bytes than the good copies, valid TCP sum
		}
		fixTCPChecksum(p)
		p[10] ^= 0x5a // spoil the IPv4 header checksum only
	}
	after := tcpFlow(t, with(base, isn+1+4*mss, 22), 8, mss, 0)

	hdrErrs := ipInHdrErrors(t, ns)
	write(concat(before, bad, after)...)

	var want []byte
	for _, p := range concat(before, after) {
		want = append(want, p[40:]...)
	}
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read stream: got %d of %d bytes: %v", n, len(want), err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("stream byte %d (segment %d): got %#x, want %#x: a bad segment was delivered", i, i/mss, got[i], want[i])
	}
	var d uint64
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if d = ipInHdrErrors(t, ns) - hdrErrs; d >= 8 {
			break
		}
	}
	if d != 8 {
		t.Fatalf("IpInHdrErrors rose by %d, want 8", d)
	}
	s := q.Stats()
	if s.GROBadChecksum != 8 || s.SuperWrites < 2 || s.WriteErrors != 0 {
		t.Fatalf("stats %+v: want GROBadChecksum 8, SuperWrites >= 2 (the good runs), WriteErrors 0", s)
	}
}

// with returns s with sequence number seq and IPv4 id.
func with(s pktSpec, seq uint32, id uint16) pktSpec {
	s.seq, s.id = seq, id
	return s
}

// readSynAck reads from q until the SYN-ACK from port 5201 and returns its
// sequence number.
func readSynAck(t *testing.T, q *Queue) uint32 {
	t.Helper()
	q.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer q.SetReadDeadline(time.Time{})
	bufs, sizes := makeBufs(DefaultBatchSize, 2048)
	for {
		n, err := q.Read(bufs, sizes, 0)
		if err != nil {
			t.Fatalf("read syn-ack: %v", err)
		}
		for i := range n {
			p := bufs[i][:sizes[i]]
			if len(p) < 40 || p[0] != 0x45 || p[9] != encap.ProtocolTCP {
				continue
			}
			tcp := encap.TCP(p[20:])
			if tcp.SrcPort() == 5201 && tcp.Flags()&(encap.TCPFlagSYN|encap.TCPFlagACK) == encap.TCPFlagSYN|encap.TCPFlagACK {
				return tcp.Seq()
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
