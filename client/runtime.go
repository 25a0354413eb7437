// Package client runs the local updates of virtual clients.
//
// A Runtime knows the federated dataset, the model and the algorithm's
// client side. Update runs virtual client i's local work for one round. Its
// result depends on (seed, round, i, the broadcast, c_i) alone: the minibatch
// order comes from the stream rng.Stream(seed, rng.Batch, round, i), so any
// process or goroutine can host any virtual client. The simulator calls
// Update in-process; a client process calls the same function for the tasks a
// coordinator sends it.
//
// # Concurrency
//
// A Runtime is read-only after construction and safe for concurrent use. A
// Worker holds one goroutine's buffers: take one per goroutine.
package client

import (
	"fmt"
	"math/rand/v2"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/model"
	"github.com/fedmo/fedmo/rng"
)

// Runtime runs local updates.
type Runtime struct {
	Seed   uint64
	Data   *data.Federated
	Model  model.Model
	Client algorithms.Client
	Steps  int // K
	Batch  int // B; 0 = the whole shard
	// FullGrad says whether the algorithm asks for full local gradients
	// (SCAFFOLD Option I), which sizes the workers' buffers for whole shards.
	FullGrad bool

	maxRows int
}

// New checks the pieces and returns a runtime.
func New(seed uint64, fd *data.Federated, m model.Model, c algorithms.Client, steps, batch int, fullGrad bool) (*Runtime, error) {
	if steps < 1 || batch < 0 {
		return nil, fmt.Errorf("client: steps = %d, batch = %d: want steps >= 1 and batch >= 0", steps, batch)
	}
	r := &Runtime{Seed: seed, Data: fd, Model: m, Client: c, Steps: steps, Batch: batch, FullGrad: fullGrad}
	largest := 0
	hosted := 0
	for i, p := range fd.Parts {
		if p != nil && len(p) == 0 {
			return nil, fmt.Errorf("client: virtual client %d has no training examples", i)
		}
		if p != nil {
			hosted++
		}
		largest = max(largest, len(p))
	}
	if hosted == 0 {
		return nil, fmt.Errorf("client: no client has training examples")
	}
	r.maxRows = min(batch, largest)
	if batch == 0 || fullGrad {
		r.maxRows = largest
	}
	return r, nil
}

// NumClients is the number of virtual clients.
func (r *Runtime) NumClients() int { return len(r.Data.Parts) }

// Hosts reports whether this runtime has client id's data. A nil part
// means the client's data lives elsewhere (a process serving one real
// client has only its own).
func (r *Runtime) Hosts(id int) bool {
	return id >= 0 && id < len(r.Data.Parts) && r.Data.Parts[id] != nil
}

// Samples returns client i's number of training examples.
func (r *Runtime) Samples(i int) int { return len(r.Data.Parts[i]) }

// Worker is one goroutine's buffers for local updates.
type Worker struct {
	rt      *Runtime
	ws      *algorithms.Workspace
	scratch model.Scratch
	x       []float64 // the gathered minibatch, row-major
	y       []int
	batches [][]int // the round's K minibatches (index lists into the shard)
	perm    []int
	part    []int
	cached  int // which batch x and y hold; -1 for none, -2 for the whole shard
	pcg     *rand.PCG
	src     *rand.Rand
}

// NewWorker returns buffers for one goroutine.
func (r *Runtime) NewWorker() *Worker {
	n := r.Model.NumParams()
	w := &Worker{
		rt: r, ws: algorithms.NewWorkspace(n), scratch: r.Model.NewScratch(r.maxRows),
		x: make([]float64, r.maxRows*r.Data.Train.D), y: make([]int, r.maxRows),
		batches: make([][]int, r.Steps), pcg: rand.NewPCG(0, 0),
	}
	w.src = rand.New(w.pcg)
	for k := range w.batches {
		w.batches[k] = make([]int, 0, r.maxRows)
	}
	return w
}

// Update runs virtual client id's local update from b with control variate
// ci (nil means zero) into out, whose Delta (and, for SCAFFOLD, DeltaC)
// buffers the caller owns.
func (w *Worker) Update(id int, b *algorithms.Broadcast, ci []float64, out *algorithms.Update) {
	r := w.rt
	w.schedule(id, b.Round)
	out.Client = id
	out.Samples = len(w.part)
	r.Client.Update(w, b, ci, out, w.ws)
}

// schedule draws the round's minibatches: shuffle the shard, take
// consecutive batches of B, reshuffle when fewer than B remain. A shard of at
// most B examples (or B = 0) gives the whole shard at every step.
func (w *Worker) schedule(id, round int) {
	r := w.rt
	w.part = r.Data.Parts[id]
	w.cached = -1
	n, bsz := len(w.part), r.Batch
	if bsz == 0 || n <= bsz {
		for k := range w.batches {
			w.batches[k] = append(w.batches[k][:0], w.part...)
		}
		return
	}
	w.pcg.Seed(rng.Key(r.Seed, rng.Batch, round, id)) // the stream rng.Stream(seed, rng.Batch, round, id)
	src := w.src
	if cap(w.perm) < n {
		w.perm = make([]int, n)
	}
	perm := w.perm[:n]
	pos := n // force a shuffle first
	for k := range w.batches {
		if pos+bsz > n {
			copy(perm, w.part)
			src.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			pos = 0
		}
		w.batches[k] = append(w.batches[k][:0], perm[pos:pos+bsz]...)
		pos += bsz
	}
}

// gather copies the rows idx of the training set into the worker's batch.
func (w *Worker) gather(idx []int, tag int) ([]float64, []int) {
	tr := w.rt.Data.Train
	d := tr.D
	x, y := w.x[:len(idx)*d], w.y[:len(idx)]
	if w.cached != tag {
		for j, i := range idx {
			copy(x[j*d:(j+1)*d], tr.X[i*d:(i+1)*d])
			y[j] = tr.Y[i]
		}
		w.cached = tag
	}
	return x, y
}

// Grad implements algorithms.Oracle: the gradient on local step k's minibatch.
func (w *Worker) Grad(params []float64, k int, grad []float64) float64 {
	x, y := w.gather(w.batches[k], k)
	return w.scratch.LossGrad(params, x, y, grad)
}

// FullGrad implements algorithms.Oracle: the gradient on the whole shard.
func (w *Worker) FullGrad(params []float64, grad []float64) float64 {
	x, y := w.gather(w.part, -2)
	return w.scratch.LossGrad(params, x, y, grad)
}
