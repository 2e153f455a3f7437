package registry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/connectivity"
)

// etcdHealth turns the many symptoms of an etcd outage (a failed
// connection, failing lists, a broken watch, failing renewals) into two log
// lines: one warning when etcd is lost, one info line when it is back.
// While it is down the individual failures are logged at debug.
type etcdHealth struct {
	log   *slog.Logger
	mu    sync.Mutex
	down  bool
	since time.Time
}

// lost reports a failure of what (e.g. "list leases").
func (h *etcdHealth) lost(what string, err error, attrs ...any) {
	h.mu.Lock()
	first := !h.down
	if first {
		h.down, h.since = true, time.Now()
	}
	h.mu.Unlock()
	args := append([]any{"while", what, "err", err}, attrs...)
	if first {
		h.log.Warn("etcd connection lost; forwarding continues with the last known peers", args...)
		return
	}
	h.log.Debug("etcd still unreachable", args...)
}

// ok reports a request that worked (or a connection that is ready).
func (h *etcdHealth) ok(what string) {
	h.mu.Lock()
	was, since := h.down, h.since
	h.down = false
	h.mu.Unlock()
	if was {
		h.log.Info("etcd connection is back", "while", what, "outage", time.Since(since).Round(time.Millisecond).String())
	}
}

// watchConn follows the client connection's state until ctx ends: a
// connection in transient failure is an outage even when no request is
// due (the watch only waits, renewals are hours apart); ready ends it.
func (s *EtcdSource) watchConn(ctx context.Context) {
	conn := s.cli.ActiveConnection()
	if conn == nil {
		return
	}
	st := conn.GetState()
	for conn.WaitForStateChange(ctx, st) {
		st = conn.GetState()
		switch st {
		case connectivity.TransientFailure:
			s.health.lost("connect", errConnFailed)
		case connectivity.Ready:
			s.health.ok("connect")
		}
	}
}

// errConnFailed stands for a connection failure whose cause gRPC keeps to
// itself.
var errConnFailed = connError{}

type connError struct{}

func (connError) Error() string { return "connection to every endpoint failed" }
