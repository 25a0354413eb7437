package algotest

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/fedmo/fedmo/algorithms"
)

// Problem is a federation of N quadratic clients with the uniform global
// objective f = (1/N) sum_i f_i (ALGORITHMS.md convention 1).
//
// With Sigma = 0 every oracle is the client's exact Quadratic (full
// gradients). With Sigma > 0 the oracle of (round, client) is a Noisy
// quadratic whose seed mixes (Seed, round, client), so the noise differs
// between rounds and clients but a run is reproducible.
type Problem struct {
	Clients []*Quadratic
	Sigma   float64
	Seed    uint64
}

// ScalarProblem is the full-gradient problem of the scalar clients
// 0.5*a[i]*(x-u[i])^2.
func ScalarProblem(a, u []float64) *Problem { return &Problem{Clients: Scalars(a, u)} }

// NumClients is N.
func (p *Problem) NumClients() int { return len(p.Clients) }

// Dim is the number of parameters.
func (p *Problem) Dim() int { return p.Clients[0].Dim() }

// Oracle returns the oracle of client i in round r.
func (p *Problem) Oracle(r, i int) algorithms.Oracle {
	if p.Sigma == 0 {
		return p.Clients[i]
	}
	return p.Noisy(r, i)
}

// Noisy returns the noisy oracle of client i in round r, whatever Sigma is.
func (p *Problem) Noisy(r, i int) Noisy {
	return Noisy{Quadratic: p.Clients[i], Sigma: p.Sigma, Seed: mix(p.Seed, r, i)}
}

// Loss returns f(x) = (1/N) sum_i f_i(x).
func (p *Problem) Loss(x []float64) float64 {
	var s float64
	for _, q := range p.Clients {
		s += q.Loss(x)
	}
	return s / float64(len(p.Clients))
}

// Grad writes grad f(x) = (1/N) sum_i grad f_i(x) into g.
func (p *Problem) Grad(x, g []float64) {
	clear(g)
	gi := make([]float64, len(g))
	for _, q := range p.Clients {
		q.FullGrad(x, gi)
		for j := range g {
			g[j] += gi[j]
		}
	}
	for j := range g {
		g[j] /= float64(len(p.Clients))
	}
}

// Minimizer returns x* = (sum_i H_i)^{-1} sum_i h_i, the minimiser of f
// (oracle O1). It returns an error if sum_i H_i is singular.
func (p *Problem) Minimizer() ([]float64, error) {
	n := p.Dim()
	a := mat.NewDense(n, n, nil)
	b := mat.NewVecDense(n, nil)
	for _, q := range p.Clients {
		a.Add(a, dense(q.h))
		b.AddVec(b, mat.NewVecDense(n, q.Linear()))
	}
	return solve(a, b)
}

// FedAvgFixedPoint returns the point FedAvg converges to with full
// participation, full gradients, uniform weights, K local GD steps of size
// eta and any server step that converges (oracle O3):
//
//	x_FA = (I - Mbar)^{-1} cbar,  M_i = (I - eta H_i)^K,
//	c_i = sum_{j<K} (I - eta H_i)^j eta h_i,
//
// bars meaning averages over the clients. For FedAvg-M with full gradients
// the fixed point is the same with eta*beta in place of eta.
func (p *Problem) FedAvgFixedPoint(eta float64, k int) ([]float64, error) {
	n := p.Dim()
	inv := 1 / float64(len(p.Clients))
	a := mat.NewDense(n, n, nil) // I - Mbar
	b := mat.NewVecDense(n, nil) // cbar
	for _, q := range p.Clients {
		step := mat.NewDense(n, n, nil) // I - eta H_i
		step.Scale(-eta, dense(q.h))
		for j := range n {
			step.Set(j, j, step.At(j, j)+1)
		}
		m := eye(n) // (I - eta H_i)^j
		c := mat.NewVecDense(n, nil)
		eh := mat.NewVecDense(n, q.Linear())
		eh.ScaleVec(eta, eh)
		for range k {
			var t mat.VecDense
			t.MulVec(m, eh)
			c.AddVec(c, &t)
			m.Mul(m, step)
		}
		a.Sub(a, scaled(inv, m))
		b.AddScaledVec(b, inv, c)
	}
	a.Add(a, eye(n))
	return solve(a, b)
}

// FedProxFixedPoint returns the point FedProx converges to with exact local
// solves w_i = argmin f_i(w) + (mu/2)*||w - x||^2, full participation and
// uniform weights (oracle O4): the solution of
// (I - mu*mean_i P_i) w = mean_i P_i h_i with P_i = (H_i + mu I)^{-1}.
func (p *Problem) FedProxFixedPoint(mu float64) ([]float64, error) {
	n := p.Dim()
	inv := 1 / float64(len(p.Clients))
	a := eye(n)
	b := mat.NewVecDense(n, nil)
	for _, q := range p.Clients {
		hm := dense(q.h)
		for j := range n {
			hm.Set(j, j, hm.At(j, j)+mu)
		}
		var pi mat.Dense
		if err := pi.Inverse(hm); err != nil {
			return nil, fmt.Errorf("algotest: H_i + mu I: %w", err)
		}
		a.Sub(a, scaled(mu*inv, &pi))
		var t mat.VecDense
		t.MulVec(&pi, mat.NewVecDense(n, q.Linear()))
		b.AddScaledVec(b, inv, &t)
	}
	return solve(a, b)
}

func dense(h [][]float64) *mat.Dense {
	n := len(h)
	d := mat.NewDense(n, n, nil)
	for j := range h {
		d.SetRow(j, h[j])
	}
	return d
}

func eye(n int) *mat.Dense {
	d := mat.NewDense(n, n, nil)
	for j := range n {
		d.Set(j, j, 1)
	}
	return d
}

func scaled(f float64, m mat.Matrix) *mat.Dense {
	var d mat.Dense
	d.Scale(f, m)
	return &d
}

func solve(a *mat.Dense, b *mat.VecDense) ([]float64, error) {
	var x mat.VecDense
	if err := x.SolveVec(a, b); err != nil {
		return nil, fmt.Errorf("algotest: %w", err)
	}
	return append([]float64(nil), x.RawVector().Data...), nil
}
