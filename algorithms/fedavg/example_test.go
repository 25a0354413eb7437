package fedavg_test

import (
	"fmt"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/fedavg"
)

// FedAvg on the two heterogeneous quadratics of ALGORITHMS.md (O1, O3):
// f_1 = 0.5*(x-1)^2 and f_2 = 1.5*(x+1)^2, whose average has its minimum at
// x* = -0.5. With K = 10 local steps the clients drift towards their own
// minima and FedAvg settles at the biased x_FA = -0.19742...; with client
// momentum beta = 0.5 (FedAvg-M) the bias shrinks to -0.33366...
//
// The first FedAvg round averages the clients' K-step results from x^0 = 2,
// y_1 = 1 + 0.9^10 and y_2 = -1 + 3*0.7^10: x^1 = 0.216711.
func Example() {
	p := algotest.ScalarProblem([]float64{1, 3}, []float64{1, -1})
	for _, beta := range []float64{1, 0.5} {
		l := algorithms.Local{Steps: 10, LR: 0.1, Beta: beta}
		server, err := algorithms.NewServer(algorithms.ServerConfig{
			Optimizer: algorithms.SGD,
			LR:        1, // eta_g = 1: plain model averaging
			Local:     l,
			Clients:   2,
		}, []float64{2})
		if err != nil {
			panic(err)
		}
		client, err := fedavg.New(l)
		if err != nil {
			panic(err)
		}
		hist, err := algotest.Run(server, client, p, algotest.Options{Rounds: 500})
		if err != nil {
			panic(err)
		}
		fmt.Printf("beta %.1f: x^1 = %.6f, x^2 = %.6f, x^500 = %.6f\n", beta, hist[0][0], hist[1][0], hist[499][0])
	}
	// Output:
	// beta 1.0: x^1 = 0.216711, x^2 = -0.119374, x^500 = -0.197422
	// beta 0.5: x^1 = 0.594680, x^2 = -0.434424, x^500 = -0.333665
}
