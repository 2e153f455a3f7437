package udp

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockaddrSize is the size of the largest socket address we build or parse
// (struct sockaddr_in6).
const sockaddrSize = unix.SizeofSockaddrInet6

// Addr is a destination resolved once into the raw socket address the kernel
// reads, so that sending needs no conversion per packet. Build it with
// NewAddr; the zero Addr is invalid. An Addr is immutable after NewAddr and
// may be shared by any number of goroutines and Conns (WriteBatch only reads
// it). Keep it addressable (a field of a long-lived struct): Message.Addr
// points at it.
type Addr struct {
	raw [sockaddrSize]byte // struct sockaddr_in or sockaddr_in6
	n   uint32             // valid length of raw; 0 for the zero Addr
	ap  netip.AddrPort
}

// NewAddr resolves ap. An IPv4 or IPv4-mapped IPv6 address becomes a
// struct sockaddr_in (which dual-stack IPv6 sockets accept too); an IPv6
// address becomes a struct sockaddr_in6 (zones are ignored: vxtun's underlay
// addresses are global). An invalid ap gives the zero Addr.
func NewAddr(ap netip.AddrPort) Addr {
	var a Addr
	ip := ap.Addr().Unmap().WithZone("")
	if !ip.IsValid() {
		return a
	}
	a.ap = netip.AddrPortFrom(ip, ap.Port())
	if ip.Is4() {
		binary.NativeEndian.PutUint16(a.raw[0:2], unix.AF_INET)
		binary.BigEndian.PutUint16(a.raw[2:4], ap.Port())
		v4 := ip.As4()
		copy(a.raw[4:8], v4[:])
		a.n = unix.SizeofSockaddrInet4
		return a
	}
	binary.NativeEndian.PutUint16(a.raw[0:2], unix.AF_INET6)
	binary.BigEndian.PutUint16(a.raw[2:4], ap.Port())
	v6 := ip.As16()
	copy(a.raw[8:24], v6[:])
	a.n = unix.SizeofSockaddrInet6
	return a
}

// AddrPort returns the address Addr was built from (IPv4-mapped addresses
// unmapped).
func (a *Addr) AddrPort() netip.AddrPort { return a.ap }

// IsValid reports whether a was built from a valid address.
func (a *Addr) IsValid() bool { return a.n != 0 }

// String returns the address in host:port form.
func (a *Addr) String() string { return a.ap.String() }

// parseSockaddr decodes a struct sockaddr_in / sockaddr_in6 written by the
// kernel, without allocating. IPv4-mapped IPv6 sources (dual-stack sockets)
// are unmapped; the IPv6 scope id is dropped.
func parseSockaddr(b []byte) netip.AddrPort {
	if len(b) < 4 {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) < 8 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		if len(b) < 24 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// rawPtr returns a pointer to the raw sockaddr for a msghdr.
func (a *Addr) rawPtr() *byte { return (*byte)(unsafe.Pointer(&a.raw[0])) }
