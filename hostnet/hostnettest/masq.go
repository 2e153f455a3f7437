package hostnettest

import (
	"fmt"
	"slices"

	"github.com/vxtun/vxtun/hostnet"
)

// SetMasquerade's name for Fail.
const SetMasquerade = "SetMasquerade"

// SetMasquerade records nets (checked and masked as the real Host does) as
// the masquerade policy, replacing the previous one.
func (f *Fake) SetMasquerade(nets []hostnet.MasqNet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(SetMasquerade); err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	if f.closed {
		return fmt.Errorf("masquerade: %w", hostnet.ErrClosed)
	}
	checked, err := hostnet.CheckMasqNets(nets)
	if err != nil {
		return err
	}
	if f.masq == nil {
		f.masq = &fakeMasq{}
	}
	f.masq.nets = checked
	return nil
}

// Masquerade returns the recorded masquerade policy (nil after Close).
func (f *Fake) Masquerade() []hostnet.MasqNet {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.masq == nil || f.closed {
		return nil
	}
	return slices.Clone(f.masq.nets)
}

// fakeMasq is the Fake's masquerade state.
type fakeMasq struct {
	nets []hostnet.MasqNet
}
