package algorithms_test

import (
	"math"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/fedavg"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

// The scalar instances of ALGORITHMS.md section 8.
var (
	// O1: N = 2, a = (1, 3), u = (1, -1), x* = -0.5.
	twoA, twoU = []float64{1, 3}, []float64{1, -1}
	// O2 (SCAFFOLD K = 1) and O3 (partial participation): N = 4, x* = 4/13.
	fourA, fourU = []float64{1, 3, 2, 0.5}, []float64{1, -1, 2, 0}
)

func twoClients() *algotest.Problem  { return algotest.ScalarProblem(twoA, twoU) }
func fourClients() *algotest.Problem { return algotest.ScalarProblem(fourA, fourU) }

// noisyProblem is a 3-parameter least-squares problem over n clients with
// noisy minibatch gradients (sigma = 0.3).
func noisyProblem(n int) *algotest.Problem {
	p := &algotest.Problem{Sigma: 0.3, Seed: 11}
	for i := range n {
		f := float64(i)
		p.Clients = append(p.Clients, algotest.LeastSquares(
			[][]float64{{1 + 0.1*f, 0.5, -0.2}, {0.3, 1 - 0.05*f, 0.4}, {-0.1 * f, 0.2, 1.2}, {0.5, 0.5, 0.5}},
			[]float64{f - 1, 1 - 0.5*f, 0.3 * f, 2 - f}))
	}
	return p
}

// local is the local update with K steps of size eta and no momentum.
func local(k int, eta float64) algorithms.Local {
	return algorithms.Local{Steps: k, LR: eta, Beta: 1}
}

// sgd is the server config with optimizer sgd, eta_g = lr and no momentum.
func sgd(lr float64, l algorithms.Local, clients int) algorithms.ServerConfig {
	return algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: lr, Local: l, Clients: clients}
}

func withScaffold(c algorithms.ServerConfig) algorithms.ServerConfig {
	c.Scaffold = true
	return c
}

func newServer(t *testing.T, cfg algorithms.ServerConfig, x0 ...float64) *algorithms.Server {
	t.Helper()
	s, err := algorithms.NewServer(cfg, x0)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return s
}

func newFedAvg(t *testing.T, l algorithms.Local) *fedavg.Client {
	t.Helper()
	c, err := fedavg.New(l)
	if err != nil {
		t.Fatalf("fedavg.New: %v", err)
	}
	return c
}

func newScaffold(t *testing.T, l algorithms.Local, opt scaffold.Option) *scaffold.Client {
	t.Helper()
	c, err := scaffold.New(l, opt)
	if err != nil {
		t.Fatalf("scaffold.New: %v", err)
	}
	return c
}

func run(t *testing.T, s *algorithms.Server, c algorithms.Client, f algotest.Federation, opt algotest.Options) [][]float64 {
	t.Helper()
	h, err := algotest.Run(s, c, f, opt)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// near reports an error unless |got - want| <= tol.
func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Errorf("%s = %.17g, want %.17g (tolerance %g, off by %.3g)", what, got, want, tol, got-want)
	}
}

// nearRel reports an error unless got is within rel of want, relatively.
func nearRel(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if !(math.Abs(got-want) <= rel*math.Abs(want)) {
		t.Errorf("%s = %.17g, want %.17g (relative tolerance %g, off by %.3g)", what, got, want, rel, (got-want)/want)
	}
}

// nearVec applies near element by element.
func nearVec(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s has %d elements, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if !(math.Abs(got[i]-want[i]) <= tol) {
			t.Errorf("%s[%d] = %.17g, want %.17g (tolerance %g, off by %.3g)", what, i, got[i], want[i], tol, got[i]-want[i])
		}
	}
}

// sameHistory reports an error unless two runs have bit-identical models
// after every round.
func sameHistory(t *testing.T, what string, got, want [][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rounds, want %d", what, len(got), len(want))
	}
	for r := range got {
		if !algotest.SameBits(got[r], want[r]) {
			t.Fatalf("%s: round %d: x = %v, want bit for bit %v", what, r, got[r], want[r])
		}
	}
}

// controlGap returns max_j |c_j - (1/N) sum_i c_i,j| over the server's
// ledger (nil c_i = 0): SCAFFOLD's invariant c = mean_i c_i.
func controlGap(s *algorithms.Server) float64 {
	n := s.Config.Clients
	var gap float64
	for j := range s.C {
		var mean float64
		for i := range n {
			if ci := s.ClientControl(i); ci != nil {
				mean += ci[j]
			}
		}
		gap = math.Max(gap, math.Abs(s.C[j]-mean/float64(n)))
	}
	return gap
}

func nans(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

func fedavgNew(l algorithms.Local) (algorithms.Client, error) {
	c, err := fedavg.New(l)
	if err != nil {
		return nil, err
	}
	return c, nil
}
