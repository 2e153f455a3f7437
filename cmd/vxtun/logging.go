package main

import (
	"context"
	"log/slog"
	"sync"
)

// startupHandler holds back records below slog.LevelWarn until flush is
// called (the daemon is up); if it never is, they are dropped, so a failed
// start prints only its error line. Warnings and errors pass at once.
// After flush it passes everything through.
type startupHandler struct {
	inner slog.Handler
	st    *startupState
}

type startupState struct {
	mu      sync.Mutex
	holding bool
	held    []heldRecord
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func newStartupHandler(inner slog.Handler) *startupHandler {
	return &startupHandler{inner: inner, st: &startupState{holding: true}}
}

func (h *startupHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *startupHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		h.st.mu.Lock()
		if h.st.holding {
			h.st.held = append(h.st.held, heldRecord{h.inner, r.Clone()})
			h.st.mu.Unlock()
			return nil
		}
		h.st.mu.Unlock()
	}
	return h.inner.Handle(ctx, r)
}

func (h *startupHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &startupHandler{inner: h.inner.WithAttrs(attrs), st: h.st}
}

func (h *startupHandler) WithGroup(name string) slog.Handler {
	return &startupHandler{inner: h.inner.WithGroup(name), st: h.st}
}

// flush writes the held records in order and stops holding. Idempotent.
func (h *startupHandler) flush() {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	for _, hr := range h.st.held {
		_ = hr.h.Handle(context.Background(), hr.r)
	}
	h.st.held, h.st.holding = nil, false
}
