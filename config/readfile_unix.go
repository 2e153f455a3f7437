//go:build unix

package config

import "syscall"

// openNonBlock keeps open(2) of a FIFO without a writer from blocking.
const openNonBlock = syscall.O_NONBLOCK
