package interrupt

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Context returns a context cancelled by the first SIGINT, SIGTERM or SIGHUP.
// On that signal it writes "<prog>: <signal>: <doing>" to w; on later ones
// "<prog>: still cleaning up, please wait". stop releases the handler.
func Context(w io.Writer, prog, doing string) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case s := <-sigs:
				n++
				if n == 1 {
					fmt.Fprintf(w, "%s: %v: %s\n", prog, s, doing)
					cancel()
				} else {
					fmt.Fprintf(w, "%s: still cleaning up, please wait\n", prog)
				}
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
}
