//go:build !linux

// Command vxbench runs vxtun's end-to-end benchmark; see main_linux.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "vxbench: needs Linux (network namespaces, TUN, kernel vxlan)")
	os.Exit(1)
}
