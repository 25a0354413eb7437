package simulate

import (
	"context"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/client"
	"github.com/fedmo/fedmo/engine"
)

// Executor runs local updates in-process on a bounded pool of goroutines.
// Each goroutine has its own client.Worker; updates land in per-task
// buffers, so the result does not depend on the number of workers or on
// which finishes first.
type Executor struct {
	rt       *client.Runtime
	pool     chan *client.Worker
	workers  int
	scaffold bool
	outs     []*algorithms.Update
}

// NewExecutor returns an executor with the given number of workers
// (0 = GOMAXPROCS). scaffold says whether updates carry a delta c_i.
func NewExecutor(rt *client.Runtime, workers int, scaffold bool) *Executor {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	e := &Executor{rt: rt, pool: make(chan *client.Worker, workers), workers: workers, scaffold: scaffold}
	for range workers {
		e.pool <- rt.NewWorker()
	}
	return e
}

// Execute implements engine.Executor.
func (e *Executor) Execute(ctx context.Context, b *algorithms.Broadcast, tasks []engine.Task) ([]*algorithms.Update, error) {
	n := len(b.X)
	for len(e.outs) < len(tasks) {
		u := &algorithms.Update{Delta: make([]float64, n)}
		if e.scaffold {
			u.DeltaC = make([]float64, n)
		}
		e.outs = append(e.outs, u)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(e.workers)
	for i, t := range tasks {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			w := <-e.pool
			defer func() { e.pool <- w }()
			w.Update(t.Client, b, t.CI, e.outs[i])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return e.outs[:len(tasks)], nil
}
