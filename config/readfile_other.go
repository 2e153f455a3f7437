//go:build !unix

package config

// openNonBlock: other systems have no FIFOs that block open.
const openNonBlock = 0
