package fastpath

// CPU-local forwarding (Config.LocalCPUs). On a small VM most of a
// round trip's latency is cross-CPU wake-ups: a thread woken on another
// vCPU, often a halted one, starts 30–50 µs later; one woken on the CPU
// that wakes it runs at once. With LocalCPUs every step of a packet stays
// on the CPU it started on: the TUN's steering program queues an outgoing
// packet on the queue of the CPU that wrote it (the application's), that
// queue's worker runs only there and sends from there; the kernel
// delivers the datagram on the sending CPU (veth) or on the CPU of its
// NIC receive queue, and the SO_REUSEPORT program hands it to the socket
// of that CPU's worker, which writes the inner packet into the TUN from
// there, where the receiving application (or the kernel's echo reply)
// runs on. Busy flows keep their queue (flowlets, see tun's
// steering_local_linux.go); under load the flows spread over the CPUs
// their senders run on.
//
// Each owner goroutine locks its thread and sets the thread's CPU
// affinity before its first read (pinThread); the thread ends with the
// goroutine, so no other goroutine ever runs pinned. Without a spinner a
// worker has one owner for all its directions (singleOwner, localLoop).
// Its descriptors are outside the runtime poller (Config.Unpolled): it
// waits in a blocking ppoll of its own thread, so a packet wakes that
// thread directly rather than the runtime's poller thread, which would
// then hand the goroutine to its locked thread: two wake-ups instead of
// one.

// pinOwner pins the calling owner goroutine of worker w to its CPU, if
// Config.LocalCPUs has one. A refusal (a CPU the process may no longer
// use) is logged and the goroutine runs unpinned.
func (w *worker) pinOwner() {
	cpus := w.f.cfg.LocalCPUs
	if w.id >= len(cpus) {
		return
	}
	if err := pinThread(cpus[w.id]); err != nil {
		w.f.log.Warn("pin worker to its cpu (it runs unpinned)", "worker", w.id, "cpu", cpus[w.id], "err", err)
	}
}

// singleOwner reports whether one goroutine owns all of w's directions
// (localLoop): CPU-local without a spinner (whose protocol works per
// direction), every direction outside the runtime poller. A worker's two
// owners on one CPU would only hand its packets to each other: the
// kernel's answer to an inner packet written into the TUN (an echo reply,
// a TCP ACK) is queued on the same CPU's queue before the write returns,
// and the goroutine that wrote it reads it next, without a wake-up.
func (w *worker) singleOwner() bool {
	if w.id >= len(w.f.cfg.LocalCPUs) || w.f.sp.spin != 0 {
		return false
	}
	for _, d := range w.dirs() {
		if d != nil && (d.try == nil || d.fd == nil) {
			return false
		}
	}
	return true
}
