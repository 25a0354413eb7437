package simulate

import (
	"context"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/client"
	"github.com/fedmo/fedmo/engine"
)

// Executor is the simulator's engine.Executor: every local update is a
// function call on a client.Pool in this process.
type Executor struct {
	pool *client.Pool
}

// NewExecutor returns an executor with the given number of workers
// (0 = GOMAXPROCS). scaffold says whether updates carry a delta c_i.
func NewExecutor(rt *client.Runtime, workers int, scaffold bool) *Executor {
	return &Executor{pool: rt.NewPool(workers, scaffold)}
}

// Execute implements engine.Executor.
func (e *Executor) Execute(ctx context.Context, b *algorithms.Broadcast, tasks []engine.Task) ([]*algorithms.Update, error) {
	ids := make([]int, len(tasks))
	cis := make([][]float64, len(tasks))
	for i, t := range tasks {
		ids[i], cis[i] = t.Client, t.CI
	}
	return e.pool.Run(ctx, b, ids, cis)
}
