package registry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAPIHealth: requests through the wrapped transport to a server that
// is down, then up, then down and up again within outageLogEvery, then
// after it: one warning and one info line per reported outage.
func TestAPIHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/unavailable" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	defer srv.Close()
	lg, lb := testLogger("n1")
	h := newAPIHealth(lg)
	clock := time.Unix(1000, 0)
	h.now = func() time.Time { return clock }
	cli := &http.Client{Transport: h.wrap(http.DefaultTransport)}
	refused := "http://" + closedAddr(t) + "/api/v1/nodes"
	get := func(url string) {
		t.Helper()
		resp, err := cli.Get(url)
		if err == nil {
			resp.Body.Close()
		}
	}
	count := func() (warn, info int) {
		s := lb.String()
		return strings.Count(s, "API server unreachable"), strings.Count(s, "API server reachable again")
	}
	steps := []struct {
		what         string
		urls         []string
		advance      time.Duration
		wantW, wantI int
	}{
		{"answers", []string{srv.URL + "/api"}, 0, 0, 0},
		{"refused three times", []string{refused, refused, refused}, time.Second, 1, 0},
		{"503 during the outage", []string{srv.URL + "/unavailable"}, time.Second, 1, 0},
		{"back", []string{srv.URL + "/api", srv.URL + "/api"}, 5 * time.Second, 1, 1},
		{"flap within 30 s: not logged", []string{refused, srv.URL + "/api"}, time.Second, 1, 1},
		{"outage 40 s later", []string{refused, refused}, 40 * time.Second, 2, 1},
		{"back again", []string{srv.URL + "/api"}, time.Second, 2, 2},
	}
	for _, st := range steps {
		clock = clock.Add(st.advance)
		for _, u := range st.urls {
			get(u)
		}
		if w, i := count(); w != st.wantW || i != st.wantI {
			t.Fatalf("%s: got %d warnings and %d reachable-again lines, want %d and %d\n%s", st.what, w, i, st.wantW, st.wantI, lb)
		}
	}
	if !strings.Contains(lb.String(), "failed-requests=4") {
		t.Errorf("first outage: want failed-requests=4 (3 refused, one 503) in\n%s", lb)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l := httptest.NewServer(http.NotFoundHandler())
	addr := l.Listener.Addr().String()
	l.Close()
	return addr
}
