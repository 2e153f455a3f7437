// Package udp is the fastpath's batched UDP socket I/O for Linux: one
// sendmmsg/recvmmsg per batch, UDP GSO (UDP_SEGMENT) on send and UDP GRO
// (UDP_GRO) on receive, SO_REUSEPORT so that each worker owns one socket on
// the same port, large socket buffers, and Don't Fragment on every outer
// packet (IP_PMTUDISC_DO / IPV6_PMTUDISC_DO, RFC 7348 §4.3): a datagram too
// big for the path fails with EMSGSIZE instead of being fragmented, and
// Conn.PathMTU tells the caller what the path carries now.
//
// # Ownership and concurrency
//
// A Conn owns its socket and its kernel header arrays (mmsghdr, iovec,
// control and sockaddr space), allocated once in Listen; steady-state
// ReadBatch and WriteBatch allocate nothing. One goroutine may call
// ReadBatch while another calls WriteBatch; neither may be called
// concurrently with itself. TryReadBatch is ReadBatch without waiting
// (0 when nothing is queued) and counts as a ReadBatch; WaitRead only
// waits for readability and may run while another goroutine calls
// TryReadBatch (poll_linux.go; the fastpath's spinner polls a socket whose
// owner sleeps in WaitRead). With Options.Unpolled the socket is outside the
// Go runtime poller (internal/rawfd; waits are a ppoll of the waiting thread,
// Close still unblocks them with net.ErrClosed). With Options.LocalCPUs
// the socket's SO_REUSEPORT group picks the socket of the CPU a datagram is
// received on (localcpu_linux.go: an eBPF program the group owns; the
// hash when that CPU has none). Payload buffers belong to the caller: WriteBatch
// only reads them until it returns (the kernel copies), ReadBatch writes into
// Message.Buf. An Addr is immutable and may be shared; Message.Addr points at
// one (routing.Route keeps one per peer, resolved when the table is built),
// so nothing is converted per packet.
//
// # Offloads
//
// GSO: a Message with SegmentSize > 0 is one sendmsg whose payload the
// kernel cuts into SegmentSize datagrams. AppendGSO groups equal-size
// datagrams into such messages without copying: a run's datagrams become the
// message's gather list (iovecs), or one span when they are already
// contiguous, so no scratch buffer is needed. If the kernel has no
// UDP_SEGMENT (probed in Listen, ErrGSOUnsupported with RequireGSO) or
// refuses it at send time with EIO, WriteBatch sends each segment as its own
// message in the same sendmmsg: callers never need a second code path.
//
// GRO: when UDP_GRO is on, one received message may hold several datagrams
// of Message.SegmentSize bytes (the last may be shorter); Message.Datagrams
// cuts them apart. Receive buffers should then be MaxRead bytes.
//
// # Source port and ECMP entropy
//
// RFC 7348 §5 recommends a source port derived from a hash of the inner
// flow so that ECMP in the underlay spreads flows. A UDP socket sends from
// the port it is bound to and Linux has no per-message control for the
// source port (IP_PKTINFO / IPV6_PKTINFO choose only the source address).
// The fastpath therefore sends from one SendOnly socket per worker, each on
// a port of its own: entropy per worker (the kernel spreads inner flows over
// the TUN queues, one per worker) at the cost of one more file descriptor
// per worker, with no extra syscalls and no split GSO runs. A SendOnly
// socket's drop-all filter keeps anything sent to its port from being
// queued. Per-flow ports were considered and not taken:
//   - a pool of K send-only sockets per worker picked by flow hash: it
//     splits every batch into up to K sendmmsg calls (fewer messages per
//     syscall and smaller GSO runs, which is exactly what the fastpath's
//     throughput depends on) and costs K× the file descriptors and buffers;
//   - a raw or packet socket that writes the outer IPv4/IPv6+UDP headers
//     itself: it could set any source port, but loses UDP GSO, the kernel's
//     routing/neighbour handling and PMTU errors, and needs CAP_NET_RAW.
package udp
