// Package algorithms is the math of fedmo's federated optimisers: no I/O, no
// goroutines, no clocks, no global state.
//
// The client side is a local update (Local.Run) that every algorithm shares:
// K steps of SGD on minibatches given by an Oracle, with the optional FedProx
// term, a SCAFFOLD correction, Cheng et al.'s client momentum (beta weights
// the fresh gradient, 1 turns it off), its variance-reduced (STORM-type)
// form, or plain local heavy ball. Packages fedavg and scaffold build their
// Client on it.
//
// The server side is Server: it turns the aggregated client deltas into the
// pseudo-gradient Delta = x - avg_i y_i, keeps Cheng's g = Delta/(eta*K),
// applies the server optimizer (SGD with eta_g, heavy ball or Nesterov
// momentum, FedAdam, FedYogi, FedAdagrad) and keeps SCAFFOLD's control
// variates c and the ledger of every c_i.
//
// # Conventions (ALGORITHMS.md)
//
//   - eta_g is on the model scale: eta_g = 1 without momentum is plain
//     averaging. Cheng et al.'s gamma is eta_g*eta*K.
//   - Heavy ball: m = beta_s*m + Delta; x -= eta_g*m. Nesterov: x -= eta_g*(Delta + beta_s*m).
//   - Adaptive: v starts at tau^2, Delta_t^2 (not m_t^2) is squared, no bias correction.
//   - SCAFFOLD: c += (1/N) sum_{i in S} delta c_i; every control variate starts at zero.
//   - Aggregation adds client contributions in the order given; the round
//     engine gives them in ascending client id.
package algorithms

import (
	"fmt"

	"gonum.org/v1/gonum/floats"
)

// Oracle gives one client's minibatch gradients for one round.
type Oracle interface {
	// Grad writes the gradient of the minibatch-mean loss at params on the
	// minibatch of local step k (0 <= k < K) into grad and returns the loss.
	// Calls with the same k use the same minibatch.
	Grad(params []float64, k int, grad []float64) float64
	// FullGrad writes the gradient of the client's whole local objective at
	// params into grad and returns the loss (SCAFFOLD Option I).
	FullGrad(params []float64, grad []float64) float64
}

// Broadcast is what the server sends to every client of a round.
type Broadcast struct {
	Round int
	X     []float64 // x^r, the global model
	XPrev []float64 // x^{r-1}; only for the variance-reduced variants
	G     []float64 // g^r, Cheng et al.'s gradient estimate; only with client momentum
	C     []float64 // c, SCAFFOLD's server control variate; only for SCAFFOLD
}

// Update is what one client returns.
type Update struct {
	Client  int       // the virtual client's id
	Delta   []float64 // y_i - x^r
	DeltaC  []float64 // c_i^+ - c_i; only for SCAFFOLD
	Loss    float64   // mean minibatch loss over the local steps
	Samples int       // the client's number of training examples
}

// Client is the client-side half of an algorithm. Update runs one client's
// local work from b, with ci its control variate (nil means zero; only
// SCAFFOLD reads it), and fills out.Delta, out.DeltaC and out.Loss, whose
// buffers the caller owns.
type Client interface {
	Update(o Oracle, b *Broadcast, ci []float64, out *Update, ws *Workspace)
}

// CheckVector reports an error if v does not have n finite elements.
func CheckVector(what string, v []float64, n int) error {
	if len(v) != n {
		return fmt.Errorf("%s has %d elements, want %d", what, len(v), n)
	}
	// A finite sum proves every element finite (an Inf or a NaN makes the
	// sum Inf or NaN); only a non-finite sum needs the element-wise search,
	// which also clears sums that merely overflowed.
	if s := floats.Sum(v); s-s == 0 {
		return nil
	}
	for i, x := range v {
		if x-x != 0 { // NaN or Inf
			return fmt.Errorf("%s[%d] = %v, want a finite number", what, i, x)
		}
	}
	return nil
}
