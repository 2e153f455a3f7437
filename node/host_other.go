//go:build !linux

package node

import "github.com/vxtun/vxtun/hostnet"

// defaultHost is nil off Linux: the userspace dataplane refuses to open
// there anyway (dataplane.ErrNeedsLinux).
func defaultHost() hostnet.Host { return nil }
