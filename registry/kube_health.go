package registry

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Connection health of the Kubernetes source. client-go reconnects by
// itself: its reflector re-lists and re-watches with its own backoff, and
// its REST client turns a watch whose connection broke (EOF, reset,
// timeout) into an empty watch without an error, so neither the informer
// nor vxtun's list/watch functions see most failures. Every request goes
// through the client's HTTP transport, though: apiHealth watches the
// outcome of each there and logs one warning when the API server stops
// answering and one info line when it answers again.

// outageLogEvery is the least time between two outage warnings: a server
// that flaps is reported once per period, with the return that follows
// it, not once per failed request.
const outageLogEvery = 30 * time.Second

// apiHealth tracks whether the API server answers. Safe for concurrent
// use.
type apiHealth struct {
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	down     bool
	since    time.Time // when the current outage began
	logged   bool      // the current outage's warning was logged
	lastWarn time.Time
	failures int // failed requests in the current outage
}

func newAPIHealth(log *slog.Logger) *apiHealth {
	return &apiHealth{log: log, now: time.Now}
}

// failed records a request that got no answer (err) from the server.
func (h *apiHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	h.failures++
	if h.down {
		return
	}
	h.down, h.since, h.failures = true, now, 1
	h.logged = h.lastWarn.IsZero() || now.Sub(h.lastWarn) >= outageLogEvery
	if h.logged {
		h.lastWarn = now
		h.log.Warn("Kubernetes API server unreachable; forwarding with the current peers, reconnecting", "err", err)
	}
}

// answered records a request the server answered.
func (h *apiHealth) answered() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return
	}
	h.down = false
	if h.logged {
		h.log.Info("Kubernetes API server reachable again; resyncing the peers",
			"outage", h.now().Sub(h.since).Round(time.Millisecond), "failed-requests", h.failures)
	}
}

// wrap is a rest.Config WrapTransport: it reports every request's outcome
// to h. A transport error (refused, reset, TLS, timeout) and a 502, 503
// or 504 count as no answer, unless the request's own context ended (a
// watch stopped by the informer, vxtun shutting down).
func (h *apiHealth) wrap(rt http.RoundTripper) http.RoundTripper {
	return healthTransport{rt: rt, h: h}
}

type healthTransport struct {
	rt http.RoundTripper
	h  *apiHealth
}

func (t healthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	switch {
	case err != nil:
		if req.Context().Err() == nil {
			t.h.failed(err)
		}
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
		resp.StatusCode == http.StatusGatewayTimeout:
		t.h.failed(fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status))
	default:
		t.h.answered()
	}
	return resp, err
}
