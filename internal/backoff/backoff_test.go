package backoff

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		min, max time.Duration
		want     []time.Duration
	}{
		{"doubles to max", 100 * ms, 500 * ms, []time.Duration{100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms}},
		{"min equals max", 1 * ms, 1 * ms, []time.Duration{1 * ms, 1 * ms, 1 * ms}},
		{"max below min", 10 * ms, 1 * ms, []time.Duration{10 * ms, 10 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Backoff{Min: tt.min, Max: tt.max}
			for i, w := range tt.want {
				if got := b.Next(); got != w {
					t.Errorf("Next #%d: got %v, want %v", i+1, got, w)
				}
			}
			b.Reset()
			if got := b.Next(); got != tt.min {
				t.Errorf("Next after Reset: got %v, want %v", got, tt.min)
			}
		})
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context: got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Sleep on a cancelled context took %v, want at once", d)
	}
	if err := Sleep(context.Background(), 5*time.Millisecond); err != nil {
		t.Errorf("Sleep 5ms: got %v, want nil", err)
	}
}

func TestRetry(t *testing.T) {
	calls := 0
	var waits []time.Duration
	v, err := Retry(context.Background(), Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond},
		func() (int, error) {
			calls++
			if calls < 4 {
				return 0, errors.New("not yet")
			}
			return 42, nil
		},
		func(err error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil || v != 42 {
		t.Fatalf("Retry: got %d, %v; want 42, nil", v, err)
	}
	if calls != 4 {
		t.Errorf("calls: got %d, want 4", calls)
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond}
	if len(waits) != len(want) {
		t.Fatalf("waits: got %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("wait #%d: got %v, want %v", i+1, waits[i], want[i])
		}
	}
}

func TestRetryContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	calls := 0
	_, err := Retry(ctx, Backoff{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond},
		func() (struct{}, error) { calls++; return struct{}{}, errors.New("never") }, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Retry until the deadline: got %v, want context.DeadlineExceeded", err)
	}
	if calls < 2 {
		t.Errorf("calls: got %d, want several before the deadline", calls)
	}
}

func TestRetryPermanent(t *testing.T) {
	refused := errors.New("refused")
	tests := []struct {
		name      string
		errs      []error // fn's results, one per call
		wantCalls int
		wantErr   error
	}{
		{"permanent at once", []error{Permanent(refused)}, 1, refused},
		{"permanent after a transient", []error{errors.New("down"), fmt.Errorf("wrapped: %w", Permanent(refused))}, 2, refused},
		{"transient then success", []error{errors.New("down"), nil}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, retried := 0, 0
			_, err := Retry(context.Background(), Backoff{Min: time.Millisecond, Max: time.Millisecond},
				func() (int, error) { calls++; return 0, tt.errs[calls-1] },
				func(error, time.Duration) { retried++ })
			if calls != tt.wantCalls || retried != tt.wantCalls-1 {
				t.Errorf("got %d calls and %d retries, want %d and %d", calls, retried, tt.wantCalls, tt.wantCalls-1)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil && (!IsPermanent(err) || err.Error() != "wrapped: refused" && err.Error() != "refused") {
				t.Errorf("got %q (permanent %v), want the permanent error's own text", err, IsPermanent(err))
			}
		})
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil): got an error, want nil")
	}
}
