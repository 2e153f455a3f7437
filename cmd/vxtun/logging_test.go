package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestStartupHandler(t *testing.T) {
	var buf bytes.Buffer
	h := newStartupHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log := slog.New(h)
	log.Info("first", "k", 1)
	log.With("comp", "x").Debug("second")
	log.Warn("warning now")
	if got := buf.String(); !strings.Contains(got, "warning now") || strings.Contains(got, "first") {
		t.Fatalf("before flush: got %q, want only the warning", got)
	}
	h.flush()
	log.Info("after")
	got := buf.String()
	iFirst, iSecond, iAfter := strings.Index(got, "msg=first k=1"), strings.Index(got, "msg=second comp=x"), strings.Index(got, "msg=after")
	if iFirst < 0 || iSecond < 0 || iAfter < 0 || !(iFirst < iSecond && iSecond < iAfter) {
		t.Errorf("after flush: got %q, want first, second (with its attrs), after, in order", got)
	}
	h.flush() // idempotent
	if n := strings.Count(buf.String(), "msg=first"); n != 1 {
		t.Errorf("held record written %d times, want 1", n)
	}

	// Never flushed: held records are dropped.
	buf.Reset()
	h2 := newStartupHandler(slog.NewTextHandler(&buf, nil))
	slog.New(h2).Info("dropped")
	if buf.Len() != 0 {
		t.Errorf("unflushed info written: %q", buf.String())
	}
}
