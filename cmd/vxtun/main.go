// Command vxtun is the vxtun node daemon. See README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "vxtun: not built yet")
	os.Exit(2)
}
