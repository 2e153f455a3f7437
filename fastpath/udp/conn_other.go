//go:build !linux

package udp

import "net/netip"

// Conn is Linux-only; on other systems Listen fails with ErrNotSupported
// and no Conn exists. The methods are here so that code using a Conn
// compiles everywhere.
type Conn struct{}

// Listen fails with ErrNotSupported.
func Listen(netip.AddrPort, *Options) (*Conn, error) { return nil, ErrNotSupported }

// PathMTU fails with ErrNotSupported.
func (c *Conn) PathMTU(*Addr) (int, error) { return 0, ErrNotSupported }

// LocalAddr is the zero AddrPort.
func (c *Conn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// GSO is false.
func (c *Conn) GSO() bool { return false }

// GRO is false.
func (c *Conn) GRO() bool { return false }

// BatchSize is 1.
func (c *Conn) BatchSize() int { return 1 }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// WriteBatch fails with ErrNotSupported.
func (c *Conn) WriteBatch([]Message) (int, error) { return 0, ErrNotSupported }

// ReadBatch fails with ErrNotSupported.
func (c *Conn) ReadBatch([]Message) (int, error) { return 0, ErrNotSupported }

// RxQueueOverflows is 0.
func (c *Conn) RxQueueOverflows() uint64 { return 0 }

// TryReadBatch fails with ErrNotSupported.
func (c *Conn) TryReadBatch([]Message) (int, error) { return 0, ErrNotSupported }

// WaitRead fails with ErrNotSupported.
func (c *Conn) WaitRead() error { return ErrNotSupported }
