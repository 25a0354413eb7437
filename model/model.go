// Package model holds fedmo's objectives: differentiable models over one flat
// []float64 parameter vector.
//
// A Model describes the parameter layout and initialisation. The work is done
// by a Scratch, which owns every buffer a forward and backward pass needs, so
// that a training step allocates nothing. A Scratch is for one goroutine at a
// time; take one per worker.
//
// Gradients are written into caller-owned buffers. Losses are the mean
// cross-entropy over the rows given, plus the model's L2 term if it has one.
package model

import "math/rand/v2"

// Model is an objective over a flat parameter vector.
type Model interface {
	// NumParams is the length of the parameter vector.
	NumParams() int
	// Init writes initial parameters, drawing from r.
	Init(params []float64, r *rand.Rand)
	// NewScratch returns the buffers for batches of up to maxRows rows.
	NewScratch(maxRows int) Scratch
}

// Scratch runs passes of one model. It is not safe for concurrent use.
type Scratch interface {
	// LossGrad writes the gradient of the mean loss over the len(y) rows of x
	// (row-major) into grad, which has NumParams elements, and returns that
	// loss. params is not modified.
	LossGrad(params, x []float64, y []int, grad []float64) float64
	// Eval returns the summed loss and the number of correct predictions over
	// the len(y) rows of x. It handles any number of rows.
	Eval(params, x []float64, y []int) (lossSum float64, correct int)
}
