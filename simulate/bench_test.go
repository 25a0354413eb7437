package simulate

import (
	"context"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
)

// demoWorkload is the PyTorch peer's workload (shared/peers): MNIST, MLP
// 784-200-10, N = 100, S = 10, K = 10, B = 32, lr 0.05, Dirichlet 0.1.
const demoWorkload = `
rounds: 1000000
clients: 100
participation: 10
data: {name: mnist, partition: dirichlet, alpha: 0.1}
model: {name: mlp, hidden: [200], init: glorot}
local: {steps: 10, batch: 32, lr: 0.05}
eval: {every: 0}
`

// BenchmarkRound is one whole round of the demo workload (sample, 10 local
// updates of 10 steps, aggregate), without evaluation, on GOMAXPROCS
// workers. rounds/s is what the PyTorch peer's rounds_per_s measures.
func BenchmarkRound(b *testing.B) {
	for _, algo := range []struct{ name, sets string }{
		{"fedavg", "algorithm.name=fedavg"},
		{"scaffold-m", "algorithm.name=scaffold"},
	} {
		b.Run(algo.name, func(b *testing.B) {
			sets := []string{algo.sets}
			if algo.name == "scaffold-m" {
				sets = append(sets, "algorithm.momentum.beta=0.1")
			}
			cfg, err := config.Parse([]byte(demoWorkload), sets)
			if err != nil {
				b.Fatal(err)
			}
			setup, err := experiment.Build(cfg, experiment.Options{GoModCache: goModCache(b)})
			if err != nil {
				b.Fatal(err)
			}
			rt, err := setup.Runtime()
			if err != nil {
				b.Fatal(err)
			}
			server, err := algorithms.NewServer(setup.Server, setup.InitialModel())
			if err != nil {
				b.Fatal(err)
			}
			eng, err := engine.New(setup.EngineConfig(), server, NewExecutor(rt, 0, setup.Server.Scaffold), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := eng.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rounds/s")
		})
	}
}
