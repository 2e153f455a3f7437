package bench

import (
	"context"
	"errors"
	"math"
	"testing"
)

// fakePath models a path that carries up to capacity and a generator that
// produces up to gen; everything above capacity is lost.
func fakePath(capacity, gen float64) TrialFunc {
	return func(_ context.Context, offered float64) (Trial, error) {
		sent := math.Min(offered, gen)
		recv := math.Min(sent, capacity)
		loss := 0.0
		if sent > 0 {
			loss = (sent - recv) / sent * 100
		}
		return Trial{Sent: sent, Received: recv, LossPercent: loss}, nil
	}
}

func TestSearchRate(t *testing.T) {
	cfg := SearchConfig{Max: 1000, LossLimit: 0.1, Resolution: 0.02, MaxSteps: 12, GeneratorSlack: 0.1}
	tests := []struct {
		name      string
		capacity  float64
		gen       float64
		wantLo    float64
		wantHi    float64
		wantGen   bool
		wantCeil  bool
		maxTrials int
	}{
		{"path bound", 230, 5000, 230 * 0.98, 230, false, false, 13},
		{"path bound low", 7, 5000, 7 * 0.98, 7, false, false, 13},
		{"generator bound", 5000, 400, 360, 400, true, false, 13},
		{"generator bound under overload", 450, 400, 360, 400, true, false, 13},
		{"ceiling", 5000, 5000, 1000, 1000, false, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := SearchRate(context.Background(), cfg, fakePath(tt.capacity, tt.gen))
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got := res.Best.Received; got < tt.wantLo || got > tt.wantHi {
				t.Errorf("got received rate %.2f, want in [%.2f, %.2f] (trials %+v)", res.Best.Received, tt.wantLo, tt.wantHi, res.Trials)
			}
			if res.GeneratorBound != tt.wantGen || res.CeilingBound != tt.wantCeil {
				t.Errorf("got generatorBound=%v ceilingBound=%v, want %v %v", res.GeneratorBound, res.CeilingBound, tt.wantGen, tt.wantCeil)
			}
			if len(res.Trials) > tt.maxTrials {
				t.Errorf("got %d trials, want ≤ %d", len(res.Trials), tt.maxTrials)
			}
			if res.Best.LossPercent >= cfg.LossLimit {
				t.Errorf("got best loss %.3f, want < %.3f", res.Best.LossPercent, cfg.LossLimit)
			}
		})
	}
}

// TestSearchRateGeneratorHiccup: one trial in which the generator falls far
// short of what it produced before (a busy machine) does not end the search
// as generator-bound.
func TestSearchRateGeneratorHiccup(t *testing.T) {
	cfg := SearchConfig{Max: 1000, LossLimit: 0.1, Resolution: 0.02, MaxSteps: 12, GeneratorSlack: 0.1}
	path := fakePath(230, 5000)
	n := 0
	hiccup := func(ctx context.Context, offered float64) (Trial, error) {
		n++
		tr, err := path(ctx, offered)
		if n == 2 { // the first trial after the overload probe
			tr.Sent, tr.Received = offered/10, offered/10
		}
		return tr, err
	}
	res, err := SearchRate(context.Background(), cfg, hiccup)
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if res.GeneratorBound {
		t.Errorf("got generatorBound after a hiccup, want false (trials %+v)", res.Trials)
	}
	if got := res.Best.Received; got < 230*0.98 || got > 230 {
		t.Errorf("got received rate %.2f, want in [%.2f, 230] (trials %+v)", got, 230*0.98, res.Trials)
	}
}

func TestSearchRateNoPass(t *testing.T) {
	lossy := func(_ context.Context, offered float64) (Trial, error) {
		return Trial{Sent: offered, Received: offered / 2, LossPercent: 50}, nil
	}
	cfg := SearchConfig{Max: 1000, LossLimit: 0.1, Resolution: 0.05, MaxSteps: 5, GeneratorSlack: 0.1}
	res, err := SearchRate(context.Background(), cfg, lossy)
	if !errors.Is(err, errNoPass) {
		t.Fatalf("got err %v, want errNoPass", err)
	}
	if got := len(res.Trials); got != 6 {
		t.Errorf("got %d trials, want 6 (probe + MaxSteps)", got)
	}
}

// TestSearchRateNothingSent: a trial in which the generator sent nothing
// (starved) does not pass as 0 at 0 % loss; the search goes on below.
func TestSearchRateNothingSent(t *testing.T) {
	path := fakePath(230, 5000)
	n := 0
	starved := func(ctx context.Context, offered float64) (Trial, error) {
		n++
		if n == 1 {
			return Trial{}, nil
		}
		return path(ctx, offered)
	}
	cfg := SearchConfig{Max: 1000, LossLimit: 0.1, Resolution: 0.02, MaxSteps: 12, GeneratorSlack: 0.1}
	res, err := SearchRate(context.Background(), cfg, starved)
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if res.GeneratorBound || res.Best.Received < 230*0.98 || res.Best.Received > 230 {
		t.Errorf("got received %.2f, generator-bound %v; want ≈ 230 from the path, not bound (trials %+v)", res.Best.Received, res.GeneratorBound, res.Trials)
	}
}

func TestSearchRateErrors(t *testing.T) {
	boom := errors.New("boom")
	failing := func(context.Context, float64) (Trial, error) { return Trial{}, boom }
	good := SearchConfig{Max: 10, LossLimit: 0.1, Resolution: 0.05, MaxSteps: 3}
	if _, err := SearchRate(context.Background(), good, failing); !errors.Is(err, boom) {
		t.Errorf("got %v, want wrapped boom", err)
	}
	for _, bad := range []SearchConfig{
		{Max: 0, LossLimit: 0.1, Resolution: 0.05},
		{Max: 10, LossLimit: 0, Resolution: 0.05},
		{Max: 10, LossLimit: 0.1, Resolution: 0},
		{Max: 10, LossLimit: 0.1, Resolution: 0.05, MaxSteps: -1},
		{Max: math.NaN(), LossLimit: 0.1, Resolution: 0.05},
	} {
		if _, err := SearchRate(context.Background(), bad, fakePath(1, 1)); err == nil {
			t.Errorf("config %+v: got nil error, want one", bad)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SearchRate(ctx, SearchConfig{Max: 1000, LossLimit: 0.1, Resolution: 0.01, MaxSteps: 5}, fakePath(100, 5000)); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
