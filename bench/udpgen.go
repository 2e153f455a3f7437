package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The generator's datagram header, at the start of every payload:
//
//	0        4        8                16
//	+--------+--------+----------------+
//	| magic  | stream |   sequence     |   big endian
//	+--------+--------+----------------+
//
// stream is the sending thread's index, sequence counts from 0 per stream.
// The rest of the payload is zero. The receiver counts datagrams by stream
// and sequence, so loss, duplicates and reordering are told apart.
const (
	genHeaderLen = 16
	genMagic     = 0x76786762 // "vxgb"
	// GenMinSize is the smallest payload the generator sends.
	GenMinSize = genHeaderLen
	// genMaxStreams bounds the sending threads of one run.
	genMaxStreams = 64
)

// GenConfig is one generator trial.
type GenConfig struct {
	// Size is the UDP payload size in bytes (≥ GenMinSize).
	Size int
	// Rate is the offered rate in payload bits per second, spread evenly
	// over the threads.
	Rate float64
	// Threads is the number of sending threads (default: one per CPU);
	// each is locked to its OS thread and pinned to CPU i mod NumCPU.
	Threads int
	// Duration of the trial.
	Duration time.Duration
	// Batch is the most datagrams per sendmmsg (default 64).
	Batch int
}

func (c GenConfig) validate() error {
	if c.Size < GenMinSize || c.Size > 65507 {
		return fmt.Errorf("udp generator: size %d out of range [%d, 65507]", c.Size, GenMinSize)
	}
	if !(c.Rate > 0) || c.Duration <= 0 {
		return errors.New("udp generator: rate and duration must be positive")
	}
	if c.Threads < 0 || c.Threads > genMaxStreams {
		return fmt.Errorf("udp generator: %d threads (at most %d)", c.Threads, genMaxStreams)
	}
	return nil
}

// GenResult is what one generator trial measured.
type GenResult struct {
	Offered  float64 // payload bit/s asked for
	Sent     uint64  // datagrams the kernel accepted (sendmmsg counts)
	Received uint64  // distinct datagrams of this trial the receiver counted
	Dups     uint64  // datagrams counted again (same stream and sequence)
	Reorder  uint64  // datagrams that arrived after a later one of their stream
	Elapsed  time.Duration
	Threads  int
	// Busy is the share of all CPUs the whole machine kept busy while the
	// senders ran (/proc/stat; 0 when unknown).
	Busy float64
}

// SentBps and RecvBps are payload bit/s over the trial's duration.
func (r GenResult) SentBps(size int) float64 { return r.bps(r.Sent, size) }

// RecvBps is the received payload rate in bit/s.
func (r GenResult) RecvBps(size int) float64 { return r.bps(r.Received, size) }

func (r GenResult) bps(n uint64, size int) float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(n) * float64(size) * 8 / r.Elapsed.Seconds()
}

// LossPercent is the share of sent datagrams that never arrived.
func (r GenResult) LossPercent() float64 {
	if r.Sent == 0 {
		return 0
	}
	if r.Received >= r.Sent {
		return 0
	}
	return 100 * float64(r.Sent-r.Received) / float64(r.Sent)
}

// putGenHeader writes the header of datagram seq of stream into b.
func putGenHeader(b []byte, stream uint32, seq uint64) {
	binary.BigEndian.PutUint32(b[0:], genMagic)
	binary.BigEndian.PutUint32(b[4:], stream)
	binary.BigEndian.PutUint64(b[8:], seq)
}

// seqCounter counts received datagrams by stream and sequence. One
// goroutine owns it; merge combines receivers.
type seqCounter struct {
	seen     [genMaxStreams][]uint64 // bitmap per stream, grown on demand
	next     [genMaxStreams]uint64   // highest sequence seen + 1
	received uint64
	dups     uint64
	reorder  uint64
	foreign  uint64 // not a generator datagram (bad magic, stream, length)
}

// add counts one received payload.
func (c *seqCounter) add(b []byte) {
	if len(b) < genHeaderLen || binary.BigEndian.Uint32(b) != genMagic {
		c.foreign++
		return
	}
	s := binary.BigEndian.Uint32(b[4:])
	if s >= genMaxStreams {
		c.foreign++
		return
	}
	seq := binary.BigEndian.Uint64(b[8:])
	if seq >= 1<<32 {
		c.foreign++
		return
	}
	w := int(seq / 64)
	bm := c.seen[s]
	if w >= len(bm) {
		n := max(2*len(bm), w+1, 1024)
		nb := make([]uint64, n)
		copy(nb, bm)
		bm = nb
		c.seen[s] = bm
	}
	bit := uint64(1) << (seq % 64)
	if bm[w]&bit != 0 {
		c.dups++
		return
	}
	bm[w] |= bit
	c.received++
	if seq+1 < c.next[s] {
		c.reorder++
	} else {
		c.next[s] = seq + 1
	}
}
