package encap

import (
	"bytes"
	"testing"
)

var (
	macA = []byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	macB = []byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02}
)

// TestEncapVXLANHeader: the VXLAN header EncapVXLAN writes is exactly
// 08 00 00 00 | VNI | 00.
func TestEncapVXLANHeader(t *testing.T) {
	for _, tc := range []struct {
		vni  uint32
		want []byte
	}{
		{0, []byte{8, 0, 0, 0, 0, 0, 0, 0}},
		{1, []byte{8, 0, 0, 0, 0, 0, 1, 0}},
		{0x123456, []byte{8, 0, 0, 0, 0x12, 0x34, 0x56, 0}},
		{MaxVNI, []byte{8, 0, 0, 0, 0xff, 0xff, 0xff, 0}},
		{0xff000001, []byte{8, 0, 0, 0, 0, 0, 1, 0}}, // high bits ignored
	} {
		b := bytes.Repeat([]byte{0xee}, VXLANOverhead+2)
		EncapVXLAN(b, VXLANOverhead, tc.vni, macB, macA, EtherTypeIPv4)
		if !bytes.Equal(b[:8], tc.want) || b[VXLANOverhead] != 0xee {
			t.Errorf("EncapVXLAN(vni %#x): got header % x, want % x (and the packet untouched)", tc.vni, b[:8], tc.want)
		}
		v := VXLAN(b)
		if v.Flags() != VXLANFlagI || v.VNI() != tc.vni&MaxVNI || v.HasGBP() || v.Reserved() != 0 {
			t.Errorf("view of %#x: got flags %#x vni %#x", tc.vni, v.Flags(), v.VNI())
		}
	}
}

// TestCheckVXLAN: which headers a receiver accepts, and the views of the
// accepted ones.
func TestCheckVXLAN(t *testing.T) {
	inner := []byte{1, 2, 3}
	for _, tc := range []struct {
		name    string
		hdr     []byte
		wantVNI uint32
		wantErr error
	}{
		{"plain", []byte{0x08, 0, 0, 0, 0, 0, 1, 0}, 1, nil},
		{"vni 0", []byte{0x08, 0, 0, 0, 0, 0, 0, 0}, 0, nil},
		{"vni max", []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}, MaxVNI, nil},
		{"gbp policy", []byte{0x88, 0, 0x12, 0x34, 0, 0, 1, 0}, 1, nil},
		{"gbp D and A", []byte{0x88, 0x48, 0xff, 0xff, 0, 0, 1, 0}, 1, nil},
		{"flags 0x00", []byte{0x00, 0, 0, 0, 0, 0, 1, 0}, 0, ErrNoIBit},
		{"flags 0x80 (G without I)", []byte{0x80, 0, 0, 0, 0, 0, 1, 0}, 0, ErrNoIBit},
		{"flags 0x0C (GPE P bit)", []byte{0x0c, 0, 0, 0, 0, 0, 1, 0}, 0, ErrBadFlags},
		{"flags 0x09", []byte{0x09, 0, 0, 0, 0, 0, 1, 0}, 0, ErrBadFlags},
		{"flags 0xff", []byte{0xff, 0, 0, 0, 0, 0, 1, 0}, 0, ErrBadFlags},
		{"gbp unknown byte-1 bit", []byte{0x88, 0x01, 0, 0, 0, 0, 1, 0}, 0, ErrBadFlags},
		{"reserved byte 1 without G", []byte{0x08, 0x40, 0, 0, 0, 0, 1, 0}, 0, ErrReserved},
		{"reserved byte 3 without G", []byte{0x08, 0, 0, 1, 0, 0, 1, 0}, 0, ErrReserved},
		{"reserved byte 7", []byte{0x08, 0, 0, 0, 0, 0, 1, 1}, 0, ErrReserved},
		{"reserved byte 7 with G", []byte{0x88, 0, 0, 0, 0, 0, 1, 0x80}, 0, ErrReserved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := append(append([]byte{}, tc.hdr...), inner...)
			err := CheckVXLAN(pkt)
			vni, got := VXLAN(pkt).VNI(), VXLAN(pkt).Payload()
			if err != tc.wantErr {
				t.Fatalf("got err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if vni != tc.wantVNI || !bytes.Equal(got, inner) {
				t.Errorf("got vni %#x inner % x, want %#x % x", vni, got, tc.wantVNI, inner)
			}
		})
	}
	for n := 0; n < VXLANHeaderLen; n++ {
		if err := CheckVXLAN([]byte{8, 0, 0, 0, 0, 0, 1, 0}[:n]); err != ErrShort {
			t.Errorf("%d bytes: got err %v, want ErrShort", n, err)
		}
	}
	// Exactly 8 bytes is a valid header with an empty inner frame.
	h8 := VXLAN([]byte{8, 0, 0, 0, 0, 0, 7, 0})
	if vni, inner, err := h8.VNI(), h8.Payload(), CheckVXLAN(h8); err != nil || vni != 7 || len(inner) != 0 {
		t.Errorf("8 bytes: got %d %x %v, want 7, empty, nil", vni, inner, err)
	}
	gbp := VXLAN([]byte{0x88, 0x48, 0x12, 0x34, 0, 0, 1, 0})
	if !gbp.HasGBP() || gbp.GBPFlags() != 0x48 || gbp.GroupPolicyID() != 0x1234 {
		t.Errorf("gbp view: got G %v flags %#x policy %#x", gbp.HasGBP(), gbp.GBPFlags(), gbp.GroupPolicyID())
	}
}

func TestEncapDecapInPlace(t *testing.T) {
	inner := make([]byte, 60)
	IPv4(inner).Encode(&IPv4Fields{TotalLength: 60, TTL: 64, Protocol: ProtocolUDP, Src: ip4a, Dst: ip4b})
	for i := IPv4MinimumSize; i < len(inner); i++ {
		inner[i] = byte(i)
	}
	const off = 64
	buf := make([]byte, off+len(inner))
	copy(buf[off:], inner)
	// Guard bytes in front of the headroom must survive.
	for i := range buf[:off-VXLANOverhead] {
		buf[i] = 0x5a
	}
	start := EncapVXLAN(buf, off, 0xabcdef, macB, macA, EtherTypeIPv4)
	if start != off-VXLANOverhead {
		t.Fatalf("start: got %d, want %d", start, off-VXLANOverhead)
	}
	want := append([]byte{0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0}, macB...)
	want = append(append(append(want, macA...), 0x08, 0x00), inner...)
	if got := buf[start:]; !bytes.Equal(got, want) {
		t.Fatalf("encap:\n got % x\nwant % x", got, want)
	}
	for i, c := range buf[:start] {
		if c != 0x5a {
			t.Fatalf("byte %d before the headroom overwritten", i)
		}
	}
	vni, et, got, err := DecapVXLAN(buf[start:], macB)
	if err != nil || vni != 0xabcdef || et != EtherTypeIPv4 || !bytes.Equal(got, inner) {
		t.Fatalf("decap: got vni %#x type %#x err %v", vni, et, err)
	}
	if &got[0] != &buf[off] {
		t.Errorf("decap copied the inner packet instead of returning a sub-slice")
	}
}

func TestDecapVXLANErrors(t *testing.T) {
	frame := func(flags byte, dst []byte, et uint16) []byte {
		b := make([]byte, VXLANOverhead+20)
		EncapVXLAN(b, VXLANOverhead, 1, dst, macA, et)
		b[0] = flags
		return b
	}
	bcast := BroadcastMAC[:]
	for _, tc := range []struct {
		name string
		pkt  []byte
		mac  []byte
		want error
	}{
		{"ok ipv4", frame(8, macB, EtherTypeIPv4), macB, nil},
		{"ok ipv6", frame(8, macB, EtherTypeIPv6), macB, nil},
		{"ok arp broadcast", frame(8, bcast, EtherTypeARP), macB, nil},
		{"ok arp unicast", frame(8, macB, EtherTypeARP), macB, nil},
		{"no mac check", frame(8, macA, EtherTypeIPv4), nil, nil},
		{"ipv4 to broadcast", frame(8, bcast, EtherTypeIPv4), macB, ErrDstMAC},
		{"wrong dst mac", frame(8, macA, EtherTypeIPv4), macB, ErrDstMAC},
		{"wrong dst mac arp", frame(8, macA, EtherTypeARP), macB, ErrDstMAC},
		{"vlan tag", frame(8, macB, 0x8100), macB, ErrEtherType},
		{"no I bit", frame(0, macB, EtherTypeIPv4), macB, ErrNoIBit},
		{"truncated ethernet", frame(8, macB, EtherTypeIPv4)[:VXLANOverhead-1], macB, ErrShort},
		{"vxlan only", frame(8, macB, EtherTypeIPv4)[:VXLANHeaderLen], macB, ErrShort},
		{"empty", nil, macB, ErrShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, inner, err := DecapVXLAN(tc.pkt, tc.mac)
			if err != tc.want {
				t.Fatalf("got err %v, want %v", err, tc.want)
			}
			if err == nil && len(inner) != len(tc.pkt)-VXLANOverhead {
				t.Errorf("inner length: got %d, want %d", len(inner), len(tc.pkt)-VXLANOverhead)
			}
		})
	}
}

func TestEthernet(t *testing.T) {
	b := make([]byte, 20)
	EncodeEthernet(b, macB, macA, EtherTypeIPv6)
	e, payload, err := ParseEthernet(b)
	if err != nil || !bytes.Equal(e.Dst(), macB) || !bytes.Equal(e.Src(), macA) || e.EtherType() != EtherTypeIPv6 || len(payload) != 6 {
		t.Fatalf("got dst %x src %x type %#x payload %d err %v", e.Dst(), e.Src(), e.EtherType(), len(payload), err)
	}
	c := make([]byte, 14)
	Ethernet(c).Encode(&EthernetFields{Dst: [6]byte(macB), Src: [6]byte(macA), EtherType: EtherTypeIPv6})
	if !bytes.Equal(c, b[:14]) {
		t.Errorf("Encode: got % x, want % x", c, b[:14])
	}
	if _, _, err := ParseEthernet(b[:13]); err != ErrShort {
		t.Errorf("13 bytes: got %v, want ErrShort", err)
	}
}

// TestDecapUDPLegacy: the legacy UDP receive check is TrimIP on the whole
// datagram, in place.
func TestDecapUDPLegacy(t *testing.T) {
	pkt := make([]byte, 40)
	IPv4(pkt).Encode(&IPv4Fields{TotalLength: 28, TTL: 64, Protocol: ProtocolUDP, Src: ip4a, Dst: ip4b})
	got, err := TrimIP(pkt)
	if err != nil || len(got) != 28 || &got[0] != &pkt[0] {
		t.Fatalf("got %d bytes err %v, want the first 28 bytes in place", len(got), err)
	}
	if _, err := TrimIP(pkt[:27]); err != ErrIPLength {
		t.Errorf("truncated: got %v, want ErrIPLength", err)
	}
}
