package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HealthzHandler is flanneld's liveness endpoint (--healthz-ip,
// --healthz-port): /healthz answers 200 for as long as the process serves
// it; every other path is 404.
func HealthzHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "vxtun is running")
	})
	return mux
}

// startHealthz serves HealthzHandler on Config.HealthzAddr.
func (n *Node) startHealthz() (stop func(), err error) {
	l, err := net.Listen("tcp", n.cfg.HealthzAddr)
	if err != nil {
		return nil, fmt.Errorf("healthz server: %w", err)
	}
	n.log.Info("healthz endpoint listening", "addr", l.Addr().String())
	return n.serveHTTP(l, HealthzHandler(), "healthz server"), nil
}

// serveHTTP serves h on l until the returned stop is called.
func (n *Node) serveHTTP(l net.Listener, h http.Handler, what string) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error(what, "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}
