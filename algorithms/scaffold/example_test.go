package scaffold_test

import (
	"fmt"
	"math"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

// SCAFFOLD on the two heterogeneous quadratics of ALGORITHMS.md (O1, O3),
// f_1 = 0.5*(x-1)^2 and f_2 = 1.5*(x+1)^2, where FedAvg with K = 10 stalls
// at -0.19742...: the control variates remove the client drift and the run
// reaches x* = -0.5. (Its first round, with every control variate at 0,
// is FedAvg's.) Each c_i ends at client i's gradient at x*,
// a_i*(x* - u_i) = -1.5 and 1.5, and c at their mean, 0.
func Example() {
	p := algotest.ScalarProblem([]float64{1, 3}, []float64{1, -1})
	l := algorithms.Local{Steps: 10, LR: 0.1, Beta: 1}
	server, err := algorithms.NewServer(algorithms.ServerConfig{
		Optimizer: algorithms.SGD,
		LR:        1,
		Local:     l,
		Clients:   2,
		Scaffold:  true,
	}, []float64{2})
	if err != nil {
		panic(err)
	}
	client, err := scaffold.New(l, scaffold.OptionII)
	if err != nil {
		panic(err)
	}
	hist, err := algotest.Run(server, client, p, algotest.Options{Rounds: 100})
	if err != nil {
		panic(err)
	}
	fmt.Printf("x^1 = %.6f, x^100 = %.6f\n", hist[0][0], hist[99][0])
	fmt.Printf("c_1 = %.6f, c_2 = %.6f, |c| < 1e-12: %v\n", server.ClientControl(0)[0], server.ClientControl(1)[0], math.Abs(server.C[0]) < 1e-12)
	// Output:
	// x^1 = 0.216711, x^100 = -0.500000
	// c_1 = -1.500000, c_2 = 1.500000, |c| < 1e-12: true
}
