package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Trial is the outcome of offering traffic at one rate for a fixed time.
// Rates are in the caller's unit (the harness uses payload bits/s).
type Trial struct {
	Offered     float64 // the rate asked of the generator
	Sent        float64 // the rate the generator actually produced
	Received    float64 // the rate that arrived
	LossPercent float64
	// Busy is the share of all CPUs the machine kept busy during the trial
	// (0..1; 0 when unknown).
	Busy float64
	// ProcBusy is the CPU-seconds per second the mode's own processes (the
	// overlay daemons) used during the trial (0 when there are none).
	ProcBusy float64
}

// TrialFunc runs one trial at the offered rate.
type TrialFunc func(ctx context.Context, offered float64) (Trial, error)

// SearchConfig bounds an RFC 2544 throughput search.
type SearchConfig struct {
	// Max is the highest rate offered (the first probe).
	Max float64
	// LossLimit is the loss, in percent, a passing trial stays under (0.1).
	LossLimit float64
	// Resolution ends the search when hi-lo ≤ Resolution·hi (e.g. 0.05).
	Resolution float64
	// MaxSteps bounds the trials after the first probe.
	MaxSteps int
	// GeneratorSlack: a trial whose Sent < (1-GeneratorSlack)·Offered shows
	// the generator cannot produce the offered rate (e.g. 0.1).
	GeneratorSlack float64
}

// SearchResult is the highest passing rate found.
type SearchResult struct {
	// Rate is the highest offered rate that passed (0 if none did).
	Rate float64
	// Best is the passing trial at Rate (zero if none passed).
	Best Trial
	// GeneratorBound is true when the generator, not the path, limited the
	// result: it could not produce the rates the search wanted to offer.
	GeneratorBound bool
	// CeilingBound is true when even Max passed.
	CeilingBound bool
	// Trials lists every trial in order.
	Trials []Trial
}

// SearchRate finds the highest offered rate whose loss stays under
// cfg.LossLimit by binary search. It first offers cfg.Max to learn what the
// generator can produce; the search then runs between 0 and the lower of
// Max and that rate. A passing trial in which the generator fell short of
// the offered rate ends the search as generator-bound, unless the generator
// had produced more in an earlier trial (then it was a hiccup).
func SearchRate(ctx context.Context, cfg SearchConfig, trial TrialFunc) (SearchResult, error) {
	if !(cfg.Max > 0) || !(cfg.LossLimit > 0) || !(cfg.Resolution > 0) || cfg.MaxSteps < 0 || cfg.GeneratorSlack < 0 || cfg.GeneratorSlack >= 1 {
		return SearchResult{}, fmt.Errorf("search rate: bad config %+v", cfg)
	}
	var res SearchResult
	run := func(rate float64) (Trial, error) {
		t, err := trial(ctx, rate)
		if err != nil {
			return Trial{}, fmt.Errorf("trial at %.4g: %w", rate, err)
		}
		t.Offered = rate
		res.Trials = append(res.Trials, t)
		return t, nil
	}
	short := func(t Trial) bool { return t.Sent < (1-cfg.GeneratorSlack)*t.Offered }
	// A trial in which nothing was sent (a starved generator on a loaded
	// machine) shows nothing about the path: it never passes.
	pass := func(t Trial) bool { return t.Sent > 0 && t.LossPercent < cfg.LossLimit }

	first, err := run(cfg.Max)
	if err != nil {
		return res, err
	}
	if pass(first) {
		res.Rate, res.Best = first.Offered, first
		if short(first) {
			res.GeneratorBound = true
		} else {
			res.CeilingBound = true
		}
		return res, nil
	}
	lo, hi := 0.0, cfg.Max
	maxSent := first.Sent
	if short(first) && first.Sent > 0 {
		hi = first.Sent
	}
	// What got through under overload is a good first guess of the
	// capacity; after it, bisect (geometrically while the bracket is wide).
	guess := 0.95 * first.Received
	for step := 0; step < cfg.MaxSteps && hi-lo > cfg.Resolution*hi; step++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var rate float64
		switch {
		case step == 0 && guess > 0 && guess < hi:
			rate = guess
		case lo > 0 && hi > 2*lo:
			rate = math.Sqrt(lo * hi)
		default:
			rate = (lo + hi) / 2
		}
		t, err := run(rate)
		if err != nil {
			return res, err
		}
		if !pass(t) {
			hi = rate
			continue
		}
		lo = rate
		res.Rate, res.Best = rate, t
		// Short of a rate the generator has produced before (the overload
		// probe sent more) is a hiccup of a busy machine, not its limit:
		// the search goes on.
		if short(t) && t.Sent >= (1-cfg.GeneratorSlack)*maxSent {
			res.GeneratorBound = true
			break
		}
		maxSent = max(maxSent, t.Sent)
	}
	if res.Rate == 0 && len(res.Trials) > 0 {
		return res, errNoPass
	}
	return res, nil
}

var errNoPass = errors.New("no offered rate passed the loss limit")
