// Package scaffold is the client side of SCAFFOLD (Karimireddy et al., ICML
// 2020) and its momentum forms from Cheng et al. (ICLR 2024).
//
// Every local step follows the corrected direction grad - c_i + c. After K
// steps the client's new control variate is
//
//   - Option II (default, the paper's experiments): c_i^+ = c_i - c + (x - y_i)/(K*eta);
//   - Option I: c_i^+ = the gradient of the client's whole local objective at x^r;
//   - SCAFFOLD-M and SCAFFOLD-M-VR (Beta < 1) with Option II: c_i^+ = the
//     mean of the raw minibatch gradients along the trajectory, which is
//     Option II's value when Beta = 1.
//
// The client returns delta c_i = c_i^+ - c_i. The server adds (1/N) of the
// sum of the deltas to c and keeps the ledger of every c_i
// (algorithms.Server), so a virtual client's state travels with the task.
package scaffold

import (
	"fmt"

	"gonum.org/v1/gonum/floats"

	"github.com/fedmo/fedmo/algorithms"
)

// Option selects how a client refreshes its control variate.
type Option int

// The two options of SCAFFOLD's Algorithm 1.
const (
	OptionII Option = iota // reuse the local steps (cheap; the default)
	OptionI                // an extra pass: the full local gradient at x^r
)

// Client runs SCAFFOLD-family local updates.
type Client struct {
	Local  algorithms.Local
	Option Option
}

// New returns a client for the local configuration l.
func New(l algorithms.Local, opt Option) (*Client, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if l.ProxMu != 0 {
		return nil, fmt.Errorf("prox_mu = %v with scaffold: the proximal term is a FedAvg option (FedProx); SCAFFOLD corrects drift with its control variates and Option II's c_i would absorb the prox term", l.ProxMu)
	}
	if l.HeavyBall != 0 {
		return nil, fmt.Errorf("local heavy-ball momentum with scaffold: Option II's c_i = (x - y)/(K*eta) assumes plain SGD steps; use client momentum beta (SCAFFOLD-M) instead")
	}
	if opt != OptionI && opt != OptionII {
		return nil, fmt.Errorf("scaffold option %d is unknown, want I or II", opt)
	}
	return &Client{Local: l, Option: opt}, nil
}

// Update runs the corrected local steps from b.X with control variate ci
// (nil means zero) and writes y - x^r into out.Delta and c_i^+ - c_i into
// out.DeltaC.
func (c *Client) Update(o algorithms.Oracle, b *algorithms.Broadcast, ci []float64, out *algorithms.Update, ws *algorithms.Workspace) {
	l := c.Local
	corr := ws.Corr // c - c_i
	copy(corr, b.C)
	if ci != nil {
		floats.Sub(corr, ci)
	}
	var gradSum []float64
	if c.Option == OptionII && l.Momentum() {
		gradSum = ws.Sum
	}
	out.Loss = l.Run(o, b, corr, gradSum, ws)
	floats.SubTo(out.Delta, ws.Y, b.X)

	dc := out.DeltaC
	switch {
	case c.Option == OptionI:
		o.FullGrad(b.X, dc)
	case gradSum != nil:
		floats.ScaleTo(dc, 1/float64(l.Steps), gradSum)
	default: // c_i^+ - c_i = -c + (x - y)/(K*eta)
		floats.ScaleTo(dc, -1/(float64(l.Steps)*l.LR), out.Delta)
		floats.Sub(dc, b.C)
		return
	}
	if ci != nil {
		floats.Sub(dc, ci)
	}
}
