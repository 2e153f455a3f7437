package dataplanetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
)

// Opener opens Fakes and remembers them. The zero value is ready to use.
type Opener struct {
	// Reject, if set, is asked about every peer set a Fake is given; a
	// non-nil error rejects it (the previous set stays in force).
	Reject func(peers []config.Peer) error
	// FailOpen, if set, is returned by Open instead of a Fake.
	FailOpen error

	mu      sync.Mutex
	opened  []*Fake
	changed chan struct{} // closed and replaced on every Open
}

// Open implements dataplane.Opener (pass o.Open).
func (o *Opener) Open(cfg dataplane.Config) (dataplane.Dataplane, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.FailOpen != nil {
		return nil, o.FailOpen
	}
	f := &Fake{cfg: cfg, reject: o.Reject, failc: make(chan error, 1), changed: make(chan struct{})}
	o.opened = append(o.opened, f)
	o.notifyLocked()
	return f, nil
}

func (o *Opener) notifyLocked() {
	if o.changed != nil {
		close(o.changed)
	}
	o.changed = make(chan struct{})
}

// Opened returns every Fake opened so far, oldest first.
func (o *Opener) Opened() []*Fake {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.opened)
}

// WaitOpened waits until at least n Fakes were opened and returns the n-th.
func (o *Opener) WaitOpened(ctx context.Context, n int) (*Fake, error) {
	for {
		o.mu.Lock()
		if len(o.opened) >= n {
			f := o.opened[n-1]
			o.mu.Unlock()
			return f, nil
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for dataplane #%d: %w", n, ctx.Err())
		case <-ch:
		}
	}
}

// Fake is a Dataplane that forwards nothing.
type Fake struct {
	cfg    dataplane.Config
	reject func([]config.Peer) error
	failc  chan error

	mu       sync.Mutex
	peers    []config.Peer   // in force
	sets     [][]config.Peer // every accepted set, in order
	rejected int
	stats    dataplane.Stats
	running  bool
	ran      bool
	closed   bool
	changed  chan struct{}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// SetPeers implements dataplane.Dataplane.
func (f *Fake) SetPeers(peers []config.Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notifyLocked()
	if f.closed {
		return errors.New("fake dataplane: closed")
	}
	if f.reject != nil {
		if err := f.reject(peers); err != nil {
			f.rejected++
			return err
		}
	}
	f.peers = slices.Clone(peers)
	f.sets = append(f.sets, f.peers)
	return nil
}

// Run implements dataplane.Dataplane: it blocks until ctx is done (nil) or
// Fail is called (that error).
func (f *Fake) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.ran {
		f.mu.Unlock()
		return errors.New("fake dataplane: Run called twice")
	}
	f.ran, f.running = true, true
	f.notifyLocked()
	f.mu.Unlock()
	var err error
	select {
	case <-ctx.Done():
	case err = <-f.failc:
	}
	f.mu.Lock()
	f.running = false
	f.notifyLocked()
	f.mu.Unlock()
	return err
}

// Fail makes Run return err (once; later calls before Run took it are
// dropped).
func (f *Fake) Fail(err error) {
	select {
	case f.failc <- err:
	default:
	}
}

// Stats implements dataplane.Dataplane: what SetStats stored.
func (f *Fake) Stats() dataplane.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// SetStats sets what Stats returns.
func (f *Fake) SetStats(s dataplane.Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = s
}

// Info implements dataplane.Dataplane.
func (f *Fake) Info() dataplane.Info {
	return dataplane.Info{Kind: "fake", Device: f.cfg.DeviceName, Listen: f.cfg.ListenAddr.String(), Workers: f.cfg.Workers}
}

// Overhead implements dataplane.Dataplane: VXLAN's or legacy UDP's.
func (f *Fake) Overhead() int {
	if f.cfg.NetConf == nil {
		return 0
	}
	return config.Overhead(f.cfg.NetConf.Backend.Type, f.cfg.Underlay.IP.Is6())
}

// Close implements dataplane.Dataplane; it closes Config.Host if set.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.notifyLocked()
	if f.cfg.Host != nil {
		return f.cfg.Host.Close()
	}
	return nil
}

// Config is the configuration the Fake was opened with.
func (f *Fake) Config() dataplane.Config { return f.cfg }

// Peers returns the peer set in force.
func (f *Fake) Peers() []config.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.peers)
}

// PeerSets returns every accepted peer set, oldest first.
func (f *Fake) PeerSets() [][]config.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sets)
}

// Rejected is the number of peer sets rejected.
func (f *Fake) Rejected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rejected
}

// Running reports whether Run is running; Closed whether Close was called.
func (f *Fake) Running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Wait blocks until cond (called with no lock held, after every change)
// is true or ctx is done.
func (f *Fake) Wait(ctx context.Context, what string, cond func(*Fake) bool) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond(f) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-ch:
		}
	}
}
