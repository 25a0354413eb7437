package algorithms_test

// Known implementation pitfalls of ALGORITHMS.md section 6, each pinned by
// a test that fails under the wrong implementation.

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/fedavg"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

// TestP1ControlUpdateUsesOneOverN: "c <- c + (1/N) sum_{i in S} Delta c_i
// ... Averaging over the sampled clients (1/S) breaks the invariant
// c = mean_i c_i." Two of four clients report; c moves by the sum over 4,
// not over 2, and only the reporting clients' ledger entries change (P6).
func TestP1ControlUpdateUsesOneOverN(t *testing.T) {
	s := newServer(t, withScaffold(sgd(1, local(1, 0.1), 4)), 0, 0)
	s.Apply([]*algorithms.Update{
		{Client: 1, Delta: []float64{0, 0}, DeltaC: []float64{4, -8}, Samples: 1},
		{Client: 3, Delta: []float64{0, 0}, DeltaC: []float64{2, 2}, Samples: 1},
	})
	nearVec(t, "c", s.C, []float64{(4 + 2) / 4.0, (-8 + 2) / 4.0}, 0)
	if s.ClientControl(0) != nil || s.ClientControl(2) != nil {
		t.Errorf("clients 0 and 2 did not report but have c_i = %v, %v", s.ClientControl(0), s.ClientControl(2))
	}
	nearVec(t, "c_1", s.ClientControl(1), []float64{4, -8}, 0)
	nearVec(t, "c_3", s.ClientControl(3), []float64{2, 2}, 0)
	s.Apply([]*algorithms.Update{{Client: 1, Delta: []float64{0, 0}, DeltaC: []float64{-4, 0}, Samples: 1}})
	nearVec(t, "c_1 after a second report", s.ClientControl(1), []float64{0, -8}, 0)
	nearVec(t, "c_3 kept while not sampled", s.ClientControl(3), []float64{2, 2}, 0)
	near(t, "|c - mean c_i|", controlGap(s), 0, 0)
}

// TestP1P5P6ControlInvariant: "c = (1/N) sum_i c_i", stale entries included
// (section 2.1, P5, P6), every round of a noisy 3-parameter run with 2 of 6
// clients per round, for every SCAFFOLD form.
func TestP1P5P6ControlInvariant(t *testing.T) {
	p := noisyProblem(6)
	for _, tc := range []struct {
		name   string
		l      algorithms.Local
		option scaffold.Option
	}{
		{"SCAFFOLD Option II", local(4, 0.05), scaffold.OptionII},
		{"SCAFFOLD Option I", local(4, 0.05), scaffold.OptionI},
		{"SCAFFOLD-M", algorithms.Local{Steps: 4, LR: 0.05, Beta: 0.2}, scaffold.OptionII},
		{"SCAFFOLD-M-VR", algorithms.Local{Steps: 4, LR: 0.05, Beta: 0.2, VR: true}, scaffold.OptionII},
		{"SCAFFOLD + FedAdam", local(4, 0.05), scaffold.OptionII},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := withScaffold(sgd(1.5, tc.l, 6))
			if tc.name == "SCAFFOLD + FedAdam" {
				cfg.Optimizer, cfg.LR, cfg.Beta1, cfg.Beta2, cfg.Tau = algorithms.Adam, 0.05, 0.9, 0.99, 1e-3
			}
			s := newServer(t, cfg, 1, 1, 1)
			var prev [][]float64
			run(t, s, newScaffold(t, tc.l, tc.option), p, algotest.Options{Rounds: 60, S: 2, Seed: 3, After: func(s *algorithms.Server, ups []*algorithms.Update) {
				if gap := controlGap(s); !(gap < 1e-14) {
					t.Fatalf("round %d: |c - mean c_i| = %g", s.Round-1, gap)
				}
				reported := map[int]bool{}
				for _, u := range ups {
					reported[u.Client] = true
				}
				for i := range prev {
					if !reported[i] && !algotest.SameBits(prev[i], s.ClientControl(i)) {
						t.Fatalf("round %d: client %d did not report but c_i changed", s.Round-1, i)
					}
				}
				prev = prev[:0]
				for i := range 6 {
					prev = append(prev, slices.Clone(s.ClientControl(i)))
				}
			}})
			if s.C[0] == 0 {
				t.Error("c never moved")
			}
		})
	}
}

// controlCase is one SCAFFOLD form and how to compute its c_i^+ from the
// recorded gradient calls, independently of the client's code.
type controlCase struct {
	name   string
	l      algorithms.Local
	option scaffold.Option
	// next returns c_i^+ from the broadcast, c_i, y and the oracle calls.
	next func(t *testing.T, b *algorithms.Broadcast, ci, y []float64, calls []algotest.Call, l algorithms.Local) []float64
}

// meanTrajectoryGrad is SCAFFOLD-M's c_i^+: the mean raw minibatch gradient
// at the local iterates (calls at x^{r-1} of the VR form excluded).
func meanTrajectoryGrad(_ *testing.T, b *algorithms.Broadcast, _, _ []float64, calls []algotest.Call, l algorithms.Local) []float64 {
	out := make([]float64, len(b.X))
	n := 0
	for i, c := range calls {
		if l.VR && i%2 == 1 { // the VR step's second call, at x^{r-1}
			continue
		}
		n++
		for j := range out {
			out[j] += c.Grad[j]
		}
	}
	for j := range out {
		out[j] /= float64(n)
	}
	return out
}

var controlCases = []controlCase{
	{"Option II", local(3, 0.1), scaffold.OptionII,
		// c_i^+ = c_i - c + (x - y_i)/(K*eta)
		func(_ *testing.T, b *algorithms.Broadcast, ci, y []float64, _ []algotest.Call, l algorithms.Local) []float64 {
			out := make([]float64, len(y))
			for j := range out {
				out[j] = ci[j] - b.C[j] + (b.X[j]-y[j])/(float64(l.Steps)*l.LR)
			}
			return out
		}},
	{"Option I", local(3, 0.1), scaffold.OptionI,
		// c_i^+ = the full local gradient at x^r
		func(t *testing.T, b *algorithms.Broadcast, _, _ []float64, calls []algotest.Call, _ algorithms.Local) []float64 {
			t.Helper()
			last := calls[len(calls)-1]
			if last.K != -1 || !algotest.SameBits(last.X, b.X) {
				t.Fatalf("Option I's last call is Grad(%v, %d), want FullGrad(x^r)", last.X, last.K)
			}
			return last.Grad
		}},
	{"SCAFFOLD-M", algorithms.Local{Steps: 3, LR: 0.1, Beta: 0.4}, scaffold.OptionII, meanTrajectoryGrad},
	{"SCAFFOLD-M-VR", algorithms.Local{Steps: 3, LR: 0.1, Beta: 0.4, VR: true}, scaffold.OptionII, meanTrajectoryGrad},
}

// TestP3DeltaCBeforeOverwrite: "Compute Delta c_i before overwriting c_i.
// Otherwise Delta c = 0 and c never moves ... send Delta c_i, not the full
// c_i." With c_i != 0 the client must return c_i^+ - c_i, and after Apply
// the ledger holds c_i^+ and c has moved by (c_i^+ - c_i)/N.
func TestP3DeltaCBeforeOverwrite(t *testing.T) {
	for _, tc := range controlCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &algotest.Recorder{Federation: noisyProblem(3)}
			s := newServer(t, withScaffold(sgd(1, tc.l, 3)), 1, -1, 0.5)
			ci := []float64{0.7, -0.4, 2}
			s.CI[1] = slices.Clone(ci)
			copy(s.C, []float64{0.7 / 3, -0.4 / 3, 2.0 / 3})
			if tc.l.Momentum() {
				copy(s.G, []float64{0.1, 0.2, 0.3})
			}
			if tc.l.VR {
				copy(s.XPrev, []float64{1.5, -1, 0})
			}
			b := s.Broadcast()
			c0 := slices.Clone(s.C)
			u := &algorithms.Update{Client: 1, Delta: make([]float64, 3), DeltaC: make([]float64, 3), Samples: 1}
			newScaffold(t, tc.l, tc.option).Update(rec.Oracle(0, 1), b, s.ClientControl(1), u, algorithms.NewWorkspace(3))
			y := make([]float64, 3)
			for j := range y {
				y[j] = b.X[j] + u.Delta[j]
			}
			next := tc.next(t, b, ci, y, rec.Calls, tc.l)
			for j := range next {
				near(t, "delta c", u.DeltaC[j], next[j]-ci[j], 1e-12)
				if math.Abs(u.DeltaC[j]) < 1e-3 {
					t.Errorf("delta c[%d] = %g: the instance should move c_i", j, u.DeltaC[j])
				}
			}
			s.Apply([]*algorithms.Update{u})
			nearVec(t, "c_i after Apply", s.ClientControl(1), next, 1e-12)
			for j := range c0 {
				near(t, "c after Apply", s.C[j], c0[j]+(next[j]-ci[j])/3, 1e-12)
			}
		})
	}
}

// TestP4CorrectionSign: "Correction sign is grad - c_i + c." At x = u the
// gradient is 0, so one step with c_i = 1, c = 3 moves by -eta*beta*(c - c_i)
// = -2*eta*beta; the wrong sign +h_i (Fed-BioMed #734) would move by
// -4*eta*beta, a missing correction by 0.
func TestP4CorrectionSign(t *testing.T) {
	for _, l := range []algorithms.Local{
		local(1, 0.1),
		{Steps: 1, LR: 0.1, Beta: 0.5},
		{Steps: 1, LR: 0.1, Beta: 0.5, VR: true},
	} {
		for _, option := range []scaffold.Option{scaffold.OptionII, scaffold.OptionI} {
			b := &algorithms.Broadcast{X: []float64{0}, XPrev: []float64{0}, G: []float64{0}, C: []float64{3}}
			u := &algorithms.Update{Delta: make([]float64, 1), DeltaC: make([]float64, 1)}
			newScaffold(t, l, option).Update(algotest.Scalar(1, 0), b, []float64{1}, u, algorithms.NewWorkspace(1))
			near(t, fmt.Sprintf("delta (beta %v, VR %v, option %d)", l.Beta, l.VR, option), u.Delta[0], -2*0.1*l.Beta, 1e-16)
		}
	}
}

// TestP8SampleWeights: "McMahan's FedAvg uses n_k/m_t over the *selected*
// clients only"; "Cheng et al., SCAFFOLD and Reddi's FedOpt use uniform
// 1/|S|." Two of four clients report with n = 1 and 3.
func TestP8SampleWeights(t *testing.T) {
	const eta, k = 0.1, 2
	for _, tc := range []struct {
		name     string
		weighted bool
		w1, w3   float64
	}{
		{"samples", true, 0.25, 0.75},
		{"uniform", false, 0.5, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := algorithms.Local{Steps: k, LR: eta, Beta: 0.5}
			cfg := sgd(1, l, 4)
			cfg.SampleWeighted = tc.weighted
			s := newServer(t, cfg, 1, 1)
			d1, d3 := []float64{-0.4, 0.2}, []float64{0.8, -1.2}
			s.Apply([]*algorithms.Update{
				{Client: 1, Delta: d1, Samples: 1},
				{Client: 3, Delta: d3, Samples: 3},
			})
			for j := range d1 {
				avg := tc.w1*d1[j] + tc.w3*d3[j]
				near(t, "x", s.X[j], 1+avg, 1e-15)
				near(t, "g", s.G[j], -avg/(eta*k), 1e-14)
			}
		})
	}
}

// TestEmptyRound: "With no update the model stays as it is and only the
// round advances" (Server.Apply): no state changes, for every optimizer and
// every kind of server state.
func TestEmptyRound(t *testing.T) {
	vr := algorithms.Local{Steps: 2, LR: 0.1, Beta: 0.5, VR: true}
	for _, cfg := range []algorithms.ServerConfig{
		sgd(1, local(2, 0.1), 3),
		{Optimizer: algorithms.SGD, LR: 1, Momentum: 0.9, Nesterov: true, Local: vr, Clients: 3, Scaffold: true},
		{Optimizer: algorithms.Adam, LR: 0.1, Beta1: 0.9, Beta2: 0.99, Tau: 1e-3, Local: vr, Clients: 3},
		{Optimizer: algorithms.Yogi, LR: 0.1, Beta1: 0.9, Beta2: 0.99, Tau: 1e-3, Local: local(2, 0.1), Clients: 3, Scaffold: true},
	} {
		t.Run(cfg.Optimizer, func(t *testing.T) {
			s := newServer(t, cfg, 0.5, -0.5)
			run(t, s, newScaffoldOrFedAvg(t, cfg), noisyProblem2(3), algotest.Options{Rounds: 3})
			before := stateOf(s)
			for r, ups := range [][]*algorithms.Update{nil, {}} {
				s.Apply(ups)
				if s.Round != 4+r {
					t.Errorf("round = %d, want %d", s.Round, 4+r)
				}
				if after := stateOf(s); !slices.EqualFunc(after, before, algotest.SameBits) {
					t.Errorf("empty round changed the state from %v to %v", before, after)
				}
			}
		})
	}
}

func newScaffoldOrFedAvg(t *testing.T, cfg algorithms.ServerConfig) algorithms.Client {
	t.Helper()
	if cfg.Scaffold {
		return newScaffold(t, cfg.Local, scaffold.OptionII)
	}
	return newFedAvg(t, cfg.Local)
}

// noisyProblem2 is a 2-parameter noisy problem over n scalar-pair clients.
func noisyProblem2(n int) *algotest.Problem {
	p := &algotest.Problem{Sigma: 0.2, Seed: 5}
	for i := range n {
		p.Clients = append(p.Clients, algotest.Centred([][]float64{{1 + float64(i), 0.3}, {0.3, 2}}, []float64{float64(i), -1}))
	}
	return p
}

// stateOf lists every piece of server state.
func stateOf(s *algorithms.Server) [][]float64 {
	st := [][]float64{slices.Clone(s.X), slices.Clone(s.XPrev), slices.Clone(s.G), slices.Clone(s.C), slices.Clone(s.M), slices.Clone(s.V)}
	for _, ci := range s.CI {
		st = append(st, slices.Clone(ci))
	}
	return st
}

// TestP11WorkspaceCarriesNoState: "Re-create [the local optimizer] each
// round, so no optimizer state carries across rounds" (P11). A Workspace
// filled with NaN before every update, as if another task had left
// garbage in it, must give the same bits as a fresh one, for every
// client-side option, local heavy ball included.
func TestP11WorkspaceCarriesNoState(t *testing.T) {
	p := noisyProblem(4)
	for _, tc := range []struct {
		name     string
		l        algorithms.Local
		scaffold bool
		option   scaffold.Option
	}{
		{"FedAvg", local(3, 0.05), false, 0},
		{"FedProx", algorithms.Local{Steps: 3, LR: 0.05, Beta: 1, ProxMu: 0.5}, false, 0},
		{"local heavy ball", algorithms.Local{Steps: 3, LR: 0.05, Beta: 1, HeavyBall: 0.9}, false, 0},
		{"FedAvg-M", algorithms.Local{Steps: 3, LR: 0.05, Beta: 0.3}, false, 0},
		{"FedAvg-M-VR", algorithms.Local{Steps: 3, LR: 0.05, Beta: 0.3, VR: true}, false, 0},
		{"SCAFFOLD", local(3, 0.05), true, scaffold.OptionII},
		{"SCAFFOLD Option I", local(3, 0.05), true, scaffold.OptionI},
		{"SCAFFOLD-M", algorithms.Local{Steps: 3, LR: 0.05, Beta: 0.3}, true, scaffold.OptionII},
		{"SCAFFOLD-M-VR", algorithms.Local{Steps: 3, LR: 0.05, Beta: 0.3, VR: true}, true, scaffold.OptionII},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sgd(1, tc.l, 4)
			cfg.Scaffold = tc.scaffold
			var c algorithms.Client = newFedAvg(t, tc.l)
			if tc.scaffold {
				c = newScaffold(t, tc.l, tc.option)
			}
			x0 := []float64{1, 2, 3}
			opt := algotest.Options{Rounds: 8, S: 2, Seed: 6}
			want := run(t, newServer(t, cfg, x0...), freshWorkspace{c}, p, opt)
			got := run(t, newServer(t, cfg, x0...), dirtyWorkspace{c}, p, opt)
			sameHistory(t, "with a dirty workspace", got, want)
		})
	}
}

type freshWorkspace struct{ algorithms.Client }

func (f freshWorkspace) Update(o algorithms.Oracle, b *algorithms.Broadcast, ci []float64, out *algorithms.Update, _ *algorithms.Workspace) {
	f.Client.Update(o, b, ci, out, algorithms.NewWorkspace(len(b.X)))
}

type dirtyWorkspace struct{ algorithms.Client }

func (d dirtyWorkspace) Update(o algorithms.Oracle, b *algorithms.Broadcast, ci []float64, out *algorithms.Update, ws *algorithms.Workspace) {
	for _, v := range [][]float64{ws.Y, ws.Grad, ws.GradPrev, ws.Buf, ws.Sum, ws.Corr, out.Delta, out.DeltaC} {
		copy(v, nans(len(v)))
	}
	out.Loss = math.NaN()
	d.Client.Update(o, b, ci, out, ws)
}

// TestP12GradientScale: "g^r must be on the gradient scale:
// (x^r - avg x_i^{r,K})/(eta*K)", over the clients that reported; and
// section 1.4: "A client can rebuild x^{r-1} = x^r + gamma*g^r", gamma =
// eta_g*eta*K, which the server's x^{r-1} must match.
func TestP12GradientScale(t *testing.T) {
	const eta, k, etaG = 0.07, 3, 0.6
	l := algorithms.Local{Steps: k, LR: eta, Beta: 0.25, VR: true}
	s := newServer(t, sgd(etaG, l, 5), 0.5, 0.5, 0.5)
	if !algotest.SameBits(s.XPrev, s.X) {
		t.Errorf("x^{-1} = %v, want x^0 = %v", s.XPrev, s.X)
	}
	prev := slices.Clone(s.X)
	run(t, s, newFedAvg(t, l), noisyProblem(5), algotest.Options{Rounds: 10, S: 3, Seed: 7, After: func(s *algorithms.Server, ups []*algorithms.Update) {
		for j := range prev {
			var avgY float64
			for _, u := range ups {
				avgY += (prev[j] + u.Delta[j]) / float64(len(ups))
			}
			near(t, "g", s.G[j], (prev[j]-avgY)/(eta*k), 1e-13)
			near(t, "x^{r-1}", s.XPrev[j], prev[j], 0)
			near(t, "x^r + gamma*g^r", s.X[j]+etaG*eta*k*s.G[j], s.XPrev[j], 1e-14)
		}
		copy(prev, s.X)
	}})
}

// TestP16VRSameMinibatch: "The two gradients grad F(x_i; xi) and
// grad F(x^{r-1}; xi) must use the same samples": every VR step evaluates
// the oracle at y and at x^{r-1} with the same k, in order k = 0..K-1.
func TestP16VRSameMinibatch(t *testing.T) {
	for _, c := range []algorithms.Client{
		newFedAvg(t, algorithms.Local{Steps: 4, LR: 0.1, Beta: 0.5, VR: true}),
		newScaffold(t, algorithms.Local{Steps: 4, LR: 0.1, Beta: 0.5, VR: true}, scaffold.OptionII),
	} {
		rec := &algotest.Recorder{Federation: noisyProblem(1)}
		b := &algorithms.Broadcast{X: []float64{1, 1, 1}, XPrev: []float64{2, 0, -1}, G: []float64{0.1, 0.1, 0.1}, C: make([]float64, 3)}
		u := &algorithms.Update{Delta: make([]float64, 3), DeltaC: make([]float64, 3)}
		c.Update(rec.Oracle(0, 0), b, nil, u, algorithms.NewWorkspace(3))
		if len(rec.Calls) != 8 {
			t.Fatalf("%T: %d oracle calls, want 2*K = 8", c, len(rec.Calls))
		}
		for k := range 4 {
			at, prev := rec.Calls[2*k], rec.Calls[2*k+1]
			if at.K != k || prev.K != k || !algotest.SameBits(prev.X, b.XPrev) {
				t.Errorf("%T: step %d calls Grad(%v, %d), Grad(%v, %d); want Grad(y, %d), Grad(x_prev, %d)", c, k, at.X, at.K, prev.X, prev.K, k, k)
			}
		}
	}
}

// TestLossIsMeanOverSteps: Update.Loss is "mean minibatch loss over the
// local steps", the losses at y_0 .. y_{K-1}.
func TestLossIsMeanOverSteps(t *testing.T) {
	rec := &algotest.Recorder{Federation: noisyProblem(1)}
	q := noisyProblem(1).Clients[0]
	b := &algorithms.Broadcast{X: []float64{1, -2, 0.5}}
	u := &algorithms.Update{Delta: make([]float64, 3)}
	(&fedavg.Client{Local: local(5, 0.05)}).Update(rec.Oracle(0, 0), b, nil, u, algorithms.NewWorkspace(3))
	var want float64
	for _, c := range rec.Calls {
		want += q.Loss(c.X) / 5
	}
	near(t, "loss", u.Loss, want, 1e-14)
	if !algotest.SameBits(rec.Calls[0].X, b.X) {
		t.Errorf("first step at %v, want x^r = %v", rec.Calls[0].X, b.X)
	}
}
