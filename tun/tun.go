package tun

import "errors"

// Device is one queue of a TUN device (or a fake in tun/tuntest).
//
// Read reads one or more IP packets into bufs[i][offset:], sets sizes[i] to
// each packet's length and returns how many were read. A GSO super-packet
// from the kernel is returned split into MSS-sized packets with correct
// checksums, so len(bufs) must be at least BatchSize().
//
// Write writes the IP packets bufs[i][offset:] (each slice's length is the
// packet's end), coalescing segments of one TCP or UDP flow into
// super-packets where the device supports it. It returns how many bufs were
// consumed. Write may modify the bytes of bufs (headroom and packet) but
// keeps no reference to them.
type Device interface {
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the largest number of packets one Read can return.
	BatchSize() int
	// MTU is the device's current MTU.
	MTU() (int, error)
	Name() string
	Close() error
}

// TxQueueLen is the transmit queue length vxtun gives a TUN link (through
// hostnet; the kernel's default for a TUN is 500). It is the ring of packets
// the kernel holds for each queue until Read takes them: when it is full the
// kernel drops (counted as the link's TX dropped). vxtun shares CPUs with the
// applications whose packets it carries, so the ring has to absorb what they
// send while the reader waits for a CPU; 500 packets are ~1 ms of 64-byte
// datagrams at the rates this machine reaches (bench: 32 % loss at 195 kpps
// with 500 on a busy machine, 0.6 % with more). The ring counts packets, not
// bytes: a stalled reader can hold up to TxQueueLen super-packets (64 KiB
// each) of kernel memory per queue; TCP's window keeps its share far lower.
const TxQueueLen = 4096

// DefaultBatchSize is BatchSize of a device with the virtio-net header: the
// largest number of segments one Read returns. A super-packet with more
// segments is returned over several Reads.
const DefaultBatchSize = 128

// ErrDeviceRemoved is returned (wrapped) by Read and Write of a queue whose
// device was deleted while it was open (ip link del): the kernel then fails
// every read and write of the queue with EBADFD. It is final, like
// os.ErrClosed.
var ErrDeviceRemoved = errors.New("device was removed (deleted while open)")
