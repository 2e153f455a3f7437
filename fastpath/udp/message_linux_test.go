package udp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestAddrRoundTrip(t *testing.T) {
	tests := []struct {
		in, want string
		size     uint32
	}{
		{"198.18.0.1:8472", "198.18.0.1:8472", unix.SizeofSockaddrInet4},
		{"[::ffff:198.18.0.2]:4789", "198.18.0.2:4789", unix.SizeofSockaddrInet4},
		{"[2001:db8::1]:8285", "[2001:db8::1]:8285", unix.SizeofSockaddrInet6},
		{"[fe80::1%eth0]:1", "[fe80::1]:1", unix.SizeofSockaddrInet6},
	}
	for _, tt := range tests {
		a := NewAddr(netip.MustParseAddrPort(tt.in))
		if !a.IsValid() || a.n != tt.size {
			t.Errorf("NewAddr(%s): valid %v size %d, want valid size %d", tt.in, a.IsValid(), a.n, tt.size)
		}
		if got := a.AddrPort().String(); got != tt.want {
			t.Errorf("NewAddr(%s).AddrPort(): got %s, want %s", tt.in, got, tt.want)
		}
		if got := parseSockaddr(a.raw[:a.n]).String(); got != tt.want {
			t.Errorf("parseSockaddr(NewAddr(%s)): got %s, want %s", tt.in, got, tt.want)
		}
	}
	var zero netip.AddrPort
	if a := NewAddr(zero); a.IsValid() {
		t.Error("NewAddr(zero): got valid Addr")
	}
	// Layout check against x/sys's own sockaddr types.
	a := NewAddr(netip.MustParseAddrPort("198.18.0.7:8472"))
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&a.raw[0]))
	if sa.Family != unix.AF_INET || sa.Addr != [4]byte{198, 18, 0, 7} || binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:]) != 8472 {
		t.Errorf("sockaddr_in layout: got %+v", *sa)
	}
	a6 := NewAddr(netip.MustParseAddrPort("[2001:db8::7]:4789"))
	sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&a6.raw[0]))
	if sa6.Family != unix.AF_INET6 || sa6.Addr != netip.MustParseAddr("2001:db8::7").As16() {
		t.Errorf("sockaddr_in6 layout: got %+v", *sa6)
	}
}

func TestParseSockaddrBad(t *testing.T) {
	for _, b := range [][]byte{nil, {2}, {2, 0, 1, 2, 3}, {10, 0, 0, 0, 0, 0}, {99, 0, 0, 0, 0, 0, 0, 0}} {
		if got := parseSockaddr(b); got.IsValid() {
			t.Errorf("parseSockaddr(% x): got %s, want invalid", b, got)
		}
	}
}

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[cmsgHdrSize:], data)
	return b
}

func groCmsg(size uint32) []byte {
	var d [4]byte
	binary.NativeEndian.PutUint32(d[:], size)
	return cmsg(unix.SOL_UDP, unix.UDP_GRO, d[:])
}

func TestGROSize(t *testing.T) {
	other := cmsg(unix.SOL_IP, unix.IP_TOS, []byte{0})
	tests := []struct {
		name string
		ctl  []byte
		want int
	}{
		{"none", nil, 0},
		{"gro", groCmsg(1400), 1400},
		{"after other", append(append([]byte{}, other...), groCmsg(1200)...), 1200},
		{"other only", other, 0},
		{"short header", groCmsg(1400)[:8], 0},
		{"truncated data", groCmsg(1400)[:cmsgHdrSize+2], 0},
		{"zero length", make([]byte, 32), 0},
	}
	for _, tt := range tests {
		if got := groSize(tt.ctl); got != tt.want {
			t.Errorf("%s: groSize got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func FuzzGROSize(f *testing.F) {
	f.Add(groCmsg(1400))
	f.Add(append(cmsg(unix.SOL_IP, unix.IP_TOS, []byte{1}), groCmsg(9000)...))
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := groSize(b)
		if n != 0 && len(b) < cmsgHdrSize+4 {
			t.Fatalf("groSize(% x) = %d from too short control data", b, n)
		}
	})
}

func FuzzParseSockaddr(f *testing.F) {
	a4 := NewAddr(netip.MustParseAddrPort("198.18.0.1:8472"))
	a6 := NewAddr(netip.MustParseAddrPort("[2001:db8::1]:4789"))
	f.Add(a4.raw[:a4.n])
	f.Add(a6.raw[:a6.n])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ap := parseSockaddr(b)
		if !ap.IsValid() {
			return
		}
		// Whatever parses must survive a NewAddr round trip.
		back := NewAddr(ap)
		if got := parseSockaddr(back.raw[:back.n]); got != ap {
			t.Fatalf("round trip of %s: got %s", ap, got)
		}
	})
}

func TestDatagrams(t *testing.T) {
	buf := make([]byte, 100)
	for i := range buf {
		buf[i] = byte(i)
	}
	tests := []struct {
		n, seg int
		want   []int
	}{
		{10, 0, []int{10}},
		{10, 10, []int{10}},
		{10, 20, []int{10}},
		{30, 10, []int{10, 10, 10}},
		{35, 10, []int{10, 10, 10, 5}},
		{0, 0, []int{0}},
	}
	for _, tt := range tests {
		m := Message{Buf: buf, N: tt.n, SegmentSize: tt.seg}
		got := m.Datagrams(nil)
		var lens []int
		var cat []byte
		for _, d := range got {
			lens = append(lens, len(d))
			cat = append(cat, d...)
		}
		if fmt.Sprint(lens) != fmt.Sprint(tt.want) {
			t.Errorf("N=%d seg=%d: got lengths %v, want %v", tt.n, tt.seg, lens, tt.want)
		}
		if !bytes.Equal(cat, buf[:tt.n]) {
			t.Errorf("N=%d seg=%d: datagrams do not concatenate to Buf[:N]", tt.n, tt.seg)
		}
	}
}

func TestAppendGSO(t *testing.T) {
	addr := NewAddr(netip.MustParseAddrPort("198.18.0.2:8472"))
	separate := func(sizes ...int) [][]byte {
		var d [][]byte
		for _, s := range sizes {
			d = append(d, make([]byte, s))
		}
		return d
	}
	rep := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	type out struct {
		segs, seg int
		contig    bool
	}
	tests := []struct {
		name   string
		dgrams [][]byte
		want   []out
	}{
		{"single", separate(100), []out{{1, 0, true}}},
		{"equal run", separate(100, 100, 100), []out{{3, 100, false}}},
		{"short tail ends run", separate(100, 100, 60, 100), []out{{3, 100, false}, {1, 0, true}}},
		{"longer breaks run", separate(100, 200, 200), []out{{1, 0, true}, {2, 200, false}}},
		{"64 cap", separate(rep(70, 10)...), []out{{64, 10, false}, {6, 10, false}}},
		{"byte cap", separate(rep(50, 1400)...), []out{{46, 1400, false}, {4, 1400, false}}},
		{"empty alone", separate(0, 0, 5), []out{{1, 0, true}, {1, 0, true}, {1, 0, true}}},
		{"empty ends run", separate(5, 5, 0), []out{{2, 5, false}, {1, 0, true}}},
	}
	for _, tt := range tests {
		msgs := AppendGSO(nil, tt.dgrams, &addr)
		if len(msgs) != len(tt.want) {
			t.Errorf("%s: got %d messages, want %d", tt.name, len(msgs), len(tt.want))
			continue
		}
		for i, m := range msgs {
			w := tt.want[i]
			segs := len(m.Bufs)
			if m.Bufs == nil {
				segs = 1
				if m.SegmentSize > 0 {
					segs = (len(m.Buf) + m.SegmentSize - 1) / m.SegmentSize
				}
			}
			if segs != w.segs || m.SegmentSize != w.seg || (m.Bufs == nil) != w.contig || m.Addr != &addr {
				t.Errorf("%s: message %d: got %d segments of %d (contiguous %v), want %d of %d (contiguous %v)",
					tt.name, i, segs, m.SegmentSize, m.Bufs == nil, w.segs, w.seg, w.contig)
			}
		}
	}
}

func TestAppendGSOContiguous(t *testing.T) {
	addr := NewAddr(netip.MustParseAddrPort("198.18.0.2:8472"))
	back := make([]byte, 10*1000)
	var d [][]byte
	for i := 0; i < 10; i++ {
		d = append(d, back[i*1000:(i+1)*1000])
	}
	d[9] = d[9][:300]
	msgs := AppendGSO(nil, d, &addr)
	if len(msgs) != 1 || msgs[0].Bufs != nil || len(msgs[0].Buf) != 9300 || msgs[0].SegmentSize != 1000 || &msgs[0].Buf[0] != &back[0] {
		t.Fatalf("contiguous run: got %d messages, first Buf len %d seg %d gather %v; want 1 message spanning 9300 bytes of the backing array",
			len(msgs), len(msgs[0].Buf), msgs[0].SegmentSize, msgs[0].Bufs != nil)
	}
	// Same slices but with a gap: must fall back to a gather list.
	d[3] = back[3*1000+1 : 4*1000+1]
	msgs = AppendGSO(msgs[:0], d, &addr)
	if len(msgs) != 1 || msgs[0].Bufs == nil {
		t.Fatalf("run with a gap: got contiguous=%v, want gather list", msgs[0].Bufs == nil)
	}
	// Capacity cut short: adjacent memory, but not provably one array.
	d[3] = back[3*1000 : 4*1000]
	d[0] = back[0:1000:1000]
	msgs = AppendGSO(msgs[:0], d, &addr)
	if len(msgs) != 1 || msgs[0].Bufs == nil {
		t.Fatalf("run whose first slice has cap 1000: got contiguous=%v, want gather list", msgs[0].Bufs == nil)
	}
	allocs := testing.AllocsPerRun(100, func() {
		msgs = AppendGSO(msgs[:0], d, &addr)
	})
	if allocs != 0 {
		t.Errorf("AppendGSO into a slice with capacity: got %v allocs, want 0", allocs)
	}
}

func TestRxqOverflow(t *testing.T) {
	ovfl := func(n uint32) []byte {
		var d [4]byte
		binary.NativeEndian.PutUint32(d[:], n)
		return cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, d[:])
	}
	tests := []struct {
		name   string
		ctl    []byte
		want   uint32
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"alone", ovfl(7), 7, true},
		{"after gro", append(groCmsg(1400), ovfl(42)...), 42, true},
		{"gro only", groCmsg(1400), 0, false},
		{"truncated", ovfl(3)[:cmsgHdrSize+2], 0, false},
	}
	for _, tt := range tests {
		got, ok := rxqOverflow(tt.ctl)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got %d, %v, want %d, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
		if tt.name == "after gro" {
			if g := groSize(tt.ctl); g != 1400 {
				t.Errorf("%s: groSize got %d, want 1400", tt.name, g)
			}
		}
	}
}
