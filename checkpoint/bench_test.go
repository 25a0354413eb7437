package checkpoint

import (
	"testing"
	"time"

	"github.com/fedmo/fedmo/algorithms"
)

// BenchmarkSave is one checkpoint of the demo model (159,010 parameters,
// 100 clients): FedAvg (the model alone) and SCAFFOLD-M with server
// momentum (model, g, c, m and the 10 control variates that changed).
// ns/op is the whole checkpoint, Save and Flush: what a round waited when
// the checkpoint was written synchronously. wait-ns/op is Save alone with
// no write in flight: what a round waits now, when its previous checkpoint
// was written while it ran.
func BenchmarkSave(b *testing.B) {
	b.Run("fedavg", func(b *testing.B) {
		save(b, algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: 1, Clients: 100,
			Local: algorithms.Local{Steps: 10, LR: 0.05, Beta: 1}})
	})
	b.Run("scaffold-m", func(b *testing.B) {
		save(b, algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: 1, Momentum: 0.9, Scaffold: true, Clients: 100,
			Local: algorithms.Local{Steps: 10, LR: 0.05, Beta: 0.1}})
	})
}

func save(b *testing.B, cfg algorithms.ServerConfig) {
	const n = 159010
	s, err := algorithms.NewServer(cfg, make([]float64, n))
	if err != nil {
		b.Fatal(err)
	}
	var ups []*algorithms.Update
	var ids []int
	for i := range 10 {
		d := make([]float64, n)
		ups = append(ups, &algorithms.Update{Client: i * 10, Delta: d, DeltaC: d, Samples: 1})
		ids = append(ids, i*10)
	}
	s.Apply(ups)
	w, err := NewWriter(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var wait time.Duration
	saves := 0
	for b.Loop() {
		start := time.Now()
		if err := w.Save("cfg", s, ids, nil); err != nil {
			b.Fatal(err)
		}
		wait += time.Since(start)
		saves++
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wait.Nanoseconds())/float64(saves), "wait-ns/op")
}
