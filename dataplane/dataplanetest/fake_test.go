package dataplanetest

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
)

func peer(name, subnet string) config.Peer {
	return config.Peer{Name: name, PublicIP: netip.MustParseAddr("198.18.0.2"), Subnets: []netip.Prefix{netip.MustParsePrefix(subnet)}}
}

// The Opener is a dataplane.Opener.
var _ dataplane.Opener = (&Opener{}).Open

func TestFakeRecordsAndRejects(t *testing.T) {
	errBad := errors.New("bad peer")
	o := &Opener{Reject: func(ps []config.Peer) error {
		for _, p := range ps {
			if p.Name == "bad" {
				return errBad
			}
		}
		return nil
	}}
	dp, err := o.Open(dataplane.Config{DeviceName: "vxfake0"})
	if err != nil {
		t.Fatal(err)
	}
	f := o.Opened()[0]
	good := []config.Peer{peer("node2", "198.19.2.0/24")}
	if err := dp.SetPeers(good); err != nil {
		t.Fatalf("SetPeers(good): got %v, want nil", err)
	}
	if err := dp.SetPeers([]config.Peer{peer("bad", "198.19.3.0/24")}); !errors.Is(err, errBad) {
		t.Fatalf("SetPeers(bad): got %v, want %v", err, errBad)
	}
	if got := f.Peers(); len(got) != 1 || got[0].Name != "node2" {
		t.Errorf("peers in force after a rejected set: got %v, want [node2]", got)
	}
	if got := len(f.PeerSets()); got != 1 {
		t.Errorf("accepted sets: got %d, want 1", got)
	}
	if got := f.Rejected(); got != 1 {
		t.Errorf("rejected sets: got %d, want 1", got)
	}
	if got := dp.Info().Device; got != "vxfake0" {
		t.Errorf("Info().Device: got %q, want vxfake0", got)
	}
}

func TestFakeRun(t *testing.T) {
	errGone := errors.New("device gone")
	tests := []struct {
		name string
		fail error // nil: cancel Run's context instead
	}{
		{"cancelled", nil},
		{"failed", errGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &Opener{}
			dp, _ := o.Open(dataplane.Config{})
			f := o.Opened()[0]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- dp.Run(runCtx) }()
			if err := f.Wait(ctx, "running", (*Fake).Running); err != nil {
				t.Fatal(err)
			}
			if tt.fail != nil {
				f.Fail(tt.fail)
			} else {
				stop()
			}
			select {
			case err := <-done:
				if err != tt.fail {
					t.Errorf("Run: got %v, want %v", err, tt.fail)
				}
			case <-ctx.Done():
				t.Fatal("Run did not return")
			}
			if f.Running() {
				t.Error("Running after Run returned: got true, want false")
			}
			if err := dp.Close(); err != nil || !f.Closed() {
				t.Errorf("Close: got %v, closed %v; want nil, true", err, f.Closed())
			}
			if err := dp.SetPeers(nil); err == nil {
				t.Error("SetPeers after Close: got nil, want an error")
			}
		})
	}
}

func TestOpenerFailAndWait(t *testing.T) {
	errOpen := errors.New("no device")
	o := &Opener{FailOpen: errOpen}
	if _, err := o.Open(dataplane.Config{}); !errors.Is(err, errOpen) {
		t.Fatalf("Open: got %v, want %v", err, errOpen)
	}
	o.FailOpen = nil
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := o.WaitOpened(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitOpened with nothing opened: got %v, want a deadline error", err)
	}
	go func() { _, _ = o.Open(dataplane.Config{DeviceName: "x"}) }()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	f, err := o.WaitOpened(ctx2, 1)
	if err != nil || f.Config().DeviceName != "x" {
		t.Fatalf("WaitOpened: got %v, %v; want the fake of device x", f, err)
	}
}
