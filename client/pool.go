package client

import (
	"context"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/fedmo/fedmo/algorithms"
)

// Pool runs local updates on a bounded set of goroutines, each with its own
// Worker. Updates land in per-task buffers, so the result does not depend on
// the number of workers or on which finishes first. The simulator and the
// client process both run their tasks on a Pool.
type Pool struct {
	rt       *Runtime
	workers  chan *Worker
	size     int
	scaffold bool
	outs     []*algorithms.Update
}

// NewPool returns a pool of size workers (0 = GOMAXPROCS). scaffold says
// whether updates carry a delta c_i.
func (r *Runtime) NewPool(size int, scaffold bool) *Pool {
	if size <= 0 {
		size = runtime.GOMAXPROCS(0)
	}
	p := &Pool{rt: r, workers: make(chan *Worker, size), size: size, scaffold: scaffold}
	for range size {
		p.workers <- r.NewWorker()
	}
	return p
}

// Size is the number of workers.
func (p *Pool) Size() int { return p.size }

// Run runs the local updates of the clients ids against b, client ids[i]
// with control variate cis[i] (cis may be nil: all zero). The returned
// updates are in the order of ids; their buffers are reused by the next
// call, so one goroutine at a time may call Run.
func (p *Pool) Run(ctx context.Context, b *algorithms.Broadcast, ids []int, cis [][]float64) ([]*algorithms.Update, error) {
	for len(p.outs) < len(ids) {
		p.outs = append(p.outs, p.NewUpdate(len(b.X)))
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.size)
	for i, id := range ids {
		var ci []float64
		if cis != nil {
			ci = cis[i]
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p.Do(id, b, ci, p.outs[i])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return p.outs[:len(ids)], nil
}

// NewUpdate returns an update buffer for a model of n parameters (with a
// delta c_i if the algorithm is SCAFFOLD).
func (p *Pool) NewUpdate(n int) *algorithms.Update {
	u := &algorithms.Update{Delta: make([]float64, n)}
	if p.scaffold {
		u.DeltaC = make([]float64, n)
	}
	return u
}

// Do runs client id's local update against b with control variate ci (nil:
// zero) into out, on the first free worker. Any number of goroutines may
// call Do at once; at most Size updates run at a time.
func (p *Pool) Do(id int, b *algorithms.Broadcast, ci []float64, out *algorithms.Update) {
	w := <-p.workers
	defer func() { p.workers <- w }()
	w.Update(id, b, ci, out)
}
