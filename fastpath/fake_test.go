package fastpath

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"

	"github.com/vxtun/vxtun/encap"
)

// fakeDev is a tun.Device for the allocation test and the benchmark: Read
// returns the packets sent on reads (copied into the caller's buffers), Write
// hands the written packets to write. Unlike tun/tuntest (which copies every
// written packet into a fresh slice), it allocates nothing per packet, so
// what the pipeline allocates is all that is measured.
type fakeDev struct {
	name  string
	batch int
	reads chan [][]byte
	write func(pkts [][]byte, offset int)
	done  chan struct{}
	once  sync.Once
}

func newFakeDev(name string, write func([][]byte, int)) *fakeDev {
	return &fakeDev{name: name, batch: 64, reads: make(chan [][]byte, 4), write: write, done: make(chan struct{})}
}

func (d *fakeDev) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case pkts := <-d.reads:
		n := 0
		for i, p := range pkts {
			if i == len(bufs) {
				break
			}
			copy(bufs[i][offset:], p)
			sizes[i] = len(p)
			n++
		}
		return n, nil
	case <-d.done:
		return 0, os.ErrClosed
	}
}

func (d *fakeDev) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-d.done:
		return 0, os.ErrClosed
	default:
	}
	d.write(bufs, offset)
	return len(bufs), nil
}

func (d *fakeDev) BatchSize() int    { return d.batch }
func (d *fakeDev) MTU() (int, error) { return 1450, nil }
func (d *fakeDev) Name() string      { return d.name }
func (d *fakeDev) Close() error      { d.once.Do(func() { close(d.done) }); return nil }

// freeUDPPort returns a UDP port on addr that was free a moment ago.
func freeUDPPort(t testing.TB, addr netip.Addr) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// udp4Packet builds an IPv4/UDP packet of total length size (≥ 28) with a
// recognisable payload: seq in the first 4 payload bytes.
func udp4Packet(src, dst netip.Addr, size int, seq uint32, df bool) []byte {
	b := make([]byte, size)
	var flags uint16
	if df {
		flags = encap.IPv4FlagDF
	}
	encap.IPv4(b).Encode(&encap.IPv4Fields{TotalLength: uint16(size), TTL: 64, Protocol: encap.ProtocolUDP, Flags: flags, Src: src, Dst: dst})
	u := encap.UDP(b[20:])
	u.Encode(&encap.UDPFields{SrcPort: 4000, DstPort: 5000, Length: uint16(size - 20)})
	for i := 28; i < size; i++ {
		b[i] = byte(i * 7)
	}
	if size >= 32 {
		binary.BigEndian.PutUint32(b[28:32], seq)
	}
	return b
}

// udp6Packet is udp4Packet for IPv6 (size ≥ 48).
func udp6Packet(src, dst netip.Addr, size int, seq uint32) []byte {
	b := make([]byte, size)
	encap.IPv6(b).Encode(&encap.IPv6Fields{PayloadLength: uint16(size - 40), NextHeader: encap.ProtocolUDP, HopLimit: 64, Src: src, Dst: dst})
	encap.UDP(b[40:]).Encode(&encap.UDPFields{SrcPort: 4000, DstPort: 5000, Length: uint16(size - 40)})
	for i := 48; i < size; i++ {
		b[i] = byte(i * 3)
	}
	if size >= 52 {
		binary.BigEndian.PutUint32(b[48:52], seq)
	}
	return b
}
