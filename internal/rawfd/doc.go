// Package rawfd is a file descriptor kept out of the Go runtime's network
// poller, as a syscall.RawConn: the dataplane's sockets and TUN queues in
// busy-poll mode, where a poller registration would wake a runtime thread
// (an epoll_wait) for every packet although a spinning goroutine already
// reads it — a cross-CPU wake-up per packet on the latency path.
//
// The descriptor is non-blocking. Control runs a function on it; Read and
// Write run theirs until it reports done, waiting in between in a blocking
// ppoll(2) of the calling thread (the runtime hands its P to others while
// it waits). Close and SetReadDeadline wake such a wait through an eventfd
// per direction. A Set waits for several FDs in one ppoll; a Waker (an
// eventfd in the Set) lets another goroutine end that wait.
//
// Concurrency: Control may run from any number of goroutines at once; at
// most one goroutine may be in Read and one in Write at a time (each
// direction has one eventfd, and a wait that wakes consumes it). Close may
// run from any goroutine: it wakes both waits, waits for every running
// Control, Read and Write to return, then closes the descriptor, so a
// function never sees a closed or reused descriptor. Linux only.
package rawfd
