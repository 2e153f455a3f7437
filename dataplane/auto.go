package dataplane

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/vxtun/vxtun/hostnet"
)

// Auto chooses the dataplane at Open: the kernel vxlan device where the
// kernel lets vxtun create and bring it up, else the userspace TUN
// dataplane. It logs one line saying which and why.
type Auto struct {
	// Kernel and Userspace open the two dataplanes; nil means OpenKernel
	// and OpenUserspace (tests substitute fakes).
	Kernel, Userspace Opener
	// NewHost gives the userspace dataplane a Host of its own after a
	// failed kernel attempt (which closed the Host it was given).
	// Required.
	NewHost func() hostnet.Host
}

// Open implements Opener: it tries the kernel dataplane with cfg and, if
// that fails for any reason (no vxlan module, the port held on some
// address, a link name taken, an IPv6 or legacy UDP network), opens the
// userspace dataplane with a new Host. If both fail, the error names both
// causes.
func (a Auto) Open(cfg Config) (Dataplane, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	kernel, userspace := a.Kernel, a.Userspace
	if kernel == nil {
		kernel = OpenKernel
	}
	if userspace == nil {
		userspace = OpenUserspace
	}
	if a.NewHost == nil {
		return nil, errors.New("open auto dataplane: NewHost is required")
	}
	dp, kerr := kernel(cfg)
	if kerr == nil {
		log.Info("dataplane: kernel (--dataplane auto): the kernel's vxlan device is usable", "device", dp.Info().Device)
		return dp, nil
	}
	ucfg := cfg
	ucfg.Host = a.NewHost()
	dp, uerr := userspace(ucfg)
	if uerr != nil {
		return nil, fmt.Errorf("open auto dataplane: %w", errors.Join(kerr, uerr))
	}
	log.Info("dataplane: userspace (--dataplane auto): the kernel's vxlan device is not usable", "device", dp.Info().Device, "reason", kerr.Error())
	return dp, nil
}

// Check passes when either dataplane could start (CheckKernel or
// CheckUserspace); otherwise the error names both causes.
func (a Auto) Check(cfg Config) error {
	kerr := CheckKernel(cfg)
	if kerr == nil {
		return nil
	}
	uerr := CheckUserspace(cfg)
	if uerr == nil {
		return nil
	}
	return fmt.Errorf("no dataplane can start: %w", errors.Join(kerr, uerr))
}
