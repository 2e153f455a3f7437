package tun

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/rawfd"
)

// Options tune Open.
type Options struct {
	// NoVnetHdr opens the device without IFF_VNET_HDR: no offloads, one
	// packet per Read and one write per packet. Open also falls back to this
	// mode by itself when the kernel refuses IFF_VNET_HDR.
	NoVnetHdr bool
	// NoUSO does not ask for UDP segmentation offload (TUN_F_USO4/6) even
	// where the kernel has it; UDP is then neither split nor coalesced.
	NoUSO bool
	// NoSteering leaves a multi-queue device with the kernel's flow-table
	// queue selection instead of the flow-hash steering program
	// (steering_linux.go).
	NoSteering bool
	// LocalCPUs, on a multi-queue device with one entry per queue, steers
	// CPU-locally: a packet goes to the queue of the CPU that writes it
	// (queue i serves CPU LocalCPUs[i]), a flow moving only after a pause
	// (steering_local_linux.go); the readers of queue i should run on that
	// CPU. Offloads then has OffloadLocalCPU. When the program cannot be
	// loaded, or the length does not match, the flow-hash program steers.
	LocalCPUs []int
	// Unpolled keeps the queues out of the Go runtime's network poller
	// (internal/rawfd): waits are a blocking ppoll of the waiting thread,
	// and a packet queued while nobody waits wakes no runtime thread. For
	// queues a spinning goroutine reads (fastpath's busy-poll).
	Unpolled bool
}

// Offloads is the set of features a device obtained from the kernel.
type Offloads uint32

// Offload bits.
const (
	OffloadVnetHdr    Offloads = 1 << iota // IFF_VNET_HDR
	OffloadCsum                            // TUN_F_CSUM
	OffloadTSO                             // TUN_F_TSO4|TUN_F_TSO6
	OffloadUSO                             // TUN_F_USO4|TUN_F_USO6
	OffloadMultiQueue                      // IFF_MULTI_QUEUE
	// OffloadSteering: outgoing packets are spread over the queues by a
	// flow hash (TUNSETSTEERINGEBPF), not by where the flow was last
	// written (steering_linux.go).
	OffloadSteering
	// OffloadLocalCPU: the steering program is the CPU-local one
	// (Options.LocalCPUs).
	OffloadLocalCPU
)

func (o Offloads) String() string {
	var s []string
	for _, f := range []struct {
		bit  Offloads
		name string
	}{{OffloadVnetHdr, "vnet_hdr"}, {OffloadCsum, "csum"}, {OffloadTSO, "tso"}, {OffloadUSO, "uso"}, {OffloadMultiQueue, "multi_queue"}, {OffloadSteering, "steering"}, {OffloadLocalCPU, "local_cpu"}} {
		if o&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// readBufSize holds one virtio-net header and the largest super-packet.
const readBufSize = VirtioNetHdrLen + 65535 + 1

// Stats are a queue's counters of things it dropped rather than returned as
// errors.
type Stats struct {
	BadFrames   uint64 // frames from the kernel that could not be parsed or split
	WriteErrors uint64 // packets the kernel refused on write
	GSOFrames   uint64 // super-packets read and split
	SuperWrites uint64 // super-packets written (runs of more than one packet)
	// OversizeGSO counts packets above the device MTU written as a GSO
	// super-packet of their own (e.g. a kernel peer's tunnelled-GSO TCP).
	OversizeGSO uint64
	// OversizeDropped counts packets above the device MTU dropped because
	// GSO cannot express them (no virtio-net header, not TCP/UDP, no
	// TSO/USO, bad headers): written as they are, forwarding would drop them.
	OversizeDropped uint64
	// GROBadChecksum counts packets Write did not coalesce because their
	// IPv4 header checksum or TCP/UDP checksum did not verify (the
	// coalescer would have rewritten or recomputed it). Each was written
	// alone and unchanged, for the kernel to drop (IpInHdrErrors,
	// InCsumErrors) or accept by its own rules.
	GROBadChecksum uint64
}

// Multi is a TUN device opened with one or more queues.
type Multi struct {
	name     string
	offloads Offloads
	queues   []*Queue
	ctl      int // AF_INET datagram socket for SIOCGIFMTU, in the device's netns
	closed   sync.Once

	nlMu  sync.Mutex // serialises LinkStats on nl
	nl    int        // NETLINK_ROUTE socket in the device's netns (LinkStats)
	nlSeq uint32

	mtu   atomic.Int64 // last MTU read by writeMTU
	mtuAt atomic.Int64 // when (UnixNano)
}

// mtuRefresh is how often Write re-reads the link's MTU, which hostnet (or
// an operator) may change while the device is open.
const mtuRefresh = time.Second

// writeMTU returns the link's MTU for Write, re-read at most every
// mtuRefresh; 0 if it cannot be read (then no packet counts as oversize).
func (m *Multi) writeMTU() int {
	now := time.Now().UnixNano()
	if at := m.mtuAt.Load(); at != 0 && now-at < int64(mtuRefresh) {
		return int(m.mtu.Load())
	}
	mtu, err := m.MTU()
	if err != nil {
		mtu = 0
	}
	m.mtu.Store(int64(mtu))
	m.mtuAt.Store(now)
	return mtu
}

// Queue is one queue of a TUN device; it implements Device.
type Queue struct {
	m    *Multi
	f    queueFile // *os.File, or *rawfd.FD (Options.Unpolled)
	rc   syscall.RawConn
	vnet bool
	uso  bool

	// read side
	rbuf      []byte
	pend      gsoInfo // super-packet in rbuf[VirtioNetHdrLen:pendEnd] with segments left
	pendEnd   int
	pendAt    int    // next segment; 0: nothing pending
	rdBuf     []byte // argument and results of readFn
	rdN       int
	rdErr     error
	readFn    func(uintptr) bool
	tryReadFn func(uintptr)
	waitFn    func(uintptr) bool // WaitRead's: false once, then true
	waited    bool
	pfd       unix.PollFd   // WaitRead's readiness check
	ts0       unix.Timespec // zero: ppoll without waiting
	wrErr     error         // result of writeFn
	writeFn   func(uintptr) bool

	// write side
	gro  groTable
	hdrs []byte
	iov  []unix.Iovec

	badFrames   atomic.Uint64
	writeErrors atomic.Uint64
	gsoFrames   atomic.Uint64
	superWrites atomic.Uint64
	oversizeGSO atomic.Uint64
	oversizeDrp atomic.Uint64
	groBadCsum  atomic.Uint64
	closed      atomic.Bool
}

var _ Device = (*Queue)(nil)

// queueFile is what a Queue needs of its descriptor besides the RawConn.
type queueFile interface {
	Close() error
	SetReadDeadline(time.Time) error
}

// Open creates (or attaches to) the TUN device name ("" lets the kernel
// choose) with the given number of queues (IFF_MULTI_QUEUE when > 1), in the
// calling thread's network namespace. With the virtio-net header it asks for
// TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6 and, unless opts.NoUSO,
// TUN_F_USO4|TUN_F_USO6, falling back step by step to what the kernel
// accepts. Closing the last queue of a non-persistent TUN removes the link
// (and with it its addresses and routes).
func Open(name string, queues int, opts Options) (*Multi, error) {
	if queues < 1 {
		queues = 1
	}
	m := &Multi{ctl: -1, nl: -1}
	vnet := !opts.NoVnetHdr
	var err error
	for i := range queues {
		var fd int
		fd, vnet, err = openQueue(&name, queues > 1, vnet, i == 0)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("open tun %s queue %d: %w", name, i, err)
		}
		if i == 0 {
			if vnet {
				m.offloads |= OffloadVnetHdr
				m.offloads |= setOffloads(fd, !opts.NoUSO)
			}
			if queues > 1 {
				m.offloads |= OffloadMultiQueue
				// Without the program (no bpf(2) for us, an old kernel)
				// the kernel's flow table steers, as before.
				cpus := opts.LocalCPUs
				if len(cpus) != queues {
					cpus = nil
				}
				switch {
				case opts.NoSteering:
				case cpus != nil && setSteering(fd, cpus) == nil:
					m.offloads |= OffloadSteering | OffloadLocalCPU
				case setSteering(fd, nil) == nil:
					m.offloads |= OffloadSteering
				}
			}
		} else if m.offloads&(OffloadCsum|OffloadTSO|OffloadUSO) != 0 {
			setOffloads(fd, m.offloads&OffloadUSO != 0)
		}
		q, err := newQueue(m, fd, vnet, opts.Unpolled)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("open tun %s queue %d: %w", name, i, err)
		}
		m.queues = append(m.queues, q)
	}
	m.name = name
	m.ctl, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("open tun %s: control socket: %w", name, err)
	}
	m.nl, err = openNetlink()
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("open tun %s: netlink socket: %w", name, err)
	}
	return m, nil
}

// openQueue opens /dev/net/tun and attaches it to *name, which is updated
// to the kernel's name. On the first queue a refused IFF_VNET_HDR is retried
// without it.
func openQueue(name *string, multi, vnet, first bool) (int, bool, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, vnet, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if multi {
		flags |= unix.IFF_MULTI_QUEUE
	}
	for {
		ifr, err := unix.NewIfreq(*name)
		if err != nil {
			unix.Close(fd)
			return -1, vnet, fmt.Errorf("interface name %q: %w", *name, err)
		}
		f := flags
		if vnet {
			f |= unix.IFF_VNET_HDR
		}
		ifr.SetUint16(f)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		if err == nil {
			*name = ifr.Name()
			return fd, vnet, nil
		}
		if vnet && first && errors.Is(err, unix.EINVAL) {
			vnet = false
			continue
		}
		unix.Close(fd)
		return -1, vnet, fmt.Errorf("TUNSETIFF: %w", err)
	}
}

// setOffloads asks for the most offloads the kernel accepts.
func setOffloads(fd int, uso bool) Offloads {
	type step struct {
		flags int
		got   Offloads
	}
	steps := []step{
		{unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_USO4 | unix.TUN_F_USO6, OffloadCsum | OffloadTSO | OffloadUSO},
		{unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6, OffloadCsum | OffloadTSO},
		{unix.TUN_F_CSUM, OffloadCsum},
	}
	if !uso {
		steps = steps[1:]
	}
	for _, s := range steps {
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, s.flags) == nil {
			return s.got
		}
	}
	return 0
}

func newQueue(m *Multi, fd int, vnet, unpolled bool) (*Queue, error) {
	q := &Queue{m: m, vnet: vnet, uso: m.offloads&OffloadUSO != 0}
	if unpolled {
		rf, err := rawfd.New(fd, os.ErrClosed)
		if err != nil {
			return nil, err
		}
		q.f, q.rc = rf, rf
	} else {
		f := os.NewFile(uintptr(fd), "/dev/net/tun")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return nil, err
		}
		q.f, q.rc = f, rc
	}
	if vnet {
		q.rbuf = make([]byte, readBufSize)
	}
	q.readFn = q.doRead
	q.tryReadFn = q.doTryRead
	q.waitFn = q.doWait
	q.writeFn = q.doWritev
	return q, nil
}

// Name returns the interface name.
func (m *Multi) Name() string { return m.name }

// Offloads returns what the kernel granted.
func (m *Multi) Offloads() Offloads { return m.offloads }

// Queues returns the queues; queue i is meant for worker i.
func (m *Multi) Queues() []*Queue { return m.queues }

// Devices returns the queues as Devices.
func (m *Multi) Devices() []Device {
	d := make([]Device, len(m.queues))
	for i, q := range m.queues {
		d[i] = q
	}
	return d
}

// MTU returns the link's MTU.
func (m *Multi) MTU() (int, error) {
	ifr, err := unix.NewIfreq(m.name)
	if err != nil {
		return 0, fmt.Errorf("tun %s mtu: %w", m.name, err)
	}
	if err := unix.IoctlIfreq(m.ctl, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, fmt.Errorf("tun %s mtu: %w", m.name, err)
	}
	return int(ifr.Uint32()), nil
}

// Close closes every queue; for a non-persistent TUN this removes the link.
func (m *Multi) Close() error {
	var first error
	m.closed.Do(func() {
		for _, q := range m.queues {
			if err := q.Close(); err != nil && first == nil {
				first = err
			}
		}
		if m.ctl >= 0 {
			unix.Close(m.ctl)
		}
		m.nlMu.Lock()
		if m.nl >= 0 {
			unix.Close(m.nl)
			m.nl = -1
		}
		m.nlMu.Unlock()
	})
	return first
}

// Name returns the interface name.
func (q *Queue) Name() string { return q.m.name }

// MTU returns the link's MTU.
func (q *Queue) MTU() (int, error) { return q.m.MTU() }

// BatchSize is the largest number of packets one Read returns.
func (q *Queue) BatchSize() int {
	if q.vnet {
		return DefaultBatchSize
	}
	return 1
}

// Offloads returns what the kernel granted to the device.
func (q *Queue) Offloads() Offloads { return q.m.offloads }

// Stats returns the queue's drop counters.
func (q *Queue) Stats() Stats {
	return Stats{
		BadFrames: q.badFrames.Load(), WriteErrors: q.writeErrors.Load(),
		GSOFrames: q.gsoFrames.Load(), SuperWrites: q.superWrites.Load(),
		OversizeGSO: q.oversizeGSO.Load(), OversizeDropped: q.oversizeDrp.Load(),
		GROBadChecksum: q.groBadCsum.Load(),
	}
}

// Close closes the queue; a blocked Read or Write returns os.ErrClosed.
func (q *Queue) Close() error {
	q.closed.Store(true)
	if err := q.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close tun %s: %w", q.m.name, err)
	}
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads: a Read
// blocked waiting for the device returns an error wrapping
// os.ErrDeadlineExceeded once t has passed (a zero t clears the deadline).
// It wakes a blocked Read without closing the queue; segments of a
// super-packet already read are still returned before the deadline applies.
func (q *Queue) SetReadDeadline(t time.Time) error {
	if err := q.f.SetReadDeadline(t); err != nil {
		return fmt.Errorf("tun %s: set read deadline: %w", q.m.name, q.closedErr(err))
	}
	return nil
}

// closedErr maps the poller's "use of closed file" to os.ErrClosed.
func (q *Queue) closedErr(err error) error {
	if q.closed.Load() {
		return os.ErrClosed
	}
	return err
}

func (q *Queue) doRead(fd uintptr) bool {
	n, err := rawRead(fd, q.rdBuf)
	if err == unix.EAGAIN {
		return false
	}
	if err == unix.EBADFD {
		err = ErrDeviceRemoved
	}
	q.rdN, q.rdErr = n, err
	return true
}

// rawRead is read(2) on the non-blocking fd without telling the scheduler
// (RawSyscall): it never blocks, and a Syscall's entersyscall would, after
// an idle period, first wake the runtime's sysmon thread with a futex call
// on the packet's critical path (tens of µs on a VM whose other vCPU
// sleeps). Non-blocking TUN and socket calls take microseconds.
func rawRead(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// doTryRead is doRead without waiting: EAGAIN is a result (rdErr).
func (q *Queue) doTryRead(fd uintptr) {
	q.rdN, q.rdErr = rawRead(fd, q.rdBuf)
}

// tryRead reads one frame into b if one is queued, without blocking; ok is
// false when none is (or on any error, which the next blocking read
// reports). It runs under RawConn.Control, not Read, so it does not take
// the poller's read lock, which a goroutine in WaitRead holds.
func (q *Queue) tryRead(b []byte) (n int, ok bool) {
	n, err := q.readNow(b)
	return n, err == nil
}

// readNow reads one frame into b without waiting; unix.EAGAIN when none
// is queued.
func (q *Queue) readNow(b []byte) (int, error) {
	q.rdBuf = b
	err := q.rc.Control(q.tryReadFn)
	q.rdBuf = nil
	if err != nil {
		return 0, q.closedErr(err)
	}
	if q.rdErr == unix.EBADFD {
		return 0, ErrDeviceRemoved
	}
	return q.rdN, q.rdErr
}

// first reads the first frame of a batch: waiting for it (read), or not
// (readNow: unix.EAGAIN when none is queued).
func (q *Queue) first(b []byte, wait bool) (int, error) {
	if wait {
		return q.read(b)
	}
	return q.readNow(b)
}

// read reads one frame into b.
func (q *Queue) read(b []byte) (int, error) {
	q.rdBuf = b
	err := q.rc.Read(q.readFn)
	q.rdBuf = nil
	if err != nil {
		return 0, q.closedErr(err)
	}
	if q.rdErr != nil {
		return 0, q.rdErr
	}
	return q.rdN, nil
}

// Read reads packets into bufs[i][offset:]; each buffer must hold offset +
// MTU bytes. See Device. Frames that cannot be parsed are counted in
// Stats.BadFrames and skipped.
func (q *Queue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return q.readBatch(bufs, sizes, offset, true)
}

// readBatch is Read; without wait, a queue with nothing to read returns
// 0, nil instead of waiting for the first frame.
func (q *Queue) readBatch(bufs [][]byte, sizes []int, offset int, wait bool) (int, error) {
	if len(bufs) == 0 || len(sizes) < len(bufs) {
		return 0, fmt.Errorf("read tun %s: %d bufs, %d sizes: %w", q.m.name, len(bufs), len(sizes), io.ErrShortBuffer)
	}
	if !q.vnet {
		n, err := q.first(bufs[0][offset:], wait)
		if err == unix.EAGAIN {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read tun %s: %w", q.m.name, err)
		}
		sizes[0] = n
		return 1, nil
	}
	// Segments left over from a super-packet come first; then frames are
	// read until bufs are full or the device has none queued: the first read
	// waits, the following ones do not. One Read thus drains what queued up
	// while the caller was busy, and the caller sends it as one batch.
	n := 0
	if q.pendAt > 0 {
		pkt := q.rbuf[VirtioNetHdrLen:q.pendEnd]
		k, err := splitGSO(pkt, &q.pend, q.pendAt, bufs, sizes, offset)
		if err != nil {
			q.pendAt = 0
			return 0, fmt.Errorf("read tun %s: %w", q.m.name, err)
		}
		q.pendAt += k
		if q.pendAt < q.pend.nseg {
			return k, nil
		}
		q.pendAt = 0
		n = k
	}
	for n < len(bufs) {
		var fn int
		if n == 0 {
			var err error
			if fn, err = q.first(q.rbuf, wait); err != nil {
				if err == unix.EAGAIN {
					return 0, nil
				}
				return 0, fmt.Errorf("read tun %s: %w", q.m.name, err)
			}
		} else {
			var ok bool
			if fn, ok = q.tryRead(q.rbuf); !ok {
				break
			}
		}
		k, err := q.handleFrame(fn, bufs[n:], sizes[n:], offset)
		if errors.Is(err, ErrBadFrame) || errors.Is(err, ErrUnsupportedGSO) {
			q.badFrames.Add(1)
			continue
		}
		if err != nil {
			if n > 0 {
				// Return what was read; this frame is lost (counted).
				q.badFrames.Add(1)
				break
			}
			return 0, fmt.Errorf("read tun %s: %w", q.m.name, err)
		}
		n += k
		if q.pendAt > 0 {
			break // rbuf holds the rest of a super-packet
		}
	}
	return n, nil
}

// handleFrame turns the frame rbuf[:n] into packets in bufs.
func (q *Queue) handleFrame(n int, bufs [][]byte, sizes []int, offset int) (int, error) {
	if n < VirtioNetHdrLen {
		return 0, fmt.Errorf("frame of %d bytes: %w", n, ErrBadFrame)
	}
	h := VirtioNetHdr(q.rbuf[:VirtioNetHdrLen])
	pkt := q.rbuf[VirtioNetHdrLen:n]
	if h.GSOType() == GSONone {
		if len(bufs[0]) < offset+len(pkt) {
			return 0, fmt.Errorf("buffer of %d bytes for %d-byte packet at offset %d: %w", len(bufs[0]), len(pkt), offset, io.ErrShortBuffer)
		}
		p := bufs[0][offset : offset+len(pkt)]
		copy(p, pkt)
		if h.Flags()&VirtioNetHdrFNeedsCsum != 0 {
			if err := finishChecksum(h, p); err != nil {
				return 0, err
			}
		}
		sizes[0] = len(p)
		return 1, nil
	}
	g, err := parseGSO(h, pkt)
	if err != nil {
		return 0, err
	}
	k, err := splitGSO(pkt, &g, 0, bufs, sizes, offset)
	if err != nil {
		return 0, err
	}
	q.gsoFrames.Add(1)
	if k < g.nseg {
		q.pend, q.pendEnd, q.pendAt = g, n, k
	}
	return k, nil
}

func (q *Queue) doWritev(fd uintptr) bool {
	var errno syscall.Errno
	if len(q.iov) == 1 {
		_, _, errno = unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(q.iov[0].Base)), uintptr(q.iov[0].Len))
	} else {
		_, _, errno = unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&q.iov[0])), uintptr(len(q.iov)))
	}
	if errno == unix.EAGAIN {
		return false
	}
	q.wrErr = nil
	if errno != 0 {
		q.wrErr = errno
	}
	return true
}

// writeIov writes q.iov as one packet. A packet the kernel refuses is
// counted; only a closed device is an error.
func (q *Queue) writeIov() error {
	err := q.rc.Write(q.writeFn)
	if err != nil {
		return q.closedErr(err)
	}
	if q.wrErr != nil {
		switch q.wrErr {
		case unix.EBADF:
			return os.ErrClosed
		case unix.EBADFD:
			return fmt.Errorf("write tun %s: %w", q.m.name, ErrDeviceRemoved)
		}
		q.writeErrors.Add(1)
	}
	return nil
}

func (q *Queue) addIov(b []byte) {
	if len(b) == 0 {
		return
	}
	var v unix.Iovec
	v.Base = &b[0]
	v.SetLen(len(b))
	q.iov = append(q.iov, v)
}

// Write writes the packets bufs[i][offset:], coalescing TCP (and, with USO,
// UDP) segments of one flow into super-packets. It returns len(bufs) unless
// the device is closed. Packets the kernel refuses are counted in
// Stats.WriteErrors. No packet above the link's MTU is written as a plain
// packet (forwarding would drop it): a TCP/UDP one becomes a GSO
// super-packet of its own, anything else is dropped (Stats.Oversize*).
// The leader packet of a super-packet has its IP and
// L4 headers rewritten in place; the virtio-net headers live in the queue,
// so offset may be 0. Members are not copied (writev).
func (q *Queue) Write(bufs [][]byte, offset int) (int, error) {
	mtu := q.m.writeMTU()
	if !q.vnet {
		for i, b := range bufs {
			if mtu > 0 && len(b)-offset > mtu {
				q.oversizeDrp.Add(1)
				continue
			}
			q.iov = q.iov[:0]
			q.addIov(b[offset:])
			if len(q.iov) == 0 {
				continue
			}
			if err := q.writeIov(); err != nil {
				return i, fmt.Errorf("write tun %s: %w", q.m.name, err)
			}
		}
		return len(bufs), nil
	}
	q.gro.mtu, q.gro.tso = mtu, q.m.offloads&OffloadTSO != 0
	q.gro.coalesce(bufs, offset, q.uso)
	if q.gro.badCsum > 0 {
		q.groBadCsum.Add(uint64(q.gro.badCsum))
	}
	runs := q.gro.runs
	if need := len(runs) * VirtioNetHdrLen; cap(q.hdrs) < need {
		q.hdrs = make([]byte, need)
	}
	done := 0
	for ri := range runs {
		r := &runs[ri]
		if r.drop {
			q.oversizeDrp.Add(1)
			done += r.count
			continue
		}
		if r.gso {
			q.oversizeGSO.Add(1)
		}
		vh := q.hdrs[ri*VirtioNetHdrLen : (ri+1)*VirtioNetHdrLen]
		finishRun(r, bufs, offset, vh)
		q.iov = q.iov[:0]
		q.addIov(vh)
		q.addIov(bufs[r.first][offset:])
		for i := q.gro.next[r.first]; i >= 0; i = q.gro.next[i] {
			q.addIov(bufs[i][offset+r.hdrLen:])
		}
		if err := q.writeIov(); err != nil {
			return done, fmt.Errorf("write tun %s: %w", q.m.name, err)
		}
		done += r.count
		if r.count > 1 {
			q.superWrites.Add(1)
		}
	}
	return len(bufs), nil
}
