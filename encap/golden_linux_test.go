package encap_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden from a live kernel capture")

// The kernel-vxlan golden scenario: node 1 (namespace A, underlay
// 198.18.0.1) has a flannel-style vxlan device; node 2 (namespace B,
// 198.18.0.2) is a fake peer whose VTEP MAC and subnet 198.19.2.0/24 are
// programmed on node 1 exactly as flannel does it.
var (
	goldenLocalMAC = []byte{0x02, 0x76, 0x78, 0x00, 0x01, 0x01} // node 1's flannel.1
	goldenPeerMAC  = []byte{0x02, 0x76, 0x78, 0x00, 0x02, 0x02} // node 2's VtepMAC
	goldenVNI      = uint32(1)
	goldenSrcIP    = netip.MustParseAddr("198.19.1.0") // flannel.1's address
	goldenDstIP    = netip.MustParseAddr("198.19.2.5") // a pod on node 2
	goldenEchoID   = uint16(0x7678)
	goldenEchoSeq  = uint16(1)
	goldenPayload  = []byte("vxtun golden packet 0123456789")
)

const goldenFile = "testdata/golden/kernel_vxlan_icmp4.hex"

// captureKernelVXLAN builds the two namespaces, sends one ICMP echo request
// from node 1 to a pod address behind node 2 over the kernel vxlan device and
// returns the encap.VXLAN datagram payload (and its outer source port) that a plain
// encap.UDP socket on node 2's port 8472 receives.
func captureKernelVXLAN(t *testing.T) (payload []byte, srcPort int) {
	t.Helper()
	nettest.RequireCommand(t, "bridge")
	h := nettest.NewTwoHosts(t)
	a := h.A
	d := flannelvxlan.Device{Local: netip.MustParseAddr("198.18.0.1"), MAC: net.HardwareAddr(goldenLocalMAC),
		Subnet: netip.MustParsePrefix("198.19.1.0/24")}
	cmds := d.Commands(flannelvxlan.Remote{Subnet: netip.MustParsePrefix("198.19.2.0/24"),
		PublicIP: netip.MustParseAddr("198.18.0.2"), VtepMAC: net.HardwareAddr(goldenPeerMAC)})
	a.Run(cmds[0]...) // ip link add flannel.1 ...
	// No encap.IPv6 on the device: its router solicitations would race the capture.
	a.Run("sysctl", "-qw", "net.ipv6.conf.flannel/1.disable_ipv6=1")
	for _, c := range cmds[1:] {
		a.Run(c...)
	}

	var conn net.PacketConn
	if err := h.B.Do(func() error {
		var err error
		conn, err = net.ListenPacket("udp4", "198.18.0.2:8472")
		return err
	}); err != nil {
		t.Fatalf("listen on node 2: %v", err)
	}
	defer conn.Close()

	// The echo request: our own ICMP header, the kernel adds the encap.IPv4 header.
	msg := make([]byte, encap.ICMPv4MinimumSize+len(goldenPayload))
	msg[0] = encap.ICMPv4TypeEcho
	msg[4], msg[5] = byte(goldenEchoID>>8), byte(goldenEchoID)
	msg[6], msg[7] = byte(goldenEchoSeq>>8), byte(goldenEchoSeq)
	copy(msg[8:], goldenPayload)
	encap.ICMPv4(msg).SetChecksum(encap.ICMPv4(msg).CalculateChecksum())

	if err := a.Do(func() error {
		c, err := net.ListenPacket("ip4:icmp", goldenSrcIP.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo(msg, &net.IPAddr{IP: goldenDstIP.AsSlice()})
		return err
	}); err != nil {
		t.Fatalf("send echo on node 1: %v", err)
	}

	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no vxlan datagram from the kernel on node 2: %v", err)
		}
		p := buf[:n]
		// Skip anything that is not our encap.IPv4 frame (nothing else is expected).
		if len(p) >= encap.VXLANOverhead && encap.Ethernet(p[encap.VXLANHeaderLen:]).EtherType() == encap.EtherTypeIPv4 {
			return bytes.Clone(p), from.(*net.UDPAddr).Port
		}
		t.Logf("skipping %d-byte datagram %x", n, p)
	}
}

// checkGolden verifies one captured kernel encap.VXLAN payload: field by field, and
// against our encoder byte for byte.
func checkGolden(t *testing.T, pkt []byte) {
	t.Helper()
	if len(pkt) < encap.VXLANOverhead+encap.IPv4MinimumSize {
		t.Fatalf("captured %d bytes, too short", len(pkt))
	}
	if got, want := pkt[:encap.VXLANHeaderLen], []byte{0x08, 0, 0, 0, 0, 0, 1, 0}; !bytes.Equal(got, want) {
		t.Errorf("vxlan header: got % x, want % x", got, want)
	}
	err := encap.CheckVXLAN(pkt)
	if vni := encap.VXLAN(pkt).VNI(); err != nil || vni != goldenVNI {
		t.Fatalf("encap.CheckVXLAN: got vni %d err %v, want %d nil", vni, err, goldenVNI)
	}
	eth := encap.Ethernet(encap.VXLAN(pkt).Payload())
	if !bytes.Equal(eth.Dst(), goldenPeerMAC) || !bytes.Equal(eth.Src(), goldenLocalMAC) || eth.EtherType() != encap.EtherTypeIPv4 {
		t.Errorf("inner ethernet: got dst %x src %x type %#x, want %x %x 0x800", eth.Dst(), eth.Src(), eth.EtherType(), goldenPeerMAC, goldenLocalMAC)
	}
	vni, et, inner, err := encap.DecapVXLAN(pkt, goldenPeerMAC)
	if err != nil || vni != goldenVNI || et != encap.EtherTypeIPv4 {
		t.Fatalf("encap.DecapVXLAN: got vni %d type %#x err %v", vni, et, err)
	}
	if err := encap.ValidateIP(inner); err != nil {
		t.Fatalf("encap.ValidateIP(inner): %v", err)
	}
	ip := encap.IPv4(inner)
	if ip.SrcAddr() != goldenSrcIP || ip.DstAddr() != goldenDstIP || ip.Protocol() != encap.ProtocolICMPv4 {
		t.Errorf("inner ip: got %v -> %v proto %d, want %v -> %v 1", ip.SrcAddr(), ip.DstAddr(), ip.Protocol(), goldenSrcIP, goldenDstIP)
	}
	if int(ip.TotalLength()) != len(inner) {
		t.Errorf("inner ip total length %d, captured %d", ip.TotalLength(), len(inner))
	}
	if !ip.IsChecksumValid() {
		t.Errorf("inner ip checksum %#04x invalid", ip.Checksum())
	}
	icmp := encap.ICMPv4(ip.Payload())
	if icmp.Type() != encap.ICMPv4TypeEcho || icmp.RestOfHeader() != uint32(goldenEchoID)<<16|uint32(goldenEchoSeq) {
		t.Errorf("inner icmp: got type %d rest %#x, want 8 %#x", icmp.Type(), icmp.RestOfHeader(), uint32(goldenEchoID)<<16|uint32(goldenEchoSeq))
	}
	if got := icmp.Payload(); !bytes.Equal(got, goldenPayload) {
		t.Errorf("inner icmp payload %q, want %q", got, goldenPayload)
	}
	if got := icmp.CalculateChecksum(); got != icmp.Checksum() {
		t.Errorf("inner icmp checksum: got %#04x, computed %#04x", icmp.Checksum(), got)
	}

	// Our encoder, given the same inner packet, VNI and MACs, in place.
	buf := make([]byte, 64+len(inner))
	off := 64
	copy(buf[off:], inner)
	start := encap.EncapVXLAN(buf, off, goldenVNI, goldenPeerMAC, goldenLocalMAC, encap.EtherTypeIPv4)
	if got := buf[start : off+len(inner)]; !bytes.Equal(got, pkt) {
		t.Errorf("encap.EncapVXLAN differs from the kernel:\n got % x\nwant % x", got[:encap.VXLANOverhead], pkt[:encap.VXLANOverhead])
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var hx strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hx.WriteString(strings.ReplaceAll(line, " ", ""))
	}
	p, err := hex.DecodeString(hx.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func writeGolden(t *testing.T, name string, pkt []byte, srcPort int) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("# encap.VXLAN encap.UDP payload captured from a Linux kernel vxlan device (flannel-style:\n")
	sb.WriteString("# id 1, dstport 8472, nolearning, permanent neigh + fdb for the peer VTEP)\n")
	sb.WriteString("# by TestGoldenKernelVXLANLive -update-golden. Inner: ICMP echo 198.19.1.0 -> 198.19.2.5.\n")
	sb.WriteString("# outer source port was " + strconv.Itoa(srcPort) + "; bytes 0-7 encap.VXLAN, 8-21 inner encap.Ethernet, 22- inner encap.IPv4.\n")
	for i := 0; i < len(pkt); i += 16 {
		end := min(i+16, len(pkt))
		sb.WriteString(hex.EncodeToString(pkt[i:end]))
		sb.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenKernelVXLAN checks the committed kernel capture (no privileges needed).
func TestGoldenKernelVXLAN(t *testing.T) {
	checkGolden(t, readGolden(t, goldenFile))
}

// TestGoldenKernelVXLANLive re-captures the golden packet from the kernel on
// every run and checks it the same way and against the committed bytes.
func TestGoldenKernelVXLANLive(t *testing.T) {
	nettest.RequirePrivileged(t)
	pkt, srcPort := captureKernelVXLAN(t)
	t.Logf("captured %d bytes from outer source port %d", len(pkt), srcPort)
	if srcPort < encap.SourcePortMin || srcPort >= encap.SourcePortMax {
		t.Errorf("kernel outer source port %d outside [%d, %d)", srcPort, encap.SourcePortMin, encap.SourcePortMax)
	}
	checkGolden(t, pkt)
	if *updateGolden {
		writeGolden(t, goldenFile, pkt, srcPort)
		return
	}
	committed := readGolden(t, goldenFile)
	if !bytes.Equal(committed[:encap.VXLANOverhead], pkt[:encap.VXLANOverhead]) {
		t.Errorf("live encap.VXLAN+encap.Ethernet bytes differ from %s:\n got % x\nwant % x", goldenFile, pkt[:encap.VXLANOverhead], committed[:encap.VXLANOverhead])
	}
	if !bytes.Equal(committed, pkt) {
		// The inner encap.IPv4 ID may legitimately differ between kernels.
		t.Logf("inner packet differs from the committed capture:\n live % x\n file % x", pkt, committed)
	}
}
