package etcdtest

import (
	"context"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	Put(t, c, "/k", "v1")

	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := c.Get(ctx, "/k")
	cancel()
	if err == nil {
		t.Fatalf("get while stopped: got no error, want one")
	}

	s.Restart()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/k")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("got %v after restart, want /k=v1", resp.Kvs)
	}
}

func TestStartTLS(t *testing.T) {
	s, files := StartTLS(t)
	if len(s.Endpoints()) != 1 || s.Endpoints()[0][:8] != "https://" {
		t.Fatalf("got endpoints %v, want one https URL", s.Endpoints())
	}
	for _, f := range []string{files.CAFile, files.CertFile, files.KeyFile} {
		if f == "" {
			t.Fatalf("missing file in %+v", files)
		}
	}
	c := s.Client(t)
	Put(t, c, "/tls", "ok")
}
