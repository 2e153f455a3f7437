//go:build !linux

package dataplane

// OpenKernel is the Opener of the kernel dataplane; it needs Linux.
func OpenKernel(cfg Config) (Dataplane, error) {
	if cfg.Host != nil {
		_ = cfg.Host.Close()
	}
	return nil, ErrNeedsLinux
}

// CheckKernel reports that the kernel dataplane needs Linux.
func CheckKernel(cfg Config) error { return ErrNeedsLinux }
