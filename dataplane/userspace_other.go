//go:build !linux

package dataplane

import "errors"

// ErrNeedsLinux is returned by OpenUserspace on other systems.
var ErrNeedsLinux = errors.New("the userspace dataplane needs Linux (TUN device, netlink)")

// OpenUserspace is the Opener of the userspace dataplane; it needs Linux.
func OpenUserspace(cfg Config) (Dataplane, error) {
	if cfg.Host != nil {
		_ = cfg.Host.Close()
	}
	return nil, ErrNeedsLinux
}

// CheckUserspace reports that the userspace dataplane needs Linux.
func CheckUserspace(cfg Config) error { return ErrNeedsLinux }
