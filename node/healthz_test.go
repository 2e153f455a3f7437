package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthzHandler(t *testing.T) {
	srv := httptest.NewServer(HealthzHandler())
	defer srv.Close()
	for _, tt := range []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, "vxtun is running\n"},
		{"/metrics", 404, ""},
		{"/debug/pprof/", 404, ""},
	} {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || (tt.body != "" && string(b) != tt.body) {
			t.Errorf("GET %s: got %d %q, want %d %q", tt.path, resp.StatusCode, strings.TrimSpace(string(b)), tt.code, tt.body)
		}
	}
}
