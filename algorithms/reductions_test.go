package algorithms_test

// Oracle O2 of ALGORITHMS.md section 8: every algorithm reduces to a
// simpler one at the parameter values the paper names, bit for bit where
// the reduction is exact and to ~1e-12 where rounding differs.

import (
	"math"
	"slices"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

// TestO2FedAvgK1IsGradientDescent: "FedAvg with K = 1, full participation,
// full gradients, uniform weights is GD on f: x^{r+1} = x^r - gamma*grad
// f(x^r)", gamma = eta_g*eta*K, with the fixed point x* = -0.5 on the
// scalar instance.
func TestO2FedAvgK1IsGradientDescent(t *testing.T) {
	p := twoClients()
	for _, etaG := range []float64{1, 0.5} {
		l := local(1, 0.1)
		s := newServer(t, sgd(etaG, l, 2), 2)
		hist := run(t, s, newFedAvg(t, l), p, algotest.Options{Rounds: 400})
		x, g := []float64{2}, []float64{0}
		for r, got := range hist {
			p.Grad(x, g)
			x[0] -= etaG * 0.1 * g[0]
			if r < 50 {
				near(t, "x", got[0], x[0], 1e-14)
			}
		}
		near(t, "fixed point", hist[len(hist)-1][0], -0.5, 1e-13)
	}
}

// poisoned hands its client a copy of the broadcast whose g^r and x^{r-1}
// are NaN: a client that reads them returns NaN.
type poisoned struct{ algorithms.Client }

func (p poisoned) Update(o algorithms.Oracle, b *algorithms.Broadcast, ci []float64, out *algorithms.Update, ws *algorithms.Workspace) {
	bb := *b
	bb.G, bb.XPrev = nans(len(b.X)), nans(len(b.X))
	p.Client.Update(o, &bb, ci, out, ws)
}

// TestO2FedAvgMBetaOneIsFedAvg: "FedAvg-M with beta = 1 equals FedAvg". The
// momentum term (1-beta)*g^r must vanish exactly, so a client with beta = 1
// gives the same bits whatever g^r (and, for the VR form, x^{r-1}) holds,
// and the server keeps no g.
func TestO2FedAvgMBetaOneIsFedAvg(t *testing.T) {
	p := noisyProblem(5)
	x0 := []float64{1, -1, 0.5}
	opt := algotest.Options{Rounds: 15, S: 3, Seed: 2}
	for _, l := range []algorithms.Local{
		{Steps: 4, LR: 0.05, Beta: 1},
		{Steps: 4, LR: 0.05, Beta: 1, VR: true},
	} {
		want := run(t, newServer(t, sgd(0.8, local(4, 0.05), 5), x0...), newFedAvg(t, local(4, 0.05)), p, opt)
		s := newServer(t, sgd(0.8, local(4, 0.05), 5), x0...)
		if s.G != nil || s.XPrev != nil {
			t.Errorf("server with beta = 1 keeps g = %v, x_prev = %v; want neither", s.G, s.XPrev)
		}
		got := run(t, s, poisoned{newFedAvg(t, l)}, p, opt)
		sameHistory(t, "FedAvg-M beta = 1 with g^r = NaN", got, want)
	}
}

// TestO2FedAvgMAveragingServer: "FedAvg-M with gamma = eta*K gives
// x^{r+1} == mean_i x_i^{r,K}", whatever beta.
func TestO2FedAvgMAveragingServer(t *testing.T) {
	p := noisyProblem(4)
	l := algorithms.Local{Steps: 3, LR: 0.1, Beta: 0.3}
	s := newServer(t, sgd(1, l, 4), 0, 0, 0)
	prev := slices.Clone(s.X)
	run(t, s, newFedAvg(t, l), p, algotest.Options{Rounds: 10, After: func(s *algorithms.Server, ups []*algorithms.Update) {
		for j := range prev {
			var mean float64
			for _, u := range ups {
				mean += (prev[j] + u.Delta[j]) / float64(len(ups))
			}
			near(t, "x^{r+1}", s.X[j], mean, 1e-14)
		}
		copy(prev, s.X)
	}})
}

// TestO2FedAvgMFirstRounds: "FedAvg-M, K = 1, scalar f(x) = 0.5*x^2,
// x^0 = 1, g^0 = 0, beta = 0.5, gamma = 0.5: g^1 = 0.5, x^1 = 0.75,
// g^2 = 0.625, x^2 = 0.4375. The heavy-ball form gives the same:
// x^2 = x^1 - gamma*beta*x^1 + (1-beta)*(x^1 - x^0)." With gamma = eta_g*eta*K
// this pins the scale of g (P12: g is on the gradient scale) and the EMA
// without bias correction (P13: the first step moves only beta of GD's).
func TestO2FedAvgMFirstRounds(t *testing.T) {
	const eta, beta, gamma = 0.1, 0.5, 0.5
	p := algotest.ScalarProblem([]float64{1}, []float64{0})
	l := algorithms.Local{Steps: 1, LR: eta, Beta: beta}
	s := newServer(t, sgd(gamma/eta, l, 1), 1)
	var g []float64
	hist := run(t, s, newFedAvg(t, l), p, algotest.Options{Rounds: 2, After: func(s *algorithms.Server, _ []*algorithms.Update) {
		g = append(g, s.G[0])
	}})
	near(t, "g^1", g[0], 0.5, 1e-15)
	near(t, "x^1", hist[0][0], 0.75, 1e-15)
	near(t, "g^2", g[1], 0.625, 1e-15)
	near(t, "x^2", hist[1][0], 0.4375, 1e-15)
	x0, x1 := 1.0, hist[0][0]
	near(t, "x^2 (heavy-ball form)", hist[1][0], x1-gamma*beta*x1+(1-beta)*(x1-x0), 1e-15)
}

// TestO2FedAvgMGradientEMA: "FedAvg-M identity for any stochastic run:
// g^{r+1} - (1-beta)*g^r == beta * mean_{i,k} grad F(x_i^{r,k}; xi_i^{r,k})"
// (section 1.2), over the clients that reported (1/(eta*|S_r|*K) under
// partial participation). The raw gradients are logged by a Recorder.
func TestO2FedAvgMGradientEMA(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    int
		etaG float64
	}{{"full participation", 0, 0.7}, {"3 of 5", 3, 1.3}} {
		t.Run(tc.name, func(t *testing.T) {
			const beta, k = 0.3, 4
			rec := &algotest.Recorder{Federation: noisyProblem(5)}
			l := algorithms.Local{Steps: k, LR: 0.05, Beta: beta}
			s := newServer(t, sgd(tc.etaG, l, 5), 1, 2, -1)
			gPrev := slices.Clone(s.G)
			run(t, s, newFedAvg(t, l), rec, algotest.Options{Rounds: 12, S: tc.s, Seed: 4, After: func(s *algorithms.Server, ups []*algorithms.Update) {
				calls := rec.Round(s.Round - 1)
				if len(calls) != len(ups)*k {
					t.Fatalf("round %d: %d gradient calls, want %d", s.Round-1, len(calls), len(ups)*k)
				}
				for j := range s.G {
					var mean float64
					for _, c := range calls {
						mean += c.Grad[j]
					}
					mean /= float64(len(calls))
					near(t, "g^{r+1} - (1-beta) g^r", s.G[j]-(1-beta)*gPrev[j], beta*mean, 1e-12)
				}
				copy(gPrev, s.G)
			}})
		})
	}
}

// TestO2ScaffoldZeroControlsIsFedAvg: "If c_i is always set to 0, then
// SCAFFOLD becomes equivalent to FedAvg" (SCAFFOLD section 2.1; O2). The
// ledger and c are reset to zero before every round; the models must match
// FedAvg's bit for bit, with noise and partial participation.
func TestO2ScaffoldZeroControlsIsFedAvg(t *testing.T) {
	p := noisyProblem(5)
	x0 := []float64{0.5, 0.5, -2}
	l := local(5, 0.04)
	opt := algotest.Options{Rounds: 20, S: 2, Seed: 9}
	want := run(t, newServer(t, sgd(1.2, l, 5), x0...), newFedAvg(t, l), p, opt)
	for _, option := range []scaffold.Option{scaffold.OptionII, scaffold.OptionI} {
		opt := opt
		opt.Before = func(s *algorithms.Server) {
			clear(s.C)
			clear(s.CI)
		}
		got := run(t, newServer(t, withScaffold(sgd(1.2, l, 5)), x0...), newScaffold(t, l, option), p, opt)
		sameHistory(t, "SCAFFOLD with c_i = c = 0", got, want)
	}
}

// TestO2ScaffoldMBetaOneIsScaffold: "SCAFFOLD-M with beta = 1 is SCAFFOLD
// (Option II) with eta_g = gamma/(eta*K)" (section 1.3). At beta = 1 both
// are one code path, so the test takes beta = 1 - 2^-40: the momentum path
// (g^r mixed in, c_i^+ = mean raw gradient) must then agree with Option II
// to O((1-beta)*R), here ~1e-12, over many rounds, noise and partial
// participation, in the model and in the whole ledger.
func TestO2ScaffoldMBetaOneIsScaffold(t *testing.T) {
	p := noisyProblem(5)
	x0 := []float64{2, 0, -1}
	opt := algotest.Options{Rounds: 25, S: 3, Seed: 5}
	const k, eta, gamma = 5, 0.04, 0.3
	for _, vr := range []bool{false, true} {
		lII := local(k, eta)
		sII := newServer(t, withScaffold(sgd(gamma/(eta*k), lII, 5)), x0...)
		want := run(t, sII, newScaffold(t, lII, scaffold.OptionII), p, opt)

		lM := algorithms.Local{Steps: k, LR: eta, Beta: 1 - 0x1p-40, VR: vr}
		sM := newServer(t, withScaffold(sgd(gamma/(eta*k), lM, 5)), x0...)
		got := run(t, sM, newScaffold(t, lM, scaffold.OptionII), p, opt)
		for r := range got {
			nearVec(t, "x", got[r], want[r], 1e-11)
		}
		nearVec(t, "c", sM.C, sII.C, 1e-11)
		for i := range 5 {
			nearVec(t, "c_i", sM.ClientControl(i), sII.ClientControl(i), 1e-11)
		}
	}
}

// TestO2VRBetaOneIsPlain: "FedAvg-M-VR and SCAFFOLD-M-VR with beta = 1 are
// FedAvg and SCAFFOLD" (sections 1.4, 1.5). ServerConfig.Validate rejects
// that configuration, so the client side is checked directly: with beta = 1
// the VR flag changes no bit, whatever x^{r-1} and g^r hold.
func TestO2VRBetaOneIsPlain(t *testing.T) {
	p := noisyProblem(1)
	o := p.Oracle(3, 0)
	b := &algorithms.Broadcast{Round: 3, X: []float64{1, -1, 2}, XPrev: nans(3), G: nans(3), C: []float64{0.3, -0.2, 0.1}}
	ci := []float64{-0.5, 0.25, 1}
	plain := algorithms.Local{Steps: 6, LR: 0.05, Beta: 1}
	vr := plain
	vr.VR = true

	t.Run("Local.Run", func(t *testing.T) {
		ws1, ws2 := algorithms.NewWorkspace(3), algorithms.NewWorkspace(3)
		corr := []float64{0.1, 0.2, -0.3}
		s1, s2 := make([]float64, 3), make([]float64, 3)
		l1 := plain.Run(o, b, corr, s1, ws1)
		l2 := vr.Run(o, b, corr, s2, ws2)
		if math.Float64bits(l1) != math.Float64bits(l2) || !algotest.SameBits(ws1.Y, ws2.Y) || !algotest.SameBits(s1, s2) {
			t.Errorf("VR with beta = 1: y = %v, loss %v, sum %v; want bit for bit y = %v, loss %v, sum %v", ws2.Y, l2, s2, ws1.Y, l1, s1)
		}
	})
	t.Run("FedAvg-M-VR", func(t *testing.T) {
		u1 := &algorithms.Update{Delta: make([]float64, 3)}
		u2 := &algorithms.Update{Delta: make([]float64, 3)}
		newFedAvg(t, plain).Update(o, b, nil, u1, algorithms.NewWorkspace(3))
		newFedAvg(t, vr).Update(o, b, nil, u2, algorithms.NewWorkspace(3))
		if !algotest.SameBits(u1.Delta, u2.Delta) || u1.Loss != u2.Loss {
			t.Errorf("delta = %v, want bit for bit %v", u2.Delta, u1.Delta)
		}
	})
	t.Run("SCAFFOLD-M-VR", func(t *testing.T) {
		u1 := &algorithms.Update{Delta: make([]float64, 3), DeltaC: make([]float64, 3)}
		u2 := &algorithms.Update{Delta: make([]float64, 3), DeltaC: make([]float64, 3)}
		newScaffold(t, plain, scaffold.OptionII).Update(o, b, ci, u1, algorithms.NewWorkspace(3))
		newScaffold(t, vr, scaffold.OptionII).Update(o, b, ci, u2, algorithms.NewWorkspace(3))
		if !algotest.SameBits(u1.Delta, u2.Delta) || !algotest.SameBits(u1.DeltaC, u2.DeltaC) {
			t.Errorf("delta, delta c = %v, %v; want bit for bit %v, %v", u2.Delta, u2.DeltaC, u1.Delta, u1.DeltaC)
		}
	})
}

// TestO2ScaffoldK1IsGradientDescent: "SCAFFOLD with K = 1, Option II, any
// c_i with c = mean c_i, full participation is GD with step eta_g*eta.
// Numerically: N = 4, a = (1, 3, 2, 0.5), u = (1, -1, 2, 0),
// c_i = (0.3, -1.2, 5.0, 2.0), eta = 0.05, eta_g = 1.5, x^0 = 2. The first
// iterates are 1.79375, 1.61263671875, 1.45359661865..., identical to GD."
// The ledger is seeded through the exported server state.
func TestO2ScaffoldK1IsGradientDescent(t *testing.T) {
	const eta, etaG = 0.05, 1.5
	p := fourClients()
	l := local(1, eta)
	s := newServer(t, withScaffold(sgd(etaG, l, 4)), 2)
	var c float64
	for i, ci := range []float64{0.3, -1.2, 5.0, 2.0} {
		s.CI[i] = []float64{ci}
		c += ci / 4
	}
	s.C[0] = c
	hist := run(t, s, newScaffold(t, l, scaffold.OptionII), p, algotest.Options{Rounds: 30, After: func(s *algorithms.Server, _ []*algorithms.Update) {
		near(t, "|c - mean c_i|", controlGap(s), 0, 1e-14)
	}})
	near(t, "x^1", hist[0][0], 1.79375, 1e-15)
	near(t, "x^2", hist[1][0], 1.61263671875, 1e-15)
	near(t, "x^3", hist[2][0], 1.45359661865, 1e-11)
	x, g := []float64{2}, []float64{0}
	for r := range hist {
		p.Grad(x, g)
		x[0] -= etaG * eta * g[0]
		near(t, "x (GD)", hist[r][0], x[0], 1e-14)
	}
}

// TestO2FedProxMuZeroIsFedAvg: "FedProx with mu = 0 is FedAvg" (section 5:
// "mu = 0 recovers FedAvg, given the same local solver"): bit for bit
// against FedAvg, and mu > 0 is not FedAvg, so the comparison has teeth.
func TestO2FedProxMuZeroIsFedAvg(t *testing.T) {
	p := noisyProblem(4)
	x0 := []float64{3, -3, 1}
	opt := algotest.Options{Rounds: 10, S: 2, Seed: 1}
	l := local(8, 0.05)
	want := run(t, newServer(t, sgd(1, l, 4), x0...), newFedAvg(t, l), p, opt)
	prox := l
	prox.ProxMu = 0
	got := run(t, newServer(t, sgd(1, prox, 4), x0...), newFedAvg(t, prox), p, opt)
	sameHistory(t, "FedProx mu = 0", got, want)
	prox.ProxMu = 1e-3
	got = run(t, newServer(t, sgd(1, prox, 4), x0...), newFedAvg(t, prox), p, opt)
	if algotest.SameBits(got[len(got)-1], want[len(want)-1]) {
		t.Error("FedProx mu = 1e-3 gives FedAvg's bits: the proximal term is not applied")
	}
}

// TestO2FedAvgMServerMomentumZeroIsFedAvg: "FedAvgM (Hsu, heavy ball) with
// beta_s = 0 and eta_g = 1 is FedAvg." beta_s = 0 leaves the momentum off;
// the heavy-ball and Nesterov code paths are checked at the smallest
// positive beta_s, where m = beta_s*m + Delta = Delta exactly.
func TestO2FedAvgMServerMomentumZeroIsFedAvg(t *testing.T) {
	p := noisyProblem(4)
	x0 := []float64{-1, 0.5, 2}
	opt := algotest.Options{Rounds: 12, S: 3, Seed: 8}
	l := local(3, 0.1)
	want := run(t, newServer(t, sgd(1, l, 4), x0...), newFedAvg(t, l), p, opt)
	// FedAvg is plain averaging: x^{r+1} = mean_i y_i.
	check := newServer(t, sgd(1, l, 4), x0...)
	prev := slices.Clone(x0)
	run(t, check, newFedAvg(t, l), p, algotest.Options{Rounds: 12, S: 3, Seed: 8, After: func(s *algorithms.Server, ups []*algorithms.Update) {
		for j := range prev {
			var mean float64
			for _, u := range ups {
				mean += (prev[j] + u.Delta[j]) / float64(len(ups))
			}
			near(t, "FedAvg x^{r+1}", s.X[j], mean, 1e-14)
		}
		copy(prev, s.X)
	}})
	for _, nesterov := range []bool{false, true} {
		cfg := sgd(1, l, 4)
		cfg.Momentum, cfg.Nesterov = math.SmallestNonzeroFloat64, nesterov
		s := newServer(t, cfg, x0...)
		if s.M == nil {
			t.Fatal("server momentum > 0 keeps no buffer")
		}
		sameHistory(t, "FedAvgM beta_s -> 0", run(t, s, newFedAvg(t, l), p, opt), want)
	}
}

// TestO2FedAdamLargeTauIsEMAMomentum: "FedAdam with tau much larger than
// sqrt(v_t) is about FedAvgM-EMA with lr eta/tau" (O2; section 4). FedAvgM
// with the EMA buffer m = b1*m + (1-b1)*Delta is Hsu's heavy ball with
// beta_s = b1 and eta_g scaled by (1-b1). Fed the same deltas, the step
// ratio is tau/(sqrt(v_t)+tau). Because v starts at tau^2 (not 0),
// sqrt(v_t) << tau only once beta2^t*tau^2 has decayed: the first step is
// 1/(1+sqrt(beta2)) of the EMA step, later steps agree to 1e-7.
func TestO2FedAdamLargeTauIsEMAMomentum(t *testing.T) {
	const eta, b1, b2, tau = 0.5, 0.9, 0.5, 1e8
	adam := newServer(t, algorithms.ServerConfig{Optimizer: algorithms.Adam, LR: eta, Beta1: b1, Beta2: b2, Tau: tau, Local: local(1, 1), Clients: 1}, 0)
	hbCfg := sgd(eta*(1-b1)/tau, local(1, 1), 1)
	hbCfg.Momentum = b1
	hb := newServer(t, hbCfg, 0)
	for r := range 120 {
		d := 0.5 + 0.3*math.Sin(float64(r)) // client delta, always > 0
		xa, xh := adam.X[0], hb.X[0]
		adam.Apply([]*algorithms.Update{{Delta: []float64{d}, Samples: 1}})
		hb.Apply([]*algorithms.Update{{Delta: []float64{d}, Samples: 1}})
		ratio := (adam.X[0] - xa) / (hb.X[0] - xh)
		switch {
		case r == 0:
			nearRel(t, "first-step ratio", ratio, 1/(1+math.Sqrt(b2+(1-b2)*d*d/(tau*tau))), 1e-9)
		case r >= 80:
			near(t, "step ratio", ratio, 1, 1e-7)
		}
	}
}
