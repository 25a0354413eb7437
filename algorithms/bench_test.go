package algorithms

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/floats"
)

// BenchmarkAggregate is the server's end of a round: 100 client deltas of
// 1M parameters added in client order, then the server step.
func BenchmarkAggregate(b *testing.B) {
	const n, clients = 1 << 20, 100
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
	}{
		{"fedavg", ServerConfig{Optimizer: SGD, LR: 1}},
		{"scaffold-m+nesterov", ServerConfig{Optimizer: SGD, LR: 1, Momentum: 0.9, Nesterov: true, Scaffold: true,
			Local: Local{Steps: 10, LR: 0.05, Beta: 0.1}}},
		{"adam", ServerConfig{Optimizer: Adam, LR: 0.01, Beta1: 0.9, Beta2: 0.99, Tau: 1e-3}},
	} {
		b.Run(fmt.Sprintf("%s/clients=%d/params=%d", tc.name, clients, n), func(b *testing.B) {
			cfg := tc.cfg
			cfg.Clients = clients
			if cfg.Local.Steps == 0 {
				cfg.Local = Local{Steps: 10, LR: 0.05, Beta: 1}
			}
			s, err := NewServer(cfg, make([]float64, n))
			if err != nil {
				b.Fatal(err)
			}
			ups := make([]*Update, clients)
			for i := range ups {
				u := &Update{Client: i, Delta: make([]float64, n), Samples: 1}
				for j := range u.Delta {
					u.Delta[j] = float64((i*j)%7) * 1e-3
				}
				if cfg.Scaffold {
					u.DeltaC = u.Delta
				}
				ups[i] = u
			}
			s.Apply(ups) // allocates the c_i ledger: steady state from here on
			b.SetBytes(int64(clients * n * 8))
			b.ReportAllocs()
			for b.Loop() {
				s.Apply(ups)
			}
		})
	}
}

// BenchmarkReadBaseline reads the same 100 x 1M float64s once (gonum's
// asm sum): the memory-bandwidth floor that BenchmarkAggregate is compared
// with, in the same run.
func BenchmarkReadBaseline(b *testing.B) {
	const n, clients = 1 << 20, 100
	deltas := make([][]float64, clients)
	for i := range deltas {
		deltas[i] = make([]float64, n)
	}
	b.SetBytes(int64(clients * n * 8))
	var sink float64
	for b.Loop() {
		for _, d := range deltas {
			sink += floats.Sum(d)
		}
	}
	_ = sink
}
