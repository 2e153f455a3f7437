package backoff

import (
	"context"
	"errors"
	"time"
)

// Backoff yields waits that start at Min and double up to Max. The zero
// value is not useful: set Min and Max (Max < Min is treated as Max = Min).
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the wait before the next attempt: Min the first time (and
// after Reset), then twice the previous one, at most Max.
func (b *Backoff) Next() time.Duration {
	hi := max(b.Max, b.Min)
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, hi)
	}
	return b.cur
}

// Reset makes the next Next return Min again (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits for d or until ctx is done; it returns ctx.Err() in that case.
// A non-positive d returns at once (with ctx.Err(), if any).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls fn until it returns no error or ctx is done, waiting b.Next()
// between attempts. Before each wait it calls onErr (if not nil) with the
// failure and the wait, e.g. to log "retrying". When ctx ends it returns
// ctx.Err() and fn's last value. An error marked by Permanent is returned
// at once, without onErr.
func Retry[T any](ctx context.Context, b Backoff, fn func() (T, error), onErr func(err error, wait time.Duration)) (T, error) {
	for {
		v, err := fn()
		if err == nil {
			return v, nil
		}
		if IsPermanent(err) {
			return v, err
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		wait := b.Next()
		if onErr != nil {
			onErr(err, wait)
		}
		if err := Sleep(ctx, wait); err != nil {
			return v, err
		}
	}
}

// Permanent marks err as one that retrying cannot cure (a wrong password,
// say): Retry returns it at once. The error's text is err's, and errors.Is
// and errors.As see err through it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	return errors.As(err, new(permanent))
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }
