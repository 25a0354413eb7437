package algotest

import (
	"slices"

	"github.com/fedmo/fedmo/algorithms"
)

// Call is one gradient evaluation seen by a Recorder.
type Call struct {
	Round, Client int
	K             int       // the local step; -1 for FullGrad
	X             []float64 // where the gradient was taken
	Grad          []float64 // what the oracle returned
}

// Recorder is a Federation that logs every gradient its oracles return, in
// call order, so a test can check identities over the raw minibatch
// gradients (for example FedAvg-M's g^{r+1} - (1-beta) g^r =
// beta * mean_{i,k} grad F). It is not safe for concurrent use.
type Recorder struct {
	Federation
	Calls []Call
}

// Oracle returns the wrapped oracle of (round, client), logging its calls.
func (r *Recorder) Oracle(round, client int) algorithms.Oracle {
	return recording{r: r, o: r.Federation.Oracle(round, client), round: round, client: client}
}

// Round returns the calls of one round.
func (r *Recorder) Round(round int) []Call {
	var out []Call
	for _, c := range r.Calls {
		if c.Round == round {
			out = append(out, c)
		}
	}
	return out
}

type recording struct {
	r             *Recorder
	o             algorithms.Oracle
	round, client int
}

func (o recording) Grad(x []float64, k int, g []float64) float64 {
	loss := o.o.Grad(x, k, g)
	o.r.Calls = append(o.r.Calls, Call{o.round, o.client, k, slices.Clone(x), slices.Clone(g)})
	return loss
}

func (o recording) FullGrad(x, g []float64) float64 {
	loss := o.o.FullGrad(x, g)
	o.r.Calls = append(o.r.Calls, Call{o.round, o.client, -1, slices.Clone(x), slices.Clone(g)})
	return loss
}
