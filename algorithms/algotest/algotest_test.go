package algotest_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/fedavg"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Errorf("%s = %.17g, want %.17g (tolerance %g, off by %g)", what, got, want, tol, got-want)
	}
}

// lsq is a 2-parameter least-squares client with 3 rows.
func lsq() *algotest.Quadratic {
	return algotest.LeastSquares([][]float64{{1, 2}, {-0.5, 1}, {3, 0.25}}, []float64{1, -2, 0.5})
}

// TestGradientMatchesFiniteDifferences checks Grad and FullGrad against
// central differences of Loss for both forms of Quadratic.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    *algotest.Quadratic
	}{
		{"least squares", lsq()},
		{"centred", algotest.Centred([][]float64{{2, 0.5}, {0.5, 1}}, []float64{1, -3})},
		{"scalar", algotest.Scalar(3, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.q.Dim()
			x := []float64{0.3, -0.7}[:n]
			g := make([]float64, n)
			gk := make([]float64, n)
			loss := tc.q.FullGrad(x, g)
			near(t, "FullGrad loss", loss, tc.q.Loss(x), 1e-15)
			if l := tc.q.Grad(x, 7, gk); l != loss || !algotest.SameBits(g, gk) {
				t.Errorf("Grad(x, 7) = %v, %v; want FullGrad's %v, %v", l, gk, loss, g)
			}
			const h = 1e-6
			for j := range n {
				xp, xm := slices.Clone(x), slices.Clone(x)
				xp[j] += h
				xm[j] -= h
				near(t, "gradient", g[j], (tc.q.Loss(xp)-tc.q.Loss(xm))/(2*h), 1e-8)
			}
		})
	}
}

// TestScalarForm checks the scalar constructor: f = 0.5*a*(x-u)^2.
func TestScalarForm(t *testing.T) {
	q := algotest.Scalar(3, -1)
	g := []float64{0}
	loss := q.FullGrad([]float64{2}, g)
	near(t, "loss", loss, 0.5*3*9, 0)
	near(t, "gradient", g[0], 9, 0)
	if h, lin := q.Hessian(), q.Linear(); h[0][0] != 3 || lin[0] != -3 {
		t.Errorf("H, h = %v, %v; want [[3]], [-3]", h, lin)
	}
}

// TestLeastSquaresMatchesCentred builds the same objective in both forms.
func TestLeastSquaresMatchesCentred(t *testing.T) {
	// A = diag(1, 2), b = (1, -4): H = diag(1, 4), centre u = (1, -2).
	a := algotest.LeastSquares([][]float64{{1, 0}, {0, 2}}, []float64{1, -4})
	c := algotest.Centred([][]float64{{1, 0}, {0, 4}}, []float64{1, -2})
	x := []float64{0.25, 3}
	ga, gc := make([]float64, 2), make([]float64, 2)
	near(t, "loss", a.FullGrad(x, ga), c.FullGrad(x, gc), 1e-14)
	for j := range ga {
		near(t, "gradient", ga[j], gc[j], 1e-14)
	}
}

// TestNoisyIsDeterministicPerStep checks the property the VR variants need:
// the noise depends only on (seed, k), not on x or on the call history.
func TestNoisyIsDeterministicPerStep(t *testing.T) {
	q := algotest.Noisy{Quadratic: lsq(), Sigma: 0.5, Seed: 42}
	x, y := []float64{1, 2}, []float64{-3, 0.5}
	g1, g2, gx, gy, z := make([]float64, 2), make([]float64, 2), make([]float64, 2), make([]float64, 2), make([]float64, 2)
	q.Grad(x, 3, g1)
	q.Grad(y, 0, g2) // an unrelated call in between
	q.Grad(x, 3, g2)
	if !algotest.SameBits(g1, g2) {
		t.Errorf("two Grad(x, 3) calls differ: %v, %v", g1, g2)
	}
	// Grad(x, k) - FullGrad(x) is the same noise at any x.
	q.Noise(3, z)
	q.FullGrad(x, gx)
	q.FullGrad(y, gy)
	q.Grad(y, 3, g2)
	for j := range z {
		near(t, "noise at x", g1[j]-gx[j], z[j], 1e-14)
		near(t, "noise at y", g2[j]-gy[j], z[j], 1e-14)
	}
	if z[0] == 0 || z[1] == 0 {
		t.Errorf("noise = %v, want nonzero", z)
	}
	// Other steps and other seeds see other noise.
	z4, zs := make([]float64, 2), make([]float64, 2)
	q.Noise(4, z4)
	algotest.Noisy{Quadratic: q.Quadratic, Sigma: 0.5, Seed: 43}.Noise(3, zs)
	if algotest.SameBits(z, z4) || algotest.SameBits(z, zs) {
		t.Errorf("noise of step 3 %v, step 4 %v, seed 43 %v: want all different", z, z4, zs)
	}
	// FullGrad stays exact.
	q.Quadratic.FullGrad(x, g1)
	q.FullGrad(x, g2)
	if !algotest.SameBits(g1, g2) {
		t.Errorf("Noisy.FullGrad = %v, want the exact %v", g2, g1)
	}
}

// TestNoiseIsStandardNormal checks the scale of the noise over many steps.
func TestNoiseIsStandardNormal(t *testing.T) {
	q := algotest.Noisy{Quadratic: algotest.Scalar(1, 0), Sigma: 2, Seed: 7}
	const n = 20000
	var sum, sq float64
	z := []float64{0}
	for k := range n {
		q.Noise(k, z)
		sum += z[0]
		sq += z[0] * z[0]
	}
	mean := sum / n
	near(t, "mean", mean, 0, 5*2/math.Sqrt(n))
	near(t, "variance", sq/n-mean*mean, 4, 0.2)
}

// TestProblemOracles checks that the noise of a Problem differs between
// rounds and clients, is reproducible, and vanishes with Sigma = 0.
func TestProblemOracles(t *testing.T) {
	p := &algotest.Problem{Clients: []*algotest.Quadratic{lsq(), lsq()}, Sigma: 1, Seed: 3}
	x := []float64{0.5, 0.5}
	grad := func(r, i int) []float64 {
		g := make([]float64, 2)
		p.Oracle(r, i).Grad(x, 0, g)
		return g
	}
	if !algotest.SameBits(grad(2, 1), grad(2, 1)) {
		t.Error("the oracle of (2, 1) is not reproducible")
	}
	if algotest.SameBits(grad(2, 1), grad(2, 0)) || algotest.SameBits(grad(2, 1), grad(3, 1)) {
		t.Error("two clients or two rounds share their noise")
	}
	p.Sigma = 0
	exact := make([]float64, 2)
	p.Clients[1].FullGrad(x, exact)
	if !algotest.SameBits(grad(2, 1), exact) {
		t.Error("Sigma = 0 does not give the exact gradient")
	}
}

// TestClosedForms checks the closed forms of oracles O1, O3 and O4 on the
// scalar instance a = (1, 3), u = (1, -1), where the oracles give
// sum a_i u_i / sum a_i = -0.5, x_FA = sum (1-M_i) u_i / sum (1-M_i) with
// M_i = (1 - eta a_i)^K, and w = sum(a_i u_i/(a_i+mu)) / sum(a_i/(a_i+mu)).
func TestClosedForms(t *testing.T) {
	p := algotest.ScalarProblem([]float64{1, 3}, []float64{1, -1})
	xs, err := p.Minimizer()
	if err != nil {
		t.Fatal(err)
	}
	near(t, "x*", xs[0], -0.5, 1e-15)

	fa, err := p.FedAvgFixedPoint(0.1, 10)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := math.Pow(0.9, 10), math.Pow(0.7, 10)
	near(t, "x_FA (scalar formula)", fa[0], ((1-m1)*1+(1-m2)*-1)/((1-m1)+(1-m2)), 1e-15)
	near(t, "x_FA (ALGORITHMS.md O3)", fa[0], -0.19742224217147314, 1e-15)
	fk1, _ := p.FedAvgFixedPoint(0.1, 1)
	near(t, "x_FA with K = 1", fk1[0], -0.5, 1e-15)

	for _, tc := range []struct{ mu, limit, tol float64 }{
		{1, -0.2, 1e-15},  // O4
		{100, -0.5, 1e-2}, // mu -> inf: x*
		{1e-6, 0, 1e-5},   // mu -> 0: mean(u_i), FedAvg with exact local solves
		{2, (1.0/3 - 3.0/5) / (1.0/3 + 3.0/5), 1e-15},
	} {
		w, err := p.FedProxFixedPoint(tc.mu)
		if err != nil {
			t.Fatal(err)
		}
		p1, p2 := 1/(1+tc.mu), 3/(3+tc.mu)
		near(t, "FedProx fixed point (scalar formula)", w[0], (p1-p2)/(p1+p2), 1e-12)
		near(t, "FedProx fixed point (limit)", w[0], tc.limit, tc.tol)
	}
}

// TestClosedFormsVector checks the vector forms against fixed-point
// iteration of their defining maps on a 2-parameter, 3-client problem.
func TestClosedFormsVector(t *testing.T) {
	p := &algotest.Problem{Clients: []*algotest.Quadratic{
		lsq(),
		algotest.Centred([][]float64{{2, 0.5}, {0.5, 1}}, []float64{1, -3}),
		algotest.LeastSquares([][]float64{{0, 1}, {1, 1}}, []float64{2, 0}),
	}}
	xs, err := p.Minimizer()
	if err != nil {
		t.Fatal(err)
	}
	g := make([]float64, 2)
	p.Grad(xs, g)
	near(t, "|grad f(x*)|", math.Hypot(g[0], g[1]), 0, 1e-13)

	const eta, k = 0.05, 7
	fa, err := p.FedAvgFixedPoint(eta, k)
	if err != nil {
		t.Fatal(err)
	}
	// One FedAvg round (K GD steps per client, then averaging) maps x_FA
	// to itself.
	next := make([]float64, 2)
	for _, q := range p.Clients {
		y := slices.Clone(fa)
		for range k {
			q.FullGrad(y, g)
			for j := range y {
				y[j] -= eta * g[j]
			}
		}
		for j := range next {
			next[j] += y[j] / 3
		}
	}
	for j := range fa {
		near(t, "FedAvg round at x_FA", next[j], fa[j], 1e-13)
	}
	if math.Abs(fa[0]-xs[0]) < 1e-3 {
		t.Errorf("x_FA = %v is x* = %v: the instance shows no drift", fa, xs)
	}

	// The exact prox points w_i = (H_i + mu I)^{-1}(h_i + mu w) average to w,
	// i.e. mean_i grad f_i(w_i) = mu*(w - mean w_i) = 0 at the fixed point.
	const mu = 0.7
	w, err := p.FedProxFixedPoint(mu)
	if err != nil {
		t.Fatal(err)
	}
	mean := make([]float64, 2)
	for _, q := range p.Clients {
		// Solve the prox problem by GD to convergence.
		y := slices.Clone(w)
		for range 20000 {
			q.FullGrad(y, g)
			for j := range y {
				y[j] -= 0.02 * (g[j] + mu*(y[j]-w[j]))
			}
		}
		for j := range mean {
			mean[j] += y[j] / 3
		}
	}
	for j := range w {
		near(t, "mean of exact prox points at w", mean[j], w[j], 1e-12)
	}
}

// TestParticipation checks the schedules Run uses.
func TestParticipation(t *testing.T) {
	full := algotest.Participation(4, 0, 1, 3)
	for r, s := range full {
		if !slices.Equal(s, []int{0, 1, 2, 3}) {
			t.Errorf("full participation, round %d: %v", r, s)
		}
	}
	if s := algotest.Participation(4, 9, 1, 1)[0]; len(s) != 4 {
		t.Errorf("S > N gives %v, want all clients", s)
	}
	const n, k, rounds = 10, 3, 2000
	a := algotest.Participation(n, k, 5, rounds)
	if !slices.EqualFunc(a, algotest.Participation(n, k, 5, rounds), slices.Equal) {
		t.Error("the schedule is not reproducible")
	}
	if slices.EqualFunc(a, algotest.Participation(n, k, 6, rounds), slices.Equal) {
		t.Error("seeds 5 and 6 give the same schedule")
	}
	count := make([]int, n)
	for r, s := range a {
		if len(s) != k || !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != k {
			t.Fatalf("round %d: %v, want %d distinct sorted ids", r, s, k)
		}
		for _, i := range s {
			if i < 0 || i >= n {
				t.Fatalf("round %d: client %d out of range", r, i)
			}
			count[i]++
		}
	}
	// Each client takes part in k/n of the rounds: 600 expected, sd ~ 20.5.
	for i, c := range count {
		if c < 500 || c > 700 {
			t.Errorf("client %d took part %d times in %d rounds, want about %d", i, c, rounds, rounds*k/n)
		}
	}
}

// TestRunIsFedAvg checks Run against FedAvg written out by hand: two
// clients, K = 2 GD steps, plain averaging, sample weights 1 and 3.
func TestRunIsFedAvg(t *testing.T) {
	p := algotest.ScalarProblem([]float64{1, 3}, []float64{1, -1})
	l := algorithms.Local{Steps: 2, LR: 0.1, Beta: 1}
	s, err := algorithms.NewServer(algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: 1, Local: l, Clients: 2, SampleWeighted: true}, []float64{2})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fedavg.New(l)
	if err != nil {
		t.Fatal(err)
	}
	var seen [][]int
	hist, err := algotest.Run(s, c, p, algotest.Options{Rounds: 3, Samples: []int{1, 3}, After: func(s *algorithms.Server, ups []*algorithms.Update) {
		var ids []int
		for _, u := range ups {
			ids = append(ids, u.Client, u.Samples)
		}
		seen = append(seen, ids)
	}})
	if err != nil {
		t.Fatal(err)
	}
	x := 2.0
	for r := range 3 {
		y1, y2 := x, x
		for range 2 {
			y1 -= 0.1 * (y1 - 1)
			y2 -= 0.1 * 3 * (y2 + 1)
		}
		x = 0.25*y1 + 0.75*y2
		near(t, "x", hist[r][0], x, 1e-15)
		if !slices.Equal(seen[r], []int{0, 1, 1, 3}) {
			t.Errorf("round %d: (client, samples) = %v, want [0 1 1 3]", r, seen[r])
		}
	}
	if s.Round != 3 {
		t.Errorf("server round = %d, want 3", s.Round)
	}
}

// badClient breaks one rule of the Client contract.
type badClient struct{ what string }

func (b badClient) Update(o algorithms.Oracle, bc *algorithms.Broadcast, ci []float64, out *algorithms.Update, ws *algorithms.Workspace) {
	switch b.what {
	case "x":
		bc.X[0] += 1
	case "ci":
		if ci != nil {
			ci[0] = 9
		}
	case "nan":
		out.Delta[0] = math.NaN()
	case "inf loss":
		out.Loss = math.Inf(1)
	}
}

// TestRunCatchesBadClients checks that Run reports a client that writes to
// the broadcast or to its control variate, or returns a non-finite update.
func TestRunCatchesBadClients(t *testing.T) {
	p := algotest.ScalarProblem([]float64{1, 3}, []float64{1, -1})
	l := algorithms.Local{Steps: 1, LR: 0.1, Beta: 1}
	for _, tc := range []struct{ what, want string }{
		{"zero samples", "0 samples"},
		{"x", "modified the broadcast x"},
		{"ci", "modified its control variate"},
		{"nan", "delta[0] = NaN"},
		{"inf loss", "loss = +Inf"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			s, err := algorithms.NewServer(algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: 1, Local: l, Clients: 2, Scaffold: true}, []float64{0})
			if err != nil {
				t.Fatal(err)
			}
			s.CI[1] = []float64{1}
			opt := algotest.Options{Rounds: 1}
			var c algorithms.Client = badClient{tc.what}
			if tc.what == "zero samples" {
				opt.Samples = []int{1, 0}
				c, _ = fedavg.New(l)
			}
			_, err = algotest.Run(s, c, p, opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
