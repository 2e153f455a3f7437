package udp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	defaultBatch  = 64
	maxBatch      = 1024 // UIO_MAXIOV caps vlen of sendmmsg/recvmmsg
	defaultBuffer = 8 << 20
	sendCtlSize   = 24 // CMSG_SPACE(sizeof(uint16)) on 64-bit
	recvCtlSize   = 64 // room for UDP_GRO's int and SO_RXQ_OVFL's uint32 (24 bytes each)
	cmsgHdrSize   = unix.SizeofCmsghdr
)

// Conn is one UDP socket with batched I/O. ReadBatch and WriteBatch may run
// concurrently with each other, but each must not run concurrently with
// itself (each owns its own kernel header arrays). Close may be called from
// any goroutine and unblocks both.
type Conn struct {
	sock  io.Closer // the *net.UDPConn, or the *rawfd.FD (Options.Unpolled)
	rc    syscall.RawConn
	laddr netip.AddrPort
	batch int
	gso   atomic.Bool
	gro   bool
	// localCPU: the SO_REUSEPORT group selects by CPU (Options.LocalCPUs).
	localCPU bool

	// write state, owned by the WriteBatch caller
	whdrs   []unix.Mmsghdr
	wiov    []unix.Iovec
	wctl    []byte
	wowner  []int32 // kernel message → index into the caller's msgs
	wgso    []bool  // kernel message carries UDP_SEGMENT
	wstart  int
	wend    int
	wsent   int
	werr    error
	writeFn func(fd uintptr) bool
	// injectGSOEIO makes GSO sends fail with EIO, as on a kernel that cannot
	// checksum them (tests only; such kernels are older than this machine).
	injectGSOEIO bool

	// read state, owned by the ReadBatch caller
	rhdrs  []unix.Mmsghdr
	riov   []unix.Iovec
	rnames []byte
	rctl   []byte
	// lastOvfl is the last SO_RXQ_OVFL count seen (ReadBatch's);
	// rxOverflows accumulates its growth for RxQueueOverflows.
	lastOvfl    uint32
	rxOverflows atomic.Uint64
	rn          int
	rgot        int
	rerr        error
	readFn      func(fd uintptr) bool
	tryReadFn   func(fd uintptr)      // readFn without waiting (TryReadBatch)
	waitFn      func(fd uintptr) bool // WaitRead's: false once, then true
	waited      bool
	pfd         unix.PollFd   // WaitRead's readiness check
	ts0         unix.Timespec // zero: ppoll without waiting

	// probe is a socket of the same family and network namespace, used
	// only to ask the kernel for a destination's path MTU (PathMTU).
	probeMu sync.Mutex
	probe   int
}

// Listen opens a UDP socket bound to laddr in the calling goroutine's network
// namespace: an IPv4 socket for an IPv4 address, a dual-stack IPv6 socket for
// [::] (or an invalid address), an IPv6-only socket for any other IPv6
// address. With SO_REUSEPORT (the default) several Conns may bind the same
// address; the kernel spreads incoming flows across them. Port 0 picks a
// free port (see LocalAddr); bind further sockets to that port. opts may be
// nil.
func Listen(laddr netip.AddrPort, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BatchSize <= 0 {
		o.BatchSize = defaultBatch
	}
	if o.BatchSize > maxBatch {
		o.BatchSize = maxBatch
	}
	if o.SendOnly {
		o.DisableGRO = true
		if o.RecvBuffer <= 0 {
			o.RecvBuffer = 1 // the kernel rounds it up to its minimum
		}
	}
	if o.RecvBuffer <= 0 {
		o.RecvBuffer = defaultBuffer
	}
	if o.SendBuffer <= 0 {
		o.SendBuffer = defaultBuffer
	}
	ip := laddr.Addr()
	network := "udp6"
	if !ip.IsValid() {
		ip = netip.IPv6Unspecified()
	}
	if ip.Unmap().Is4() {
		network = "udp4"
		ip = ip.Unmap()
	} else if ip.IsUnspecified() {
		network = "udp" // [::] as a dual-stack socket (Go sets IPV6_V6ONLY for "udp6")
	}
	laddr = netip.AddrPortFrom(ip, laddr.Port())
	v6 := network != "udp4"

	control := func(c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if !o.NoReusePort {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
					serr = fmt.Errorf("set SO_REUSEPORT: %w", err)
					return
				}
			}
			if o.SendOnly {
				if err := attachDropAll(int(fd)); err != nil {
					serr = fmt.Errorf("attach drop-all filter: %w", err)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	c := &Conn{batch: o.BatchSize, probe: -1}
	if o.Unpolled {
		fd, local, err := listenUnpolled(network, laddr, control)
		if err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", laddr, err)
		}
		c.sock, c.rc, c.laddr = fd, fd, local
	} else {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error { return control(c) }}
		pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
		if err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", laddr, err)
		}
		uc := pc.(*net.UDPConn)
		c.sock = uc
		if c.rc, err = uc.SyscallConn(); err != nil {
			uc.Close()
			return nil, fmt.Errorf("listen udp %s: %w", laddr, err)
		}
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok {
			c.laddr = la.AddrPort()
		}
	}
	fail := func(err error) (*Conn, error) {
		c.sock.Close()
		return nil, fmt.Errorf("listen udp %s: %w", laddr, err)
	}

	var gsoErr, groErr, setupErr error
	err := c.rc.Control(func(fd uintptr) {
		s := int(fd)
		if err := setBuffer(s, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, o.RecvBuffer); err != nil {
			setupErr = fmt.Errorf("set receive buffer: %w", err)
			return
		}
		if err := setBuffer(s, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, o.SendBuffer); err != nil {
			setupErr = fmt.Errorf("set send buffer: %w", err)
			return
		}
		// Never fragment the outer packet (RFC 7348 §4.3): DF set, and an
		// oversize send fails with EMSGSIZE.
		if v6 {
			if err := unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO); err != nil {
				setupErr = fmt.Errorf("set IPV6_MTU_DISCOVER: %w", err)
				return
			}
			// IPv4 through the dual-stack socket uses the IPv4 option
			// (TestDontFragmentV6 shows it is needed).
			if err := unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
				setupErr = fmt.Errorf("set IP_MTU_DISCOVER on ipv6 socket: %w", err)
				return
			}
		} else if err := unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
			setupErr = fmt.Errorf("set IP_MTU_DISCOVER: %w", err)
			return
		}
		// Each received datagram then carries the socket's drop count
		// (full receive queue), so ReadBatch learns of the kernel's drops.
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
			setupErr = fmt.Errorf("set SO_RXQ_OVFL: %w", err)
			return
		}
		if len(o.LocalCPUs) > 0 && !o.NoReusePort && !o.SendOnly {
			// Without it the group's hash picks the socket, as before.
			c.localCPU = attachLocalCPU(s, o.LocalCPUs) == nil
		}
		gsoErr = probeGSO(s)
		if !o.DisableGRO {
			if err := unix.SetsockoptInt(s, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
				groErr = fmt.Errorf("%w: %w", ErrGROUnsupported, err)
			} else {
				c.gro = true
			}
		}
	})
	if err != nil {
		return fail(err)
	}
	if setupErr != nil {
		return fail(setupErr)
	}
	if o.RequireGSO && gsoErr != nil {
		return fail(gsoErr)
	}
	if o.RequireGRO && groErr != nil {
		return fail(groErr)
	}
	c.gso.Store(gsoErr == nil && !o.DisableGSO)

	c.whdrs = make([]unix.Mmsghdr, c.batch)
	c.wiov = make([]unix.Iovec, c.batch*4)
	c.wctl = make([]byte, c.batch*sendCtlSize)
	c.wowner = make([]int32, c.batch)
	c.wgso = make([]bool, c.batch)
	c.rhdrs = make([]unix.Mmsghdr, c.batch)
	c.riov = make([]unix.Iovec, c.batch)
	c.rnames = make([]byte, c.batch*sockaddrSize)
	c.rctl = make([]byte, c.batch*recvCtlSize)
	c.writeFn = c.doWrite
	c.readFn = c.doRead
	c.tryReadFn = c.doTryRead
	c.waitFn = c.doWait
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	if c.probe, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fail(fmt.Errorf("path mtu probe socket: %w", err))
	}
	return c, nil
}

// PathMTU returns the kernel's current path MTU towards a (the route's MTU,
// lowered by any ICMP "fragmentation needed" / "packet too big" the host
// has received): the largest outer IP packet a send to a can carry. It
// sends nothing. Safe for concurrent use; meant for the rare EMSGSIZE path.
func (c *Conn) PathMTU(a *Addr) (int, error) {
	if a == nil || !a.IsValid() {
		return 0, fmt.Errorf("path mtu: %w", ErrBadMessage)
	}
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if c.probe < 0 {
		return 0, fmt.Errorf("path mtu to %s: %w", a, net.ErrClosed)
	}
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(c.probe), uintptr(unsafe.Pointer(a.rawPtr())), uintptr(a.n))
	if e != 0 {
		return 0, fmt.Errorf("path mtu to %s: connect: %w", a, e)
	}
	mtu, err := unix.GetsockoptInt(c.probe, unix.IPPROTO_IP, unix.IP_MTU)
	if err != nil {
		mtu, err = unix.GetsockoptInt(c.probe, unix.IPPROTO_IPV6, unix.IPV6_MTU)
	}
	if err != nil {
		return 0, fmt.Errorf("path mtu to %s: %w", a, err)
	}
	return mtu, nil
}

// probeGSO reports whether the kernel knows UDP_SEGMENT.
func probeGSO(fd int) error {
	if _, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT); err != nil {
		return fmt.Errorf("%w: %w", ErrGSOUnsupported, err)
	}
	return nil
}

func setBuffer(fd, force, plain, size int) error {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
}

// dropAll is a classic BPF program of one instruction, "return 0": the
// socket accepts no datagram.
var dropAll = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

func attachDropAll(fd int) error {
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]})
}

// RxQueueOverflows is how many datagrams the kernel dropped because this
// socket's receive buffer was full, as far as ReadBatch has learnt it: the
// count arrives with the next datagram received (SO_RXQ_OVFL). Safe from
// any goroutine.
func (c *Conn) RxQueueOverflows() uint64 { return c.rxOverflows.Load() }

// LocalCPU reports whether the socket's SO_REUSEPORT group selects
// sockets by CPU (Options.LocalCPUs).
func (c *Conn) LocalCPU() bool { return c.localCPU }

// LocalAddr is the bound address (with the port the kernel chose for port 0).
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// GSO reports whether sends use UDP GSO. It turns false for good if the
// kernel refuses a GSO send with EIO (a device without checksum offload);
// WriteBatch then resends that message as separate datagrams.
func (c *Conn) GSO() bool { return c.gso.Load() }

// GRO reports whether UDP GRO is on: received messages may then hold several
// datagrams (Message.SegmentSize) and receive buffers should be MaxRead long.
func (c *Conn) GRO() bool { return c.gro }

// BatchSize is the most kernel messages one syscall moves.
func (c *Conn) BatchSize() int { return c.batch }

// Close closes the socket; blocked ReadBatch/WriteBatch calls return
// net.ErrClosed. Idempotent.
func (c *Conn) Close() error {
	c.probeMu.Lock()
	if c.probe >= 0 {
		unix.Close(c.probe)
		c.probe = -1
	}
	c.probeMu.Unlock()
	err := c.sock.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// WriteBatch sends msgs with as few sendmmsg calls as the batch size allows
// and returns how many messages were sent entirely. On error, msgs[n] is the
// message that failed (its GSO datagrams may be partly sent) and err wraps
// the errno: unix.EMSGSIZE for a datagram larger than the path MTU (DF is
// always set), unix.EINVAL for a GSO segment over the MTU. Resume with
// msgs[n+1:] to skip it. A message without a valid Addr or with a negative
// SegmentSize fails the same way with ErrBadMessage. WriteBatch blocks until
// the socket takes every message.
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	done := 0
	for done < len(msgs) {
		next, k, err := c.fill(msgs, done)
		if err != nil {
			return done, err
		}
		c.wstart, c.wend, c.werr, c.wsent = 0, k, nil, 0
		if err := c.rc.Write(c.writeFn); err != nil {
			return done, fmt.Errorf("sendmmsg: %w", err)
		}
		if c.werr != nil {
			failed := int(c.wowner[c.wstart])
			if c.werr == unix.EIO && c.wgso[c.wstart] && c.gso.Load() {
				// The device cannot checksum GSO; resend the rest split.
				c.gso.Store(false)
				done = failed
				continue
			}
			return failed, fmt.Errorf("sendmmsg to %s: %w", msgs[failed].Addr, c.werr)
		}
		done = next
	}
	return done, nil
}

// doWrite runs in the netpoller's write callback: it sends whdrs[wstart:wend],
// retrying on partial sends, and asks to wait on EAGAIN.
//
// sendmmsg and recvmmsg are issued with RawSyscall: the socket is
// non-blocking, so they take microseconds, and a Syscall's entersyscall
// would, after every idle period, first wake the runtime's sysmon thread
// with a futex call on the packet's critical path (measured 3–16 µs per hop
// on a 2-vCPU VM, four hops per round trip).
func (c *Conn) doWrite(fd uintptr) bool {
	for c.wstart < c.wend {
		end := c.wend
		if c.injectGSOEIO {
			// Like the kernel: send up to the first GSO message, fail there.
			for j := c.wstart; j < c.wend; j++ {
				if c.wgso[j] {
					end = j
					break
				}
			}
			if end == c.wstart {
				c.werr = unix.EIO
				return true
			}
		}
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&c.whdrs[c.wstart])), uintptr(end-c.wstart), 0, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			c.werr = e
			return true
		}
		c.wstart += int(n)
	}
	return true
}

// fill lays out kernel messages for msgs[from:] until the header array is
// full; it returns the index of the first caller message not included and
// the number of kernel messages.
func (c *Conn) fill(msgs []Message, from int) (next, k int, err error) {
	iovUsed := 0
	gso := c.gso.Load()
	i := from
	for ; i < len(msgs); i++ {
		m := &msgs[i]
		if err := checkMessage(m); err != nil {
			if k > 0 {
				break // send what precedes it first, so msgs[n] is the bad one
			}
			return 0, 0, fmt.Errorf("message %d: %w", i, err)
		}
		nbuf := 1
		total := len(m.Buf)
		if m.Bufs != nil {
			nbuf = len(m.Bufs)
			total = 0
			for _, b := range m.Bufs {
				total += len(b)
			}
		}
		seg := m.SegmentSize
		if seg >= total {
			seg = 0 // one datagram
		}
		if seg == 0 || gso {
			if k == len(c.whdrs) {
				break
			}
			if iovUsed+nbuf > len(c.wiov) {
				if k > 0 {
					break
				}
				c.wiov = make([]unix.Iovec, nbuf) // rare: grow once for a huge gather list
			}
			iov := c.wiov[iovUsed : iovUsed+nbuf]
			if m.Bufs != nil {
				for j, b := range m.Bufs {
					setIov(&iov[j], b)
				}
			} else {
				setIov(&iov[0], m.Buf)
			}
			c.setHdr(k, i, m.Addr, iov, seg)
			iovUsed += nbuf
			k++
			continue
		}
		// No GSO: one kernel message per segment, iovecs cut from the payload.
		nseg := (total + seg - 1) / seg
		if k+nseg > len(c.whdrs) || iovUsed+nseg+nbuf > len(c.wiov) {
			if k > 0 {
				break
			}
			if nseg > len(c.whdrs) {
				return 0, 0, fmt.Errorf("message %d: %d segments exceed the batch size %d without gso", i, nseg, len(c.whdrs))
			}
			c.wiov = make([]unix.Iovec, nseg+nbuf)
		}
		bufs := m.Bufs
		if bufs == nil {
			bufs = [][]byte{m.Buf} // does not escape: only read below
		}
		bi, off := 0, 0
		for s := 0; s < nseg; s++ {
			want := min(seg, total-s*seg)
			start := iovUsed
			for want > 0 {
				b := bufs[bi][off:]
				if len(b) == 0 {
					bi, off = bi+1, 0
					continue
				}
				take := min(len(b), want)
				setIov(&c.wiov[iovUsed], b[:take])
				iovUsed++
				want -= take
				off += take
			}
			c.setHdr(k, i, m.Addr, c.wiov[start:iovUsed], 0)
			k++
		}
	}
	return i, k, nil
}

// ErrBadMessage is wrapped by WriteBatch's error for a message it cannot
// send at all: no (or the zero) Addr, or a negative SegmentSize.
var ErrBadMessage = errors.New("bad message")

func checkMessage(m *Message) error {
	if m.Addr == nil || m.Addr.n == 0 {
		return fmt.Errorf("no destination address: %w", ErrBadMessage)
	}
	if m.SegmentSize < 0 {
		return fmt.Errorf("negative segment size: %w", ErrBadMessage)
	}
	return nil
}

func setIov(v *unix.Iovec, b []byte) {
	if len(b) == 0 {
		v.Base = nil
	} else {
		v.Base = &b[0]
	}
	v.SetLen(len(b))
}

// setHdr fills kernel message k (owned by caller message owner).
func (c *Conn) setHdr(k, owner int, a *Addr, iov []unix.Iovec, seg int) {
	h := &c.whdrs[k].Hdr
	h.Name = a.rawPtr()
	h.Namelen = a.n
	if len(iov) > 0 {
		h.Iov = &iov[0]
	} else {
		h.Iov = nil
	}
	h.SetIovlen(len(iov))
	c.wowner[k] = int32(owner)
	c.wgso[k] = seg > 0
	if seg > 0 {
		ctl := c.wctl[k*sendCtlSize : (k+1)*sendCtlSize]
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		cm.Level = unix.SOL_UDP
		cm.Type = unix.UDP_SEGMENT
		cm.SetLen(unix.CmsgLen(2))
		binary.NativeEndian.PutUint16(ctl[cmsgHdrSize:], uint16(seg))
		h.Control = &ctl[0]
		h.SetControllen(unix.CmsgSpace(2))
	} else {
		h.Control = nil
		h.SetControllen(0)
	}
	h.Flags = 0
}

// ReadBatch receives up to min(len(msgs), BatchSize()) messages with one
// recvmmsg, blocking until at least one arrives, and returns how many it
// filled. Each msgs[i].Buf must be non-empty; with GRO on, give MaxRead
// bytes, or coalesced data beyond Buf is lost (Trunc set).
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	return c.readBatch(msgs, true)
}

func (c *Conn) readBatch(msgs []Message, wait bool) (int, error) {
	n := min(len(msgs), len(c.rhdrs))
	if n == 0 {
		return 0, nil
	}
	for i := 0; i < n; i++ {
		b := msgs[i].Buf
		if len(b) == 0 {
			return 0, fmt.Errorf("message %d: empty receive buffer", i)
		}
		setIov(&c.riov[i], b)
		h := &c.rhdrs[i].Hdr
		h.Name = &c.rnames[i*sockaddrSize]
		h.Namelen = sockaddrSize
		h.Iov = &c.riov[i]
		h.SetIovlen(1)
		h.Control = &c.rctl[i*recvCtlSize]
		h.SetControllen(recvCtlSize)
		h.Flags = 0
		c.rhdrs[i].Len = 0
	}
	c.rn, c.rgot, c.rerr = n, 0, nil
	ovfl := c.lastOvfl
	var err error
	if wait {
		err = c.rc.Read(c.readFn)
	} else {
		err = c.rc.Control(c.tryReadFn)
	}
	if err != nil {
		return 0, fmt.Errorf("recvmmsg: %w", err)
	}
	if c.rerr != nil {
		return 0, fmt.Errorf("recvmmsg: %w", c.rerr)
	}
	for i := 0; i < c.rgot; i++ {
		h := &c.rhdrs[i]
		m := &msgs[i]
		m.N = int(h.Len)
		m.Trunc = h.Hdr.Flags&unix.MSG_TRUNC != 0
		m.From = parseSockaddr(c.rnames[i*sockaddrSize : i*sockaddrSize+int(min(h.Hdr.Namelen, sockaddrSize))])
		ctl := c.rctl[i*recvCtlSize : i*recvCtlSize+int(min(h.Hdr.Controllen, recvCtlSize))]
		m.SegmentSize = groSize(ctl)
		if n, ok := rxqOverflow(ctl); ok {
			ovfl = n
		}
	}
	if ovfl != c.lastOvfl {
		// The count is cumulative (it wraps at 2^32): add what it grew by.
		c.rxOverflows.Add(uint64(ovfl - c.lastOvfl))
		c.lastOvfl = ovfl
	}
	return c.rgot, nil
}

func (c *Conn) doRead(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&c.rhdrs[0])), uintptr(c.rn), 0, 0, 0)
		switch e {
		case 0:
			c.rgot = int(n)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default:
			c.rerr = e
			return true
		}
	}
}

// groSize returns the UDP_GRO segment size from received control data, or 0.
func groSize(ctl []byte) int {
	if d, ok := findCmsg(ctl, unix.SOL_UDP, unix.UDP_GRO, 4); ok {
		return int(binary.NativeEndian.Uint32(d))
	}
	return 0
}

// rxqOverflow returns the SO_RXQ_OVFL count of received control data: the
// datagrams the socket had dropped for a full receive queue, since it was
// opened, when this one was queued.
func rxqOverflow(ctl []byte) (uint32, bool) {
	if d, ok := findCmsg(ctl, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 4); ok {
		return binary.NativeEndian.Uint32(d), true
	}
	return 0, false
}

// findCmsg returns the data of the first control message of level and typ
// with at least min bytes of data.
func findCmsg(ctl []byte, level, typ int32, min int) ([]byte, bool) {
	for len(ctl) >= cmsgHdrSize {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(cm.Len)
		if l < cmsgHdrSize || l > len(ctl) {
			return nil, false
		}
		if cm.Level == level && cm.Type == typ && l >= cmsgHdrSize+min {
			return ctl[cmsgHdrSize:l], true
		}
		next := cmsgAlign(l)
		if next >= len(ctl) {
			return nil, false
		}
		ctl = ctl[next:]
	}
	return nil, false
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}
