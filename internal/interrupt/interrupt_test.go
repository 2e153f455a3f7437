package interrupt

import (
	"bytes"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFirstSignalCancelsLaterOnesAreAbsorbed(t *testing.T) {
	var out syncBuf
	ctx, stop := Context(&out, "tool", "cleaning up")
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled by SIGHUP")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "still cleaning up") {
		if time.Now().After(deadline) {
			t.Fatalf("got output %q, want the second signal absorbed with a note", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := out.String(); !strings.HasPrefix(got, "tool: hangup: cleaning up\n") {
		t.Fatalf("got output %q, want it to start with %q", got, "tool: hangup: cleaning up\n")
	}
	stop()
	stop() // idempotent
}
