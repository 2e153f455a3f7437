package udp

import "errors"

// ErrGSOUnsupported is returned by Listen when Options.RequireGSO is set and
// the kernel has no UDP GSO (UDP_SEGMENT, Linux ≥ 4.18).
var ErrGSOUnsupported = errors.New("udp gso not supported")

// ErrGROUnsupported is returned by Listen when Options.RequireGRO is set and
// the kernel has no UDP GRO (UDP_GRO, Linux ≥ 5.0).
var ErrGROUnsupported = errors.New("udp gro not supported")

// Options tune Listen. The zero value is the fastpath default.
type Options struct {
	// BatchSize is the most kernel messages per sendmmsg/recvmmsg call
	// (default 64, at most 1024).
	BatchSize int
	// RecvBuffer and SendBuffer are SO_RCVBUF/SO_SNDBUF in bytes (default
	// 8 MiB each). SO_*BUFFORCE is tried first, so root is not capped by
	// net.core.rmem_max/wmem_max.
	RecvBuffer, SendBuffer int
	// DisableGSO and DisableGRO turn the offloads off even where the kernel
	// has them.
	DisableGSO, DisableGRO bool
	// RequireGSO and RequireGRO make Listen fail with ErrGSOUnsupported /
	// ErrGROUnsupported instead of falling back.
	RequireGSO, RequireGRO bool
	// NoReusePort leaves SO_REUSEPORT off (it is on by default so several
	// workers can each bind their own socket to the same port).
	NoReusePort bool
	// SendOnly makes a socket that only sends (e.g. from a source port of
	// its own while the receiving sockets share the well-known port): a
	// socket filter, attached before bind, drops every datagram addressed
	// to it before it is queued, GRO stays off and the receive buffer is
	// the kernel's minimum (unless RecvBuffer is set). ReadBatch on it
	// blocks until Close.
	SendOnly bool
	// Unpolled keeps the socket out of the Go runtime's network poller
	// (internal/rawfd): waits are a blocking ppoll of the waiting thread,
	// and a datagram arriving while nobody waits wakes no runtime thread.
	// For a socket a spinning goroutine reads (fastpath's busy-poll).
	Unpolled bool
	// LocalCPUs makes the socket's SO_REUSEPORT group hand a datagram to
	// its i-th socket (in bind order) when it is received on CPU
	// LocalCPUs[i], by the group's hash otherwise (localcpu_linux.go).
	// Every socket of the group should get the same list. Conn.LocalCPU
	// reports whether the kernel took the program; without it the hash
	// selects, as without the option.
	LocalCPUs []int
}

// ErrNotSupported is returned by Listen on systems other than Linux:
// batched UDP I/O needs sendmmsg/recvmmsg and UDP GSO/GRO.
var ErrNotSupported = errors.New("batched udp i/o needs linux")
