package bench

import (
	"math"
	"sort"
)

// Median returns the median of xs (the mean of the two middle values for an
// even count). ok is false when xs is empty or holds a NaN/Inf.
func Median(xs []float64) (m float64, ok bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := make([]float64, len(xs))
	copy(s, xs)
	for _, x := range s {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
	}
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of xs:
// the smallest value such that at least p % of the samples are ≤ it.
func Percentile(xs []float64, p float64) (v float64, ok bool) {
	if len(xs) == 0 || !(p > 0 && p <= 100) {
		return 0, false
	}
	s := make([]float64, len(xs))
	copy(s, xs)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1], true
}

// Ratio returns v/base; ok is false when base is zero or either value is not
// finite.
func Ratio(v, base float64) (r float64, ok bool) {
	if base == 0 || math.IsNaN(v) || math.IsNaN(base) || math.IsInf(v, 0) || math.IsInf(base, 0) {
		return 0, false
	}
	return v / base, true
}
