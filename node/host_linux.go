package node

import "github.com/vxtun/vxtun/hostnet"

// defaultHost is the Linux host of the calling thread's network namespace.
func defaultHost() hostnet.Host { return hostnet.New() }
