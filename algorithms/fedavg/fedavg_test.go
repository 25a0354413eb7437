package fedavg_test

import (
	"math"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/fedavg"
)

// TestUpdateIsLocalSGD: McMahan's ClientUpdate, "for each batch b:
// w <- w - eta * grad l(w; b)", K times from the global model: on
// f = 0.5*a*(x-u)^2 that is y - u = (1 - eta*a)^K (x - u).
func TestUpdateIsLocalSGD(t *testing.T) {
	for _, tc := range []struct {
		a, u, x, eta float64
		k            int
	}{
		{1, 1, 2, 0.1, 10},
		{3, -1, 2, 0.1, 10},
		{0.5, 4, -3, 0.3, 1},
		{2, 0, 1, 0.75, 7}, // 1 - eta*a < 0: oscillating steps
	} {
		c, err := fedavg.New(algorithms.Local{Steps: tc.k, LR: tc.eta, Beta: 1})
		if err != nil {
			t.Fatal(err)
		}
		u := &algorithms.Update{Delta: make([]float64, 1)}
		c.Update(algotest.Scalar(tc.a, tc.u), &algorithms.Broadcast{X: []float64{tc.x}}, nil, u, algorithms.NewWorkspace(1))
		want := tc.u + math.Pow(1-tc.eta*tc.a, float64(tc.k))*(tc.x-tc.u) - tc.x
		if math.Abs(u.Delta[0]-want) > 1e-14 {
			t.Errorf("%+v: delta = %.17g, want %.17g", tc, u.Delta[0], want)
		}
	}
}

// TestUpdateIgnoresControlVariates: "FedAvg clients keep no control
// variate: ci is ignored and out.DeltaC is left alone."
func TestUpdateIgnoresControlVariates(t *testing.T) {
	c, err := fedavg.New(algorithms.Local{Steps: 3, LR: 0.1, Beta: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	q := algotest.Noisy{Quadratic: algotest.LeastSquares([][]float64{{1, 2}, {3, -1}}, []float64{1, 0}), Sigma: 0.1, Seed: 1}
	b := &algorithms.Broadcast{X: []float64{1, 1}, G: []float64{0.5, -0.5}, C: []float64{math.NaN(), math.NaN()}}
	plain := &algorithms.Update{Delta: make([]float64, 2)}
	c.Update(q, b, nil, plain, algorithms.NewWorkspace(2))
	u := &algorithms.Update{Delta: make([]float64, 2), DeltaC: []float64{7, 7}}
	c.Update(q, b, []float64{math.NaN(), math.Inf(1)}, u, algorithms.NewWorkspace(2))
	if !algotest.SameBits(u.Delta, plain.Delta) || u.Loss != plain.Loss {
		t.Errorf("with c_i = NaN: delta %v, loss %v; want %v, %v", u.Delta, u.Loss, plain.Delta, plain.Loss)
	}
	if u.DeltaC[0] != 7 || u.DeltaC[1] != 7 {
		t.Errorf("DeltaC = %v, want it untouched", u.DeltaC)
	}
}

// TestNewValidates: New refuses a local configuration Validate refuses.
func TestNewValidates(t *testing.T) {
	if c, err := fedavg.New(algorithms.Local{Steps: 1, LR: 0.1}); err == nil {
		t.Errorf("New with beta = 0 = %v, want an error", c)
	}
	l := algorithms.Local{Steps: 2, LR: 0.1, Beta: 1, ProxMu: 0.1}
	c, err := fedavg.New(l)
	if err != nil || c.Local != l {
		t.Errorf("New(%+v) = %+v, %v", l, c, err)
	}
}
