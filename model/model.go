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
//
// # Models
//
// [MLP] is a multilayer perceptron with ReLU hidden layers and a softmax
// cross-entropy output; [Softmax] is multinomial logistic regression with an
// optional L2 penalty on its weights. Both start from an [InitScheme].
//
// # Layout
//
// An MLP with layer widths n_0 (features), n_1, ..., n_L (classes) stores,
// for each layer l = 1..L in order, its weights W_l as an n_{l-1} x n_l
// row-major matrix, then its biases b_l (n_l):
//
//	[W_1 (n_0*n_1) | b_1 (n_1) | W_2 (n_1*n_2) | b_2 (n_2) | ... ]
//
// Row j of W_l holds the weights leaving input unit j, and the forward pass
// is h_l = relu(h_{l-1} W_l + b_l), without the relu on the last layer. A
// 784-200-10 MLP has 784*200 + 200 + 200*10 + 10 = 159,010 parameters.
//
// A Softmax over d features and k classes stores W as a k x d row-major
// matrix (row c holds class c's weights; logits are W x + b), then b (k).
//
// # Determinism
//
// A result depends only on the inputs: the same parameters and rows give
// bit-identical losses, gradients and evaluations on every call, with any
// GOMAXPROCS (no pass starts a goroutine), and with whichever kernel runs.
// All matrix products are sums in a fixed order of fused multiply-adds,
// which round once, so the AVX-512 and AVX2 assembly on amd64 and the Go
// code elsewhere (or with the build tag noasm) agree bit for bit. Eval's sum
// also does not depend on the scratch's row capacity.
//
// # Speed
//
// The first layer of an MLP skips zero inputs, as are about 81% of MNIST
// pixels: its forward pass adds only the weight rows of nonzero inputs and
// its weight gradient only their products, and it never computes the input
// gradient. ReLU zeros are skipped the same way in later layers. A batch
// with more than 90% nonzero inputs takes a dense path instead. Passes
// allocate nothing once a Scratch exists.
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
