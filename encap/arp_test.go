package encap

import (
	"bytes"
	"net/netip"
	"testing"
)

func arpRequest(target netip.Addr) []byte {
	b := make([]byte, ARPSize)
	ARP(b).Encode(&ARPFields{Op: ARPOpRequest, SenderMAC: [6]byte(macA), SenderIP: ip4a, TargetIP: target})
	return b
}

func TestAnswerARP(t *testing.T) {
	vtep := netip.MustParseAddr("198.19.2.0")
	req := arpRequest(vtep)
	reply := bytes.Clone(req)
	if err := AnswerARP(reply, macB, vtep); err != nil {
		t.Fatal(err)
	}
	a := ARP(reply)
	if a.Op() != ARPOpReply || !bytes.Equal(a.SenderMAC(), macB) || netip.AddrFrom4([4]byte(a.SenderIP())) != vtep ||
		!bytes.Equal(a.TargetMAC(), macA) || netip.AddrFrom4([4]byte(a.TargetIP())) != ip4a {
		t.Fatalf("reply wrong: % x", reply)
	}
	if a.HardwareType() != 1 || a.ProtocolType() != EtherTypeIPv4 || a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		t.Fatalf("reply header wrong: % x", reply[:8])
	}
	buf := make([]byte, 64)
	n, err := BuildARPReply(buf, req, macB, vtep)
	if err != nil || n != ARPSize || !bytes.Equal(buf[:n], reply) {
		t.Fatalf("BuildARPReply: got % x, %v; want % x", buf[:n], err, reply)
	}
	if !bytes.Equal(req, arpRequest(vtep)) {
		t.Fatalf("BuildARPReply modified the request")
	}
}

func TestARPErrors(t *testing.T) {
	vtep := netip.MustParseAddr("198.19.2.0")
	mut := func(f func(b []byte)) []byte { b := arpRequest(vtep); f(b); return b }
	for _, tc := range []struct {
		name string
		pkt  []byte
		ip   netip.Addr
		want error
	}{
		{"not for us", arpRequest(ip4b), vtep, ErrARPNotForUs},
		{"reply", mut(func(b []byte) { b[7] = ARPOpReply }), vtep, ErrARPOp},
		{"hw type", mut(func(b []byte) { b[1] = 6 }), vtep, ErrARPFormat},
		{"ipv6 proto", mut(func(b []byte) { b[2], b[3] = 0x86, 0xdd }), vtep, ErrARPFormat},
		{"hlen", mut(func(b []byte) { b[4] = 8 }), vtep, ErrARPFormat},
		{"plen", mut(func(b []byte) { b[5] = 16 }), vtep, ErrARPFormat},
		{"short", arpRequest(vtep)[:27], vtep, ErrShort},
		{"v6 address", arpRequest(vtep), ip6a, ErrAddrFamily},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(tc.pkt)
			if err := AnswerARP(b, macB, tc.ip); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !bytes.Equal(b, tc.pkt) {
				t.Errorf("a refused request was modified")
			}
		})
	}
	if _, err := BuildARPReply(make([]byte, 27), arpRequest(vtep), macB, vtep); err != ErrShortBuffer {
		t.Errorf("short buffer: got %v, want ErrShortBuffer", err)
	}
}
