package nettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// TCPPair is one TCP connection between two namespaces: a listener in
// the server namespace that accepts one connection and serves it, and the
// client end.
type TCPPair struct {
	Client   net.Conn
	Listener net.Listener
	// Served receives the serve function's result (or the Accept error).
	Served <-chan error
}

// DialPair listens on dst:port inside to (port 0: any free port), runs
// serve on the one connection it accepts, and dials it from src inside
// from (src invalid: any source). serve's connection is closed when serve
// returns. The caller closes the pair.
func DialPair(from, to *NS, src, dst netip.Addr, port int, serve func(net.Conn) error) (*TCPPair, error) {
	var l net.Listener
	if err := to.Do(func() error {
		var err error
		l, err = net.Listen("tcp", net.JoinHostPort(dst.String(), strconv.Itoa(port)))
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in %s: %w", to.Name, err)
	}
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		served <- serve(c)
	}()
	var c net.Conn
	if err := from.Do(func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		var err error
		c, err = d.Dial("tcp", l.Addr().String())
		return err
	}); err != nil {
		l.Close()
		return nil, fmt.Errorf("dial from %s: %w", from.Name, err)
	}
	return &TCPPair{Client: c, Listener: l, Served: served}, nil
}

// Close closes the client end and the listener.
func (p *TCPPair) Close() error {
	return errors.Join(p.Client.Close(), p.Listener.Close())
}

// served returns the serve result, or an error if it takes longer than d.
func (p *TCPPair) served(d time.Duration) error {
	select {
	case err := <-p.Served:
		return err
	case <-time.After(d):
		return fmt.Errorf("still serving after %v", d)
	}
}

// Transfer describes a TCP transfer of pseudo-random bytes.
type Transfer struct {
	Src, Dst netip.Addr    // client source (invalid: any) and server address
	Port     int           // server port; 0 picks a free one
	Size     int64         // bytes to send
	Rate     int64         // pace to this many bytes/s; 0 sends as fast as TCP goes
	Seed     uint64        // of the content; the same seed sends the same bytes
	Timeout  time.Duration // for the whole transfer; 0 means 90 s
}

// Result is what a transfer moved.
type Result struct {
	Bytes   int64         // payload bytes checked
	Elapsed time.Duration // from the first write to the last check
}

// Gbps is the payload rate in Gbit/s.
func (r Result) Gbps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9
}

// deadline arms conn with the transfer's deadline and closes it when ctx
// ends; the returned stop undoes the latter.
func (x Transfer) deadline(ctx context.Context, c net.Conn) (stop func() bool) {
	timeout := x.Timeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.SetDeadline(dl)
	return context.AfterFunc(ctx, func() { c.Close() })
}

// fill writes pseudo-random content of x into c and into h, paced to
// x.Rate, then half-closes c.
func (x Transfer) fill(c net.Conn, h io.Writer) error {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], x.Seed)
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < x.Size; {
		chunk := buf[:min(int64(len(buf)), x.Size-sent)]
		_, _ = rng.Read(chunk)
		h.Write(chunk)
		if _, err := c.Write(chunk); err != nil {
			return fmt.Errorf("write after %d bytes: %w", sent, err)
		}
		sent += int64(len(chunk))
		if x.Rate > 0 {
			if ahead := time.Duration(float64(sent)/float64(x.Rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return errors.New("not a TCP connection")
	}
	if err := tc.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	return nil
}

// Send sends x.Size pseudo-random bytes from `from` to a server at
// x.Dst:x.Port in `to`, which answers with the length and SHA-256 of what
// it received; the error says what differs.
func (x Transfer) Send(ctx context.Context, from, to *NS) (Result, error) {
	p, err := DialPair(from, to, x.Src, x.Dst, x.Port, func(c net.Conn) error {
		defer x.deadline(ctx, c)()
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			return fmt.Errorf("server read after %d bytes: %w", n, err)
		}
		_, err = c.Write(h.Sum(binary.BigEndian.AppendUint64(nil, uint64(n))))
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("transfer: %w", err)
	}
	defer p.Close()
	defer x.deadline(ctx, p.Client)()
	start := time.Now()
	h := sha256.New()
	if err := x.fill(p.Client, h); err != nil {
		return Result{}, fmt.Errorf("transfer: %w", err)
	}
	var reply [8 + sha256.Size]byte
	if _, err := io.ReadFull(p.Client, reply[:]); err != nil {
		p.Client.Close()
		return Result{}, fmt.Errorf("transfer: read the server's hash: %w (server: %v)", err, p.served(5*time.Second))
	}
	el := time.Since(start)
	if err := <-p.Served; err != nil {
		return Result{}, fmt.Errorf("transfer: %w", err)
	}
	n, sum := int64(binary.BigEndian.Uint64(reply[:8])), reply[8:]
	if want := h.Sum(nil); n != x.Size || !bytes.Equal(sum, want) {
		return Result{}, fmt.Errorf("transfer: server received %d bytes (sha256 %x), want %d bytes (sha256 %x)", n, sum[:8], x.Size, want[:8])
	}
	return Result{Bytes: x.Size, Elapsed: el}, nil
}

// Echo sends x.Size pseudo-random bytes from `from` to an echo server at
// x.Dst:x.Port in `to` and checks that the same bytes (length and SHA-256)
// arrive at the server and come back, so data crosses both ways.
func (x Transfer) Echo(ctx context.Context, from, to *NS) (Result, error) {
	var srvN int64
	var srvSum []byte
	p, err := DialPair(from, to, x.Src, x.Dst, x.Port, func(c net.Conn) error {
		defer x.deadline(ctx, c)()
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(c, h), c)
		srvN, srvSum = n, h.Sum(nil)
		if err != nil {
			return fmt.Errorf("echo server after %d bytes: %w", n, err)
		}
		return c.(*net.TCPConn).CloseWrite()
	})
	if err != nil {
		return Result{}, fmt.Errorf("echo: %w", err)
	}
	defer p.Close()
	defer x.deadline(ctx, p.Client)()
	start := time.Now()
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() { werr <- x.fill(p.Client, sent) }()
	back := sha256.New()
	n, err := io.Copy(back, p.Client)
	el := time.Since(start)
	if err != nil {
		p.Client.Close()
		return Result{}, fmt.Errorf("echo: read after %d bytes: %w (writer: %v, server: %v)", n, err, <-werr, p.served(5*time.Second))
	}
	if err := <-werr; err != nil {
		return Result{}, fmt.Errorf("echo: %w", err)
	}
	if err := <-p.Served; err != nil {
		return Result{}, fmt.Errorf("echo: %w", err)
	}
	want := sent.Sum(nil)
	if srvN != x.Size || !bytes.Equal(srvSum, want) {
		return Result{}, fmt.Errorf("echo: server received %d bytes (sha256 %x), want %d bytes (sha256 %x)", srvN, srvSum[:8], x.Size, want[:8])
	}
	if got := back.Sum(nil); n != x.Size || !bytes.Equal(got, want) {
		return Result{}, fmt.Errorf("echo: got %d bytes back (sha256 %x), want %d bytes (sha256 %x)", n, got[:8], x.Size, want[:8])
	}
	return Result{Bytes: x.Size, Elapsed: el}, nil
}
