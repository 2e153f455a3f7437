//go:build !linux

package main

import (
	"fmt"
	"io"
)

// runMain is "vxtun run"; the daemon needs Linux (TUN, netlink).
func runMain(args []string, getenv func(string) string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "vxtun: run needs Linux (TUN device, netlink)")
	return 1
}
