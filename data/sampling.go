package data

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// logGamma draws log G with G ~ Gamma(shape a, rate 1), a > 0.
//
// The draw itself is gonum's (Marsaglia-Tsang for shape >= 1) on the given
// stream. For a < 1 it uses the boost G = G' * U^(1/a) with G' ~ Gamma(a+1)
// and U uniform in (0, 1], kept in log space: for the tiny shapes a
// Dirichlet(alpha -> 0) needs, G itself underflows to 0 but log G does not.
func logGamma(r *rand.Rand, a float64) float64 {
	if a >= 1 {
		return math.Log(distuv.Gamma{Alpha: a, Beta: 1, Src: r}.Rand())
	}
	g := distuv.Gamma{Alpha: a + 1, Beta: 1, Src: r}.Rand()
	u := 1 - r.Float64() // (0, 1]
	return math.Log(g) + math.Log(u)/a
}

// logDirichlet fills dst with unnormalised log weights of a draw from
// Dirichlet(conc): p_i = exp(dst[i]) / sum_j exp(dst[j]). Use normalizeLog
// to turn them into probabilities over any subset of the coordinates.
func logDirichlet(r *rand.Rand, conc []float64, dst []float64) {
	for i, a := range conc {
		dst[i] = logGamma(r, a)
	}
}

// normalizeLog writes into p the probabilities proportional to exp(logw[i])
// over the coordinates with keep[i] (keep == nil keeps all) and 0 elsewhere.
// It works relative to the largest kept log weight, so the kept
// probabilities always sum to 1 (up to rounding) even when every exp(logw)
// underflows. It returns false when nothing is kept.
func normalizeLog(logw []float64, keep []bool, p []float64) bool {
	top := math.Inf(-1)
	for i, l := range logw {
		if (keep == nil || keep[i]) && l > top {
			top = l
		}
	}
	if math.IsInf(top, -1) {
		for i := range p {
			p[i] = 0
		}
		return false
	}
	sum := 0.0
	for i, l := range logw {
		if keep == nil || keep[i] {
			p[i] = math.Exp(l - top)
			sum += p[i]
		} else {
			p[i] = 0
		}
	}
	for i := range p {
		p[i] /= sum
	}
	return true
}

// categorical draws an index with probability p[i] (p sums to 1). Zero
// entries are never drawn.
func categorical(r *rand.Rand, p []float64) int {
	u := r.Float64()
	acc := 0.0
	last := -1
	for i, v := range p {
		if v <= 0 {
			continue
		}
		acc += v
		last = i
		if u < acc {
			return i
		}
	}
	// Rounding left u above the cumulative sum: take the last possible
	// index.
	return last
}
