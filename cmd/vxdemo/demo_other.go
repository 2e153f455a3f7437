//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

// Run needs Linux: network namespaces, TUN, kernel vxlan.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	return errors.New("the demo needs Linux (network namespaces, TUN, kernel vxlan)")
}
