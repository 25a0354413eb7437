// Package algotest is test support for package algorithms and the algorithm
// packages built on it (fedavg, scaffold). It is for tests and small
// research runs, not for production use.
//
// It gives the heterogeneous quadratic family of ALGORITHMS.md (oracle O1):
// client i has f_i(x) = 0.5*||A_i x - b_i||^2, or in the scalar form
// f_i(x) = 0.5*a_i*(x - u_i)^2, with exact gradients; a deterministic noisy
// variant whose minibatch noise depends only on (seed, k), so the two
// same-k calls of a variance-reduced step see the same minibatch; the
// closed-form points the oracles compare against (the minimiser x*,
// FedAvg's biased fixed point, FedProx's exact-prox fixed point); and Run,
// a tiny deterministic round engine over the public API of package
// algorithms.
package algotest

import (
	"fmt"
	"math/rand/v2"

	"github.com/fedmo/fedmo/algorithms"
)

// Quadratic is one client's objective. It is either in least-squares form,
// f(x) = 0.5*||A x - b||^2, or in centred form, f(x) = 0.5*(x-u)^T H (x-u).
// Either way grad f(x) = H x - h with H = A^T A, h = A^T b (or h = H u).
//
// Grad ignores k and returns the exact gradient (full-batch, sigma = 0), as
// does FullGrad. A Quadratic is immutable and safe for concurrent use.
type Quadratic struct {
	n    int
	rows [][]float64 // A, one row per slice; nil in centred form
	b    []float64   // b; nil in centred form
	h    [][]float64 // H, n x n
	lin  []float64   // h
	u    []float64   // the centre; nil in least-squares form
}

var _ algorithms.Oracle = (*Quadratic)(nil)

// LeastSquares returns f(x) = 0.5*||A x - b||^2 for A with len(b) rows of
// equal length n >= 1. It copies A and b and panics on a shape mismatch.
func LeastSquares(a [][]float64, b []float64) *Quadratic {
	if len(a) == 0 || len(a) != len(b) {
		panic(fmt.Sprintf("algotest: A has %d rows and b %d elements", len(a), len(b)))
	}
	n := len(a[0])
	if n == 0 {
		panic("algotest: A has no columns")
	}
	q := &Quadratic{n: n, b: append([]float64(nil), b...)}
	for i, row := range a {
		if len(row) != n {
			panic(fmt.Sprintf("algotest: row %d of A has %d elements, want %d", i, len(row), n))
		}
		q.rows = append(q.rows, append([]float64(nil), row...))
	}
	q.h = make([][]float64, n)
	q.lin = make([]float64, n)
	for j := range n {
		q.h[j] = make([]float64, n)
		for l := range n {
			for _, row := range q.rows {
				q.h[j][l] += row[j] * row[l]
			}
		}
		for r, row := range q.rows {
			q.lin[j] += row[j] * q.b[r]
		}
	}
	return q
}

// Centred returns f(x) = 0.5*(x-u)^T H (x-u) for a symmetric positive
// semi-definite n x n matrix H. It copies H and u and panics on a shape
// mismatch.
func Centred(h [][]float64, u []float64) *Quadratic {
	n := len(u)
	if n == 0 || len(h) != n {
		panic(fmt.Sprintf("algotest: H has %d rows and u %d elements", len(h), n))
	}
	q := &Quadratic{n: n, u: append([]float64(nil), u...), h: make([][]float64, n), lin: make([]float64, n)}
	for j, row := range h {
		if len(row) != n {
			panic(fmt.Sprintf("algotest: row %d of H has %d elements, want %d", j, len(row), n))
		}
		q.h[j] = append([]float64(nil), row...)
		for l := range n {
			q.lin[j] += row[l] * u[l]
		}
	}
	return q
}

// Scalar returns f(x) = 0.5*a*(x-u)^2 over one parameter, whose gradient
// is a*(x-u).
func Scalar(a, u float64) *Quadratic {
	return Centred([][]float64{{a}}, []float64{u})
}

// Scalars returns the scalar clients 0.5*a[i]*(x-u[i])^2.
func Scalars(a, u []float64) []*Quadratic {
	if len(a) != len(u) {
		panic(fmt.Sprintf("algotest: %d curvatures and %d centres", len(a), len(u)))
	}
	qs := make([]*Quadratic, len(a))
	for i := range a {
		qs[i] = Scalar(a[i], u[i])
	}
	return qs
}

// Dim is the number of parameters.
func (q *Quadratic) Dim() int { return q.n }

// Hessian returns a copy of H.
func (q *Quadratic) Hessian() [][]float64 {
	h := make([][]float64, q.n)
	for j := range h {
		h[j] = append([]float64(nil), q.h[j]...)
	}
	return h
}

// Linear returns a copy of h, so that grad f(x) = H x - h.
func (q *Quadratic) Linear() []float64 { return append([]float64(nil), q.lin...) }

// Loss returns f(x).
func (q *Quadratic) Loss(x []float64) float64 {
	q.check(x, nil)
	if q.rows != nil {
		var loss float64
		for r, row := range q.rows {
			res := dot(row, x) - q.b[r]
			loss += 0.5 * res * res
		}
		return loss
	}
	var loss float64
	for j := range q.n {
		var hj float64
		for l := range q.n {
			hj += q.h[j][l] * (x[l] - q.u[l])
		}
		loss += 0.5 * (x[j] - q.u[j]) * hj
	}
	return loss
}

// Grad writes the exact gradient at x into g and returns f(x); k is ignored.
func (q *Quadratic) Grad(x []float64, _ int, g []float64) float64 { return q.FullGrad(x, g) }

// FullGrad writes the exact gradient at x into g and returns f(x).
func (q *Quadratic) FullGrad(x, g []float64) float64 {
	q.check(x, g)
	clear(g)
	if q.rows != nil { // A^T (A x - b)
		var loss float64
		for r, row := range q.rows {
			res := dot(row, x) - q.b[r]
			loss += 0.5 * res * res
			for j, a := range row {
				g[j] += res * a
			}
		}
		return loss
	}
	var loss float64 // H (x - u)
	for j := range q.n {
		for l := range q.n {
			g[j] += q.h[j][l] * (x[l] - q.u[l])
		}
		loss += 0.5 * (x[j] - q.u[j]) * g[j]
	}
	return loss
}

func (q *Quadratic) check(x, g []float64) {
	if len(x) != q.n || (g != nil && len(g) != q.n) {
		panic(fmt.Sprintf("algotest: %d parameters and %d gradient elements, want %d", len(x), len(g), q.n))
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// Noisy is a Quadratic whose minibatch gradients carry deterministic noise:
// Grad(x, k, g) writes grad f(x) + Sigma*z into g, where z is a standard
// normal vector drawn from a PCG stream seeded by (Seed, k) alone. Two calls
// with the same k therefore see the same "minibatch", as the
// variance-reduced variants require (ALGORITHMS.md P16), and the noise does
// not depend on x, so Grad(y, k) - Grad(x, k) = H (y - x) exactly up to
// rounding. FullGrad is exact. The returned loss is the exact f(x).
type Noisy struct {
	*Quadratic
	Sigma float64
	Seed  uint64
}

var _ algorithms.Oracle = Noisy{}

// Grad writes the noisy gradient of step k at x into g and returns f(x).
func (q Noisy) Grad(x []float64, k int, g []float64) float64 {
	loss := q.FullGrad(x, g)
	r := rand.New(rand.NewPCG(q.Seed, uint64(k)))
	for j := range g {
		g[j] += q.Sigma * r.NormFloat64()
	}
	return loss
}

// Noise writes the noise Sigma*z of step k into z: Grad(x, k) - FullGrad(x).
func (q Noisy) Noise(k int, z []float64) {
	r := rand.New(rand.NewPCG(q.Seed, uint64(k)))
	for j := range z {
		z[j] = q.Sigma * r.NormFloat64()
	}
}

// mix hashes (seed, round, client) into one seed (splitmix64 finalizer over
// each word), so that the noise of different rounds and clients is
// independent.
func mix(seed uint64, round, client int) uint64 {
	h := seed
	for _, w := range []uint64{uint64(int64(round)), uint64(int64(client))} {
		h ^= w + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2)
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}
