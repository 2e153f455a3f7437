package fastpath

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
	"github.com/vxtun/vxtun/tun"
)

// worker owns one TUN queue and two UDP sockets: conn, bound to the listen
// port in the forwarders' SO_REUSEPORT group, receives; tx, send-only on an
// ephemeral port of its own, sends (tx is conn with
// Config.SharedSourcePort). Two goroutines run it: the outbound one reads
// the TUN queue and sends on tx, the inbound one receives on conn and writes
// the TUN queue. Each owns its state
// (outState, inState) and counters; the two meet only at tunMu (ICMP errors
// the outbound side writes into the TUN) and sendMu (ARP replies the inbound
// side sends), each taken once per batch. With a second underlay
// (Config.ListenAddr6) the worker has a sibling, v6, that owns the IPv6
// sockets: only its inbound goroutine runs, sharing dev and tunMu; the
// outbound goroutine sends IPv6-underlay messages on v6.tx under v6.sendMu.
type worker struct {
	f    *Forwarder
	id   int
	dev  tun.Device
	conn *udp.Conn // receives (and sends, with Config.SharedSourcePort)
	tx   *udp.Conn // sends: outbound batches, ARP replies, PathMTU
	v6   *worker   // the IPv6 underlay's sockets and inbound side, or nil

	tunMu  *sync.Mutex // serialises dev.Write (shared with v6)
	sendMu sync.Mutex  // serialises tx.WriteBatch

	out, in dirCounters

	ob outState
	ib inState

	// The wait loop's view (poll.go): tokens and read-without-waiting
	// functions per direction; outDir.try is nil (and ptun) when the TUN
	// cannot be read without waiting.
	inDir, outDir dir
	ptun          pollTUN
	// waits counts its owners' waits for a descriptor (Stats.Waits).
	waits atomic.Uint64
}

// outState is the outbound goroutine's: TUN read → route → encap → send.
type outState struct {
	bufs     [][]byte
	sizes    []int
	pkts     []outPkt
	slots    []*routing.Route // distinct peers of this batch
	slotOff  []int
	frames   [][]byte // frames grouped by peer, batch order kept per peer
	msgs     []udp.Message
	msgRoute []*routing.Route
	icmp     [][]byte
	icmpOut  [][]byte
	frag     [][]byte // fragment buffers, allocated at the first fragmentation
	nfrag    int
	c        batchCounts
	lastLog  time.Time
	fails    int // consecutive non-fatal read errors

	lastSlot  int
	lastRoute *routing.Route

	// msgs6 and msgRoute6 take the IPv6-underlay messages of a batch when
	// the worker has a v6 sibling (sendByFamily); nil otherwise.
	msgs6     []udp.Message
	msgRoute6 []*routing.Route
}

type outPkt struct {
	slot  int
	frame []byte
}

// inState is the inbound goroutine's: receive → check → decap → TUN write.
type inState struct {
	msgs    []udp.Message
	wout    [][]byte
	arpBufs [][]byte
	arpMsgs []udp.Message
	c       batchCounts
	lastLog time.Time
	fails   int // consecutive non-fatal read errors
}

// maxSlots bounds the distinct peers grouped per outbound batch; packets to
// further peers go out in batch order without grouping.
const maxSlots = 64

const (
	maxFragBufs     = 64 // IPv4 fragments one outbound batch can produce
	maxICMPPerBatch = 16
	maxARPPerBatch  = 16
	maxTunWrite     = 1024
	errorBudget     = 100 // consecutive non-fatal I/O errors before giving up
)

func newWorker(f *Forwarder, id int, dev tun.Device, conn, tx *udp.Conn) *worker {
	w := &worker{f: f, id: id, dev: dev, conn: conn, tx: tx, tunMu: new(sync.Mutex)}
	bs := max(dev.BatchSize(), 1)
	o := &w.ob
	// A TUN read returns packets of at most the device MTU (super-packets
	// come split); room for a 9000-byte MTU keeps a later MTU raise working.
	size := 65536
	if mtu, err := dev.MTU(); err == nil && mtu > 0 {
		size = min(max(mtu, 9000), size)
	}
	o.bufs = make([][]byte, bs)
	for i := range o.bufs {
		o.bufs[i] = make([]byte, Headroom+size)
	}
	o.sizes = make([]int, bs)
	o.pkts = make([]outPkt, 0, bs+maxFragBufs)
	o.slots = make([]*routing.Route, 0, maxSlots)
	o.slotOff = make([]int, maxSlots+1)
	o.frames = make([][]byte, bs+maxFragBufs)
	o.msgs = make([]udp.Message, 0, bs+maxFragBufs)
	o.msgRoute = make([]*routing.Route, 0, bs+maxFragBufs)
	o.icmp = make([][]byte, maxICMPPerBatch)
	for i := range o.icmp {
		o.icmp[i] = make([]byte, Headroom+encap.ICMPv6ErrorMaxLen)
	}
	o.icmpOut = make([][]byte, 0, maxICMPPerBatch)
	w.ib.init()
	if conn != nil { // unit tests build workers without sockets
		w.initDirs()
	}
	return w
}

// init allocates the inbound buffers.
func (in *inState) init() {
	in.msgs = make([]udp.Message, rxBatch)
	for i := range in.msgs {
		in.msgs[i].Buf = make([]byte, udp.MaxRead)
	}
	in.wout = make([][]byte, 0, maxTunWrite)
	in.arpBufs = make([][]byte, maxARPPerBatch)
	for i := range in.arpBufs {
		in.arpBufs[i] = make([]byte, encap.VXLANOverhead+encap.ARPSize)
	}
	in.arpMsgs = make([]udp.Message, 0, maxARPPerBatch)
}

// logRare logs at most once per 10 s per direction.
func (w *worker) logRare(last *time.Time, msg string, err error) {
	if now := time.Now(); now.Sub(*last) > 10*time.Second {
		*last = now
		w.f.log.Warn(msg, "worker", w.id, "err", err)
	}
}

func (w *worker) writeTun(bufs [][]byte, offset int) error {
	w.tunMu.Lock()
	_, err := w.dev.Write(bufs, offset)
	w.tunMu.Unlock()
	return err
}
