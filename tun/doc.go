// Package tun owns the Linux TUN device: opening it with IFF_VNET_HDR and
// offloads, multi-queue, batch Read/Write in the shape of wireguard-go's
// tun.Device, GSO splitting on read and GRO coalescing on write. Link
// configuration (MTU, TxQueueLen, addresses, routes) is hostnet's.
//
// Opening: Open(name, queues, Options) attaches queues to one TUN
// (IFF_MULTI_QUEUE when queues > 1) in the calling thread's network
// namespace and asks for TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6 and
// TUN_F_USO4|TUN_F_USO6, falling back to what the kernel grants
// (Multi.Offloads says what that was). Without the virtio-net header
// (Options.NoVnetHdr, or automatically when the kernel refuses
// IFF_VNET_HDR) every Read returns one packet and every packet is one write.
// The file descriptors are non-blocking and wait in the Go runtime poller, so
// Close unblocks a pending Read or Write, which then returns os.ErrClosed,
// and SetReadDeadline wakes a pending Read without closing the queue. With
// Options.Unpolled they stay out of the poller (internal/rawfd: a wait is a
// ppoll of the waiting thread, woken by an eventfd on Close and
// SetReadDeadline, with the same results), so a packet queued while nobody
// waits wakes no runtime thread: for queues a spinning goroutine reads. The
// read and write system calls themselves are RawSyscalls (they never block):
// a Syscall would wake the runtime's sysmon thread after every idle period,
// a futex call on each packet's path.
// Closing the last queue of the (non-persistent) TUN removes the link and,
// with it, its addresses and routes.
//
// Queue steering: a multi-queue device gets a steering program
// (TUNSETSTEERINGEBPF, steering_linux.go) that picks the queue of an
// outgoing packet by a hash of its addresses and ports, so a flow always
// leaves from one queue (Offloads has OffloadSteering; Options.NoSteering,
// or a kernel that refuses the program, leaves the kernel's default). The
// default would move a flow to the queue its last packet was written on:
// a dataplane that writes a flow's replies on another queue than the one
// the flow leaves from makes it flip between queues, and its packets are
// reordered at every flip. With Options.LocalCPUs the program is the
// CPU-local one instead (steering_local_linux.go; OffloadLocalCPU): a
// packet goes to the queue of the CPU that writes it, a flow moving to
// another queue only after a pause (flowletGap), so a busy flow is never
// split over two queues; its flow map belongs to the program.
//
// Read: the kernel hands a TCP (TSO) or UDP (USO) super-packet of up to 64
// KiB with a virtio-net header; Read splits it into MSS-sized packets with
// their own IP header (IPv4 id incremented, lengths, header checksum), TCP
// sequence number (FIN/PSH only on the last, CWR only on the first) and a
// complete TCP/UDP checksum. A plain packet with a partial checksum
// (NEEDS_CSUM) gets its checksum completed. A super-packet with more segments
// than bufs is returned over several Reads. After the first frame (for which
// Read waits), Read keeps reading frames without waiting until bufs are full
// or none is queued, so packets that queued up while the caller was busy
// come back as one batch. Each bufs[i] must hold offset + MTU bytes.
// Malformed frames are counted (Queue.Stats) and skipped. TryRead is Read
// without waiting for the first frame (0 when nothing is queued), and
// WaitRead waits for readability without reading (poll_linux.go), so a
// caller can poll the queue from one goroutine while another sleeps on
// it: neither takes the runtime poller's read lock while reading.
//
// Write: consecutive TCP segments of one flow (same addresses, ports, ack,
// options, TTL/TOS, consecutive IPv4 ids, contiguous sequence numbers, flags
// ACK with PSH only on the last, equal payload size except a shorter last,
// valid IPv4 header and TCP checksums, as the kernel's GRO requires: the
// coalescer rewrites the one and has the kernel recompute the other, so a
// packet that fails either is written alone and unchanged and counted in
// Stats.GROBadChecksum) are written as one super-packet with a GSO virtio-net
// header (NEEDS_CSUM, the pseudo-header sum in the checksum field), up to
// 64 KiB. With USO the same holds for UDP datagrams of one flow. A packet
// above the link's MTU (re-read every second) is never written as a plain
// packet, which forwarding would drop: TCP (with TSO) or UDP (with USO)
// becomes a GSO super-packet of its own with segments of at most the MTU
// (e.g. a kernel vxlan peer's tunnelled-GSO packet), anything else is
// dropped; both are counted (Stats.OversizeGSO, Stats.OversizeDropped).
// Everything else is written as-is. Only the first packet of a super-packet is modified
// (its IP length, IPv4 header checksum, PSH, L4 checksum field); the others
// are written from the caller's buffers with writev, without copying, and
// nothing is written beyond len(bufs[i]), so packets may point into one big
// receive buffer. The virtio-net headers live in the Queue, so Write needs no
// headroom.
//
// The splitting and coalescing functions are pure (no file descriptor) and
// tested and fuzzed as such; checksums use an AVX2 loop where the CPU has it.
//
// Buffers: Read and Write take a vector of buffers and an offset; the packet
// lives at bufs[i][offset:]. The bytes before offset are headroom owned by the
// caller (fastpath writes outer headers there). A Device never keeps a
// reference to a caller's buffer after a call returns. Steady-state Read and
// Write allocate nothing.
//
// Concurrency: one queue (one Device value) is used by at most one reader
// and one writer goroutine at a time (Read and TryRead are the reader's;
// one goroutine may sleep in WaitRead while the reader reads); distinct
// queues are independent.
// Queue.Stats may be called from any goroutine.
package tun
