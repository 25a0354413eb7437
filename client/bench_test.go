package client_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/experiment"
)

// BenchmarkLocalUpdate is one client's local update on the demo workload
// (MNIST, MLP 784-200-10, K = 10 steps of B = 32, lr 0.05): minibatch
// schedule, gathering, K gradients and K parameter updates. ns/step is the
// cost of one local step; allocs/op must be 0.
func BenchmarkLocalUpdate(b *testing.B) {
	for _, tc := range []struct{ name, sets string }{
		{"fedavg", "algorithm.momentum.beta=1"},
		{"scaffold-m", "algorithm.name=scaffold,algorithm.momentum.beta=0.1"},
		{"fedavg-m-vr", "algorithm.momentum.beta=0.1,algorithm.momentum.vr=true"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			out, err := exec.Command("go", "env", "GOMODCACHE").Output()
			if err != nil {
				b.Fatal(err)
			}
			cfg, err := config.Parse([]byte("{}"), strings.Split(tc.sets, ","))
			if err != nil {
				b.Fatal(err)
			}
			setup, err := experiment.Build(cfg, experiment.Options{GoModCache: strings.TrimSpace(string(out))})
			if err != nil {
				b.Fatal(err)
			}
			rt, err := setup.Runtime()
			if err != nil {
				b.Fatal(err)
			}
			s, err := algorithms.NewServer(setup.Server, setup.InitialModel())
			if err != nil {
				b.Fatal(err)
			}
			n := len(s.X)
			u := &algorithms.Update{Delta: make([]float64, n), DeltaC: make([]float64, n)}
			w := rt.NewWorker()
			bc := s.Broadcast()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bc.Round = i / 100
				w.Update(i%100, bc, nil, u)
				i++
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*cfg.Local.Steps), "ns/step")
		})
	}
}
