package udp

import (
	"net/netip"
	"unsafe"
)

// Limits of one UDP GSO send (UDP_SEGMENT).
const (
	// MaxSegments is the most datagrams AppendGSO puts in one GSO message
	// (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
	MaxSegments = 64
	// MaxGSOBytes is the most payload bytes in one GSO message: what fits in
	// one IPv4 packet's 16-bit length after the IPv4 and UDP headers.
	MaxGSOBytes = 65535 - 20 - 8
	// MaxRead is the receive buffer size that always holds a whole GRO
	// super-datagram (or any single datagram).
	MaxRead = 65535
)

// Message is one entry of a batch.
//
// Send: the payload is Buf, or, when Bufs is non-nil, the concatenation of
// Bufs (a gather list: no copy). Addr is the destination (required).
// SegmentSize > 0 asks for UDP GSO: the payload is cut into datagrams of
// SegmentSize bytes (the last may be shorter); on a Conn without GSO,
// WriteBatch sends those datagrams one by one in the same sendmmsg, so the
// result on the wire is the same.
//
// Receive: Buf is the space to receive into (Bufs is ignored); ReadBatch sets
// N, From, SegmentSize and Trunc.
type Message struct {
	Buf  []byte
	Bufs [][]byte
	Addr *Addr
	// From is the source of a received message (IPv4 unmapped, no zone).
	From netip.AddrPort
	// N is the number of bytes received.
	N int
	// SegmentSize is the GSO segment size to send with, or the GRO segment
	// size received (0: Buf[:N] is a single datagram).
	SegmentSize int
	// Trunc reports that the received data did not fit in Buf.
	Trunc bool
}

// Datagrams appends to dst the datagrams of a received message: Buf[:N] cut
// at SegmentSize (the last may be shorter), or Buf[:N] whole when
// SegmentSize is 0. The returned slices alias Buf.
func (m *Message) Datagrams(dst [][]byte) [][]byte {
	b := m.Buf[:m.N]
	s := m.SegmentSize
	if s <= 0 || s >= len(b) {
		return append(dst, b)
	}
	for len(b) > s {
		dst = append(dst, b[:s:s])
		b = b[s:]
	}
	return append(dst, b)
}

// AppendGSO appends to msgs the messages that send dgrams, in order, all to
// addr, and returns the extended slice. Each run of consecutive datagrams of
// equal length, of at most MaxSegments datagrams and MaxGSOBytes in total,
// becomes one Message with SegmentSize set; the last datagram of a run may
// be shorter (it ends the run). A run's Bufs is a subslice of dgrams (no
// payload copy); when the run's datagrams lie back to back in one backing
// array, Buf is set to that span instead and Bufs stays nil. A run of one
// datagram gets SegmentSize 0. Empty datagrams are sent as empty datagrams
// on their own. dgrams must stay unchanged until the messages are sent.
func AppendGSO(msgs []Message, dgrams [][]byte, addr *Addr) []Message {
	for i := 0; i < len(dgrams); {
		size := len(dgrams[i])
		j := i + 1
		total := size
		if size > 0 {
			for j < len(dgrams) && j-i < MaxSegments {
				n := len(dgrams[j])
				if n == 0 || n > size || total+n > MaxGSOBytes {
					break
				}
				total += n
				j++
				if n < size {
					break // a shorter datagram ends the run
				}
			}
		}
		m := Message{Addr: addr}
		if j-i == 1 {
			m.Buf = dgrams[i]
		} else {
			m.SegmentSize = size
			if span, ok := contiguous(dgrams[i:j], total); ok {
				m.Buf = span
			} else {
				m.Bufs = dgrams[i:j:j]
			}
		}
		msgs = append(msgs, m)
		i = j
	}
	return msgs
}

// contiguous returns the one slice covering run when each element directly
// follows the previous within the first element's capacity (so all share
// one backing array).
func contiguous(run [][]byte, total int) ([]byte, bool) {
	first := run[0]
	if cap(first) < total {
		return nil, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(first)))
	off := uintptr(len(first))
	for _, b := range run[1:] {
		if uintptr(unsafe.Pointer(unsafe.SliceData(b))) != base+off {
			return nil, false
		}
		off += uintptr(len(b))
	}
	return first[:total], true
}
