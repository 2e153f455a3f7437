// Package tuntest provides an in-memory tun.Device for unit tests of code
// that reads and writes a TUN (the fastpath pipeline).
//
// Ownership: a test hands packets to the device with Inject (or by sending on
// Inbound); Read copies them into the caller's buffers. Write copies every
// packet it is given and delivers the copies on Outbound. Neither side ever
// keeps a reference to the other side's memory, as with a real TUN.
//
// Concurrency: Read, Write, Inject and Close may be called from different
// goroutines; like a real queue, Read is meant for one reader at a time and
// Write for one writer at a time.
package tuntest

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/vxtun/vxtun/tun"
)

// Config describes a Device. Zero fields get defaults.
type Config struct {
	Name      string // default "tuntest0"
	MTU       int    // default 1450
	BatchSize int    // largest Read batch; default tun.DefaultBatchSize
	QueueLen  int    // capacity of Inbound and Outbound; default 1024
}

// Device is an in-memory tun.Device.
type Device struct {
	// Inbound carries packets that Read returns. A test that sends on it
	// directly must not modify the slice afterwards; Inject copies.
	Inbound chan []byte
	// Outbound carries a copy of every packet passed to Write, in order.
	Outbound chan []byte

	cfg    Config
	done   chan struct{}
	once   sync.Once
	reads  atomic.Uint64
	writes atomic.Uint64
}

var _ tun.Device = (*Device)(nil)

// New returns an open Device.
func New(cfg Config) *Device {
	if cfg.Name == "" {
		cfg.Name = "tuntest0"
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1450
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = tun.DefaultBatchSize
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 1024
	}
	return &Device{
		Inbound:  make(chan []byte, cfg.QueueLen),
		Outbound: make(chan []byte, cfg.QueueLen),
		cfg:      cfg,
		done:     make(chan struct{}),
	}
}

// Inject queues a copy of pkt for Read. It blocks while Inbound is full and
// returns os.ErrClosed once the device is closed.
func (d *Device) Inject(pkt []byte) error {
	c := append([]byte(nil), pkt...)
	select {
	case <-d.done:
		return os.ErrClosed
	default:
	}
	select {
	case d.Inbound <- c:
		return nil
	case <-d.done:
		return os.ErrClosed
	}
}

// Read blocks for one packet, then takes whatever else is queued, up to
// len(bufs) and BatchSize, copying packet i to bufs[i][offset:].
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 || len(sizes) < len(bufs) {
		return 0, fmt.Errorf("read %s: %d bufs, %d sizes: %w", d.cfg.Name, len(bufs), len(sizes), io.ErrShortBuffer)
	}
	var p []byte
	select {
	case p = <-d.Inbound:
	case <-d.done:
		return 0, fmt.Errorf("read %s: %w", d.cfg.Name, os.ErrClosed)
	}
	n := 0
	limit := min(len(bufs), d.cfg.BatchSize)
	for {
		if len(bufs[n]) < offset+len(p) {
			return n, fmt.Errorf("read %s: %d-byte packet into %d-byte buffer at offset %d: %w", d.cfg.Name, len(p), len(bufs[n]), offset, io.ErrShortBuffer)
		}
		sizes[n] = copy(bufs[n][offset:], p)
		n++
		if n == limit {
			break
		}
		select {
		case p = <-d.Inbound:
			continue
		default:
		}
		break
	}
	d.reads.Add(1)
	return n, nil
}

// Write copies every packet bufs[i][offset:] to Outbound. It blocks while
// Outbound is full and returns os.ErrClosed once the device is closed.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		c := append([]byte(nil), b[offset:]...)
		select {
		case d.Outbound <- c:
		case <-d.done:
			return i, fmt.Errorf("write %s: %w", d.cfg.Name, os.ErrClosed)
		}
	}
	d.writes.Add(1)
	return len(bufs), nil
}

// BatchSize returns Config.BatchSize.
func (d *Device) BatchSize() int { return d.cfg.BatchSize }

// MTU returns Config.MTU.
func (d *Device) MTU() (int, error) { return d.cfg.MTU, nil }

// Name returns Config.Name.
func (d *Device) Name() string { return d.cfg.Name }

// Close unblocks Read, Write and Inject; it is idempotent.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}

// Calls returns how many Read and Write calls completed.
func (d *Device) Calls() (reads, writes uint64) { return d.reads.Load(), d.writes.Load() }
