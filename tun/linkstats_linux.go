package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LinkStats are the kernel's counters of the TUN link (rtnl_link_stats64),
// for the losses the kernel has on the device's behalf.
type LinkStats struct {
	// TxDropped counts packets the kernel routed into the TUN but dropped
	// because the queue's ring towards the reader was full (the reader,
	// vxtun's outbound side, fell behind) or no queue was attached.
	TxDropped uint64
	// RxDropped counts packets written to the TUN that the kernel dropped
	// on input (e.g. a full backlog).
	RxDropped uint64
}

// Offsets in struct rtnl_link_stats64 (all __u64, in this order: rx_packets,
// tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped,
// tx_dropped, ...).
const (
	stats64RxDropped = 6 * 8
	stats64TxDropped = 7 * 8
	stats64MinLen    = 8 * 8
)

// openNetlink opens the NETLINK_ROUTE socket LinkStats uses, in the calling
// thread's network namespace (the device's), with a receive timeout so a
// lost answer cannot block a caller for good.
func openNetlink() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// LinkStats asks the kernel (RTM_GETLINK) for the link's counters. Safe
// from any goroutine; one netlink round trip per call.
func (m *Multi) LinkStats() (LinkStats, error) {
	m.nlMu.Lock()
	defer m.nlMu.Unlock()
	if m.nl < 0 {
		return LinkStats{}, fmt.Errorf("tun %s link stats: closed", m.name)
	}
	m.nlSeq++
	req := getLinkRequest(m.name, m.nlSeq)
	if err := unix.Sendto(m.nl, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return LinkStats{}, fmt.Errorf("tun %s link stats: %w", m.name, err)
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(m.nl, buf, 0)
		if err != nil {
			return LinkStats{}, fmt.Errorf("tun %s link stats: %w", m.name, err)
		}
		st, done, err := parseGetLinkReply(buf[:n], m.nlSeq)
		if err != nil {
			return LinkStats{}, fmt.Errorf("tun %s link stats: %w", m.name, err)
		}
		if done {
			return st, nil
		}
	}
}

// getLinkRequest is an RTM_GETLINK request for the link called name.
func getLinkRequest(name string, seq uint32) []byte {
	attrLen := unix.SizeofRtAttr + len(name) + 1
	n := unix.SizeofNlMsghdr + unix.SizeofIfInfomsg + rtaAlign(attrLen)
	b := make([]byte, n)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
	*h = unix.NlMsghdr{Len: uint32(n), Type: unix.RTM_GETLINK, Flags: unix.NLM_F_REQUEST, Seq: seq}
	ifi := (*unix.IfInfomsg)(unsafe.Pointer(&b[unix.SizeofNlMsghdr]))
	ifi.Family = unix.AF_UNSPEC
	a := b[unix.SizeofNlMsghdr+unix.SizeofIfInfomsg:]
	binary.NativeEndian.PutUint16(a[0:], uint16(attrLen))
	binary.NativeEndian.PutUint16(a[2:], unix.IFLA_IFNAME)
	copy(a[unix.SizeofRtAttr:], name)
	return b
}

func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }

// errNoStats64 is returned when the kernel's answer has no IFLA_STATS64.
var errNoStats64 = errors.New("no IFLA_STATS64 in the answer")

// parseGetLinkReply reads the answer to request seq; done is false when b
// held only messages of other requests.
func parseGetLinkReply(b []byte, seq uint32) (st LinkStats, done bool, err error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return st, false, err
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Seq != seq {
			continue
		}
		switch int(m.Header.Type) {
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return st, true, unix.Errno(-e)
				}
			}
			return st, true, errors.New("netlink error without errno")
		case unix.RTM_NEWLINK:
			attrs, err := syscall.ParseNetlinkRouteAttr(m)
			if err != nil {
				return st, true, err
			}
			for _, a := range attrs {
				if int(a.Attr.Type) == unix.IFLA_STATS64 && len(a.Value) >= stats64MinLen {
					st.RxDropped = binary.NativeEndian.Uint64(a.Value[stats64RxDropped:])
					st.TxDropped = binary.NativeEndian.Uint64(a.Value[stats64TxDropped:])
					return st, true, nil
				}
			}
			return st, true, errNoStats64
		}
	}
	return st, false, nil
}
