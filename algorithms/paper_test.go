package algorithms_test

// The algorithm boxes of ALGORITHMS.md, written out a second time, literally
// and independently of the package's code, and compared with the package
// round by round on a noisy problem under partial participation:
//
//   - FedAvg, McMahan et al. (section 3): x = sum_{k in S_t} (n_k/m_t) w^k;
//   - FedProx (section 5): w <- w - eta*(grad F_k(w; xi) + mu*(w - w^t));
//   - FedAvg-M, Algorithm 1 (section 1.2): v = beta*grad + (1-beta)*g^r,
//     g^{r+1} = (1/(eta*|S|*K)) sum_i (x^r - x_i^{r,K}), x^{r+1} = x^r - gamma*g^{r+1};
//   - SCAFFOLD-M, Algorithm 2 (1.3): v = beta*(G - c_i + c) + (1-beta)*g^r,
//     c_i^{r+1} = s_i/K, c += (1/N) sum (c_i^{r+1} - c_i^r);
//   - FedAvg-M-VR, Algorithm 3 (1.4): v = G(y) + (1-beta)*(g^r - G(x^{r-1})),
//     one minibatch for both gradients;
//   - SCAFFOLD-M-VR, Algorithm 4 (1.5):
//     v = beta*(G(y) - c_i + c) + (1-beta)*(g^r + G(y) - G(x^{r-1}));
//   - SCAFFOLD, Algorithm 1 (2.1), Options I and II;
//   - FedAvgM (3.1): m = beta_s*m + Delta, x -= eta_g*m; Nesterov
//     x -= eta_g*(Delta + beta_s*m);
//   - FedAdagrad, FedYogi, FedAdam (section 4, Algorithm 2);
//   - plain local heavy-ball SGD (convention 5): b = hb*b + v, reset every
//     round.

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

// paperAlg is one configuration, in the paper's parameters.
type paperAlg struct {
	name      string
	k         int
	eta, etaG float64 // gamma = etaG*eta*K
	beta      float64 // Cheng's beta on the fresh gradient; 1 = off
	vr        bool
	mu, hb    float64 // FedProx; local heavy ball
	scaffold  bool
	optionI   bool
	server    string // "avg", "hb", "nesterov", "adam", "yogi", "adagrad"
	betaS     float64
	weighted  bool
}

// paperState is the whole state of the written-out run.
type paperState struct {
	x, xPrev, g, c, m, v []float64
	ci                   [][]float64
}

const b1, b2, tau = 0.9, 0.99, 1e-3

func newPaperState(x0 []float64, n int, a paperAlg) *paperState {
	d := len(x0)
	st := &paperState{x: slices.Clone(x0), xPrev: slices.Clone(x0), g: make([]float64, d), c: make([]float64, d), m: make([]float64, d), v: make([]float64, d)}
	for range n {
		st.ci = append(st.ci, make([]float64, d))
	}
	for j := range st.v {
		st.v[j] = tau * tau
	}
	return st
}

func grad(o algorithms.Oracle, x []float64, k int) []float64 {
	g := make([]float64, len(x))
	if k < 0 {
		o.FullGrad(x, g)
	} else {
		o.Grad(x, k, g)
	}
	return g
}

// round runs round r with the clients in part.
func (st *paperState) round(a paperAlg, p *algotest.Problem, r int, part []int, samples []int) {
	d, n := len(st.x), p.NumClients()
	x, g, c := st.x, st.g, st.c
	ys := make([][]float64, len(part))
	newCi := make([][]float64, len(part))
	for idx, i := range part {
		o := p.Oracle(r, i)
		ci := st.ci[i]
		y := slices.Clone(x)
		sum := make([]float64, d)
		buf := make([]float64, d)
		for k := range a.k {
			G := grad(o, y, k)
			v := make([]float64, d)
			var Gp []float64
			if a.vr {
				Gp = grad(o, st.xPrev, k)
			}
			for j := range d {
				sum[j] += G[j]
				switch {
				case a.vr && a.scaffold: // Algorithm 4
					v[j] = a.beta*(G[j]-ci[j]+c[j]) + (1-a.beta)*(g[j]+G[j]-Gp[j])
				case a.vr: // Algorithm 3
					v[j] = G[j] + (1-a.beta)*(g[j]-Gp[j])
				case a.scaffold: // Algorithms 2 and SCAFFOLD's
					v[j] = a.beta*(G[j]-ci[j]+c[j]) + (1-a.beta)*g[j]
				default: // Algorithm 1 with FedProx's term
					v[j] = a.beta*(G[j]+a.mu*(y[j]-x[j])) + (1-a.beta)*g[j]
				}
				if a.hb > 0 {
					buf[j] = a.hb*buf[j] + v[j]
					v[j] = buf[j]
				}
			}
			for j := range d {
				y[j] -= a.eta * v[j]
			}
		}
		ys[idx] = y
		if a.scaffold {
			next := make([]float64, d)
			switch {
			case a.optionI:
				next = grad(o, x, -1)
			case a.beta < 1: // SCAFFOLD-M: the mean raw gradient
				for j := range d {
					next[j] = sum[j] / float64(a.k)
				}
			default: // Option II
				for j := range d {
					next[j] = ci[j] - c[j] + (x[j]-y[j])/(float64(a.k)*a.eta)
				}
			}
			newCi[idx] = next
		}
	}
	// Server.
	var total float64
	for _, i := range part {
		total += float64(samples[i])
	}
	avgY := make([]float64, d)
	for idx, i := range part {
		w := 1 / float64(len(part))
		if a.weighted {
			w = float64(samples[i]) / total
		}
		for j := range d {
			avgY[j] += w * ys[idx][j]
		}
	}
	copy(st.xPrev, x)
	gamma := a.etaG * a.eta * float64(a.k)
	for j := range d {
		delta := x[j] - avgY[j] // the pseudo-gradient
		if a.beta < 1 {
			g[j] = delta / (a.eta * float64(a.k))
		}
		switch a.server {
		case "avg":
			if a.beta < 1 {
				x[j] -= gamma * g[j] // Cheng's gradient-scale form
			} else {
				x[j] += a.etaG * (avgY[j] - x[j]) // SCAFFOLD's model-scale form
			}
		case "hb":
			st.m[j] = a.betaS*st.m[j] + delta
			x[j] -= a.etaG * st.m[j]
		case "nesterov":
			st.m[j] = a.betaS*st.m[j] + delta
			x[j] -= a.etaG * (delta + a.betaS*st.m[j])
		default:
			dt := -delta // Delta_t = mean(x_i) - x
			st.m[j] = b1*st.m[j] + (1-b1)*dt
			switch a.server {
			case "adagrad":
				st.v[j] = st.v[j] + dt*dt
			case "yogi":
				sign := 0.0
				if s := st.v[j] - dt*dt; s > 0 {
					sign = 1
				} else if s < 0 {
					sign = -1
				}
				st.v[j] = st.v[j] - (1-b2)*dt*dt*sign
			case "adam":
				st.v[j] = b2*st.v[j] + (1-b2)*dt*dt
			}
			x[j] += a.etaG * st.m[j] / (math.Sqrt(st.v[j]) + tau)
		}
	}
	if a.scaffold {
		for idx, i := range part {
			for j := range d {
				c[j] += (newCi[idx][j] - st.ci[i][j]) / float64(n)
			}
			st.ci[i] = newCi[idx]
		}
	}
}

// config turns a paperAlg into the package's configuration.
func (a paperAlg) config(n int) (algorithms.ServerConfig, algorithms.Client, error) {
	l := algorithms.Local{Steps: a.k, LR: a.eta, Beta: a.beta, VR: a.vr, ProxMu: a.mu, HeavyBall: a.hb}
	cfg := algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: a.etaG, Local: l, Clients: n, Scaffold: a.scaffold, SampleWeighted: a.weighted}
	switch a.server {
	case "hb", "nesterov":
		cfg.Momentum, cfg.Nesterov = a.betaS, a.server == "nesterov"
	case "adam", "yogi", "adagrad":
		cfg.Optimizer, cfg.Beta1, cfg.Beta2, cfg.Tau = a.server, b1, b2, tau
	}
	if !a.scaffold {
		c, err := fedavgNew(l)
		return cfg, c, err
	}
	opt := scaffold.OptionII
	if a.optionI {
		opt = scaffold.OptionI
	}
	c, err := scaffold.New(l, opt)
	return cfg, c, err
}

var paperAlgs = []paperAlg{
	{name: "FedAvg (McMahan, n_i weights)", k: 4, eta: 0.05, etaG: 1, beta: 1, server: "avg", weighted: true},
	{name: "FedAvg (uniform, eta_g 1.3)", k: 4, eta: 0.05, etaG: 1.3, beta: 1, server: "avg"},
	{name: "FedProx", k: 4, eta: 0.05, etaG: 1, beta: 1, mu: 0.5, server: "avg", weighted: true},
	{name: "local heavy ball", k: 4, eta: 0.05, etaG: 1, beta: 1, hb: 0.8, server: "avg"},
	{name: "FedAvg-M", k: 4, eta: 0.05, etaG: 0.9, beta: 0.2, server: "avg"},
	{name: "FedAvg-M-VR", k: 4, eta: 0.05, etaG: 0.9, beta: 0.2, vr: true, server: "avg"},
	{name: "SCAFFOLD Option II", k: 4, eta: 0.05, etaG: 1, beta: 1, scaffold: true, server: "avg"},
	{name: "SCAFFOLD Option I", k: 4, eta: 0.05, etaG: 1.2, beta: 1, scaffold: true, optionI: true, server: "avg"},
	{name: "SCAFFOLD-M", k: 4, eta: 0.05, etaG: 1, beta: 0.3, scaffold: true, server: "avg"},
	{name: "SCAFFOLD-M Option I", k: 4, eta: 0.05, etaG: 1, beta: 0.3, scaffold: true, optionI: true, server: "avg"},
	{name: "SCAFFOLD-M-VR", k: 4, eta: 0.05, etaG: 0.8, beta: 0.3, vr: true, scaffold: true, server: "avg"},
	{name: "FedAvgM heavy ball", k: 4, eta: 0.05, etaG: 1, beta: 1, server: "hb", betaS: 0.9},
	{name: "FedAvgM Nesterov", k: 4, eta: 0.05, etaG: 0.5, beta: 1, server: "nesterov", betaS: 0.7, weighted: true},
	{name: "FedAdam", k: 4, eta: 0.05, etaG: 0.05, beta: 1, server: "adam"},
	{name: "FedYogi", k: 4, eta: 0.05, etaG: 0.05, beta: 1, server: "yogi"},
	{name: "FedAdagrad", k: 4, eta: 0.05, etaG: 0.05, beta: 1, server: "adagrad"},
	{name: "FedAvg-M + server Nesterov", k: 3, eta: 0.05, etaG: 0.5, beta: 0.4, server: "nesterov", betaS: 0.5},
	{name: "SCAFFOLD-M-VR + FedAdam", k: 3, eta: 0.05, etaG: 0.05, beta: 0.4, vr: true, scaffold: true, server: "adam"},
	{name: "FedProx + FedYogi, n_i weights", k: 3, eta: 0.05, etaG: 0.05, beta: 1, mu: 1, server: "yogi", weighted: true},
}

// TestPaperAlgorithms compares the package with the written-out boxes over
// 15 rounds, in the model, g, c, every c_i and the optimizer buffers.
func TestPaperAlgorithms(t *testing.T) {
	p := noisyProblem(5)
	samples := []int{3, 1, 4, 1, 5}
	x0 := []float64{0.5, -1, 2}
	const rounds = 15
	for _, a := range paperAlgs {
		for _, s := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s/S=%d", a.name, s), func(t *testing.T) {
				cfg, c, err := a.config(5)
				if err != nil {
					t.Fatal(err)
				}
				srv := newServer(t, cfg, x0...)
				ref := newPaperState(x0, 5, a)
				sched := algotest.Participation(5, s, 12, rounds)
				run(t, srv, c, p, algotest.Options{Rounds: rounds, S: s, Seed: 12, Samples: samples, After: func(srv *algorithms.Server, ups []*algorithms.Update) {
					r := srv.Round - 1
					ref.round(a, p, r, sched[r], samples)
					const tol = 1e-11
					what := fmt.Sprintf("round %d: ", r)
					nearVec(t, what+"x", srv.X, ref.x, tol)
					if a.beta < 1 {
						nearVec(t, what+"g", srv.G, ref.g, tol)
					}
					if a.vr {
						nearVec(t, what+"x_prev", srv.XPrev, ref.xPrev, tol)
					}
					if a.scaffold {
						nearVec(t, what+"c", srv.C, ref.c, tol)
						for i := range 5 {
							ci := srv.ClientControl(i)
							if ci == nil {
								ci = make([]float64, 3)
							}
							nearVec(t, what+"c_i", ci, ref.ci[i], tol)
						}
					}
					if srv.M != nil {
						nearVec(t, what+"m", srv.M, ref.m, tol)
					}
					if srv.V != nil {
						nearVec(t, what+"v", srv.V, ref.v, tol)
					}
					if t.Failed() {
						t.FailNow()
					}
				}})
				if math.Abs(srv.X[0]-x0[0]) < 1e-3 {
					t.Errorf("x moved from %v only to %v: the comparison is vacuous", x0, srv.X)
				}
			})
		}
	}
}
