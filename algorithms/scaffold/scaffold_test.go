package scaffold_test

import (
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

func problem() algotest.Noisy {
	return algotest.Noisy{Quadratic: algotest.LeastSquares([][]float64{{1, 2}, {3, -1}, {0.5, 0.5}}, []float64{1, 0, -2}), Sigma: 0.2, Seed: 9}
}

func newClient(t *testing.T, l algorithms.Local, opt scaffold.Option) *scaffold.Client {
	t.Helper()
	c, err := scaffold.New(l, opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNilControlIsZero: "ci (nil means zero)" — bit for bit, for every
// form.
func TestNilControlIsZero(t *testing.T) {
	for _, l := range []algorithms.Local{
		{Steps: 3, LR: 0.1, Beta: 1},
		{Steps: 3, LR: 0.1, Beta: 0.5},
		{Steps: 3, LR: 0.1, Beta: 0.5, VR: true},
	} {
		for _, opt := range []scaffold.Option{scaffold.OptionII, scaffold.OptionI} {
			c := newClient(t, l, opt)
			b := &algorithms.Broadcast{X: []float64{1, -1}, XPrev: []float64{0.5, 0}, G: []float64{0.2, 0.1}, C: []float64{0.3, -0.6}}
			u1 := &algorithms.Update{Delta: make([]float64, 2), DeltaC: make([]float64, 2)}
			u2 := &algorithms.Update{Delta: make([]float64, 2), DeltaC: make([]float64, 2)}
			c.Update(problem(), b, nil, u1, algorithms.NewWorkspace(2))
			c.Update(problem(), b, []float64{0, 0}, u2, algorithms.NewWorkspace(2))
			if !algotest.SameBits(u1.Delta, u2.Delta) || !algotest.SameBits(u1.DeltaC, u2.DeltaC) {
				t.Errorf("%+v option %d: nil c_i gives %v, %v; zero c_i %v, %v", l, opt, u1.Delta, u1.DeltaC, u2.Delta, u2.DeltaC)
			}
		}
	}
}

// TestOptionIIIsMeanGradient: "with beta = 1, SCAFFOLD's Option II
// c_i^+ = c_i - c + (x - y_i)/(K*eta) equals exactly
// (1/K) sum_k grad F(x_i^{r,k}; xi_i^{r,k})" (ALGORITHMS.md 1.3), the rule
// SCAFFOLD-M uses for every beta. Both are checked against the recorded
// raw gradients.
func TestOptionIIIsMeanGradient(t *testing.T) {
	for _, beta := range []float64{1, 0.3} {
		c := newClient(t, algorithms.Local{Steps: 6, LR: 0.05, Beta: beta}, scaffold.OptionII)
		rec := &algotest.Recorder{Federation: federation{problem()}}
		ci := []float64{0.4, -1}
		b := &algorithms.Broadcast{X: []float64{1, -1}, G: []float64{0.2, 0.1}, C: []float64{-0.3, 0.6}}
		u := &algorithms.Update{Delta: make([]float64, 2), DeltaC: make([]float64, 2)}
		c.Update(rec.Oracle(0, 0), b, ci, u, algorithms.NewWorkspace(2))
		if len(rec.Calls) != 6 {
			t.Fatalf("%d oracle calls, want K = 6", len(rec.Calls))
		}
		for j := range ci {
			var mean float64
			for _, call := range rec.Calls {
				mean += call.Grad[j] / 6
			}
			if got := ci[j] + u.DeltaC[j]; !(abs(got-mean) < 1e-12) {
				t.Errorf("beta %v: c_i^+[%d] = %.17g, want the mean gradient %.17g", beta, j, got, mean)
			}
		}
	}
}

// TestCorrectedSteps: "y_i <- y_i - eta_l * (g_i(y_i) - c_i + c)",
// two steps by hand on f = 0.5*2*(x-1)^2 with c_i = 0.5, c = -0.25.
func TestCorrectedSteps(t *testing.T) {
	c := newClient(t, algorithms.Local{Steps: 2, LR: 0.1, Beta: 1}, scaffold.OptionII)
	u := &algorithms.Update{Delta: make([]float64, 1), DeltaC: make([]float64, 1)}
	c.Update(algotest.Scalar(2, 1), &algorithms.Broadcast{X: []float64{3}, C: []float64{-0.25}}, []float64{0.5}, u, algorithms.NewWorkspace(1))
	y := 3.0
	for range 2 {
		y -= 0.1 * (2*(y-1) - 0.5 - 0.25)
	}
	if !(abs(u.Delta[0]-(y-3)) < 1e-15) {
		t.Errorf("delta = %.17g, want %.17g", u.Delta[0], y-3)
	}
	// Option II: c_i^+ - c_i = -c + (x - y)/(K*eta).
	if want := 0.25 + (3-y)/0.2; !(abs(u.DeltaC[0]-want) < 1e-14) {
		t.Errorf("delta c = %.17g, want %.17g", u.DeltaC[0], want)
	}
}

type federation struct{ o algorithms.Oracle }

func (f federation) NumClients() int                   { return 1 }
func (f federation) Oracle(_, _ int) algorithms.Oracle { return f.o }

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
