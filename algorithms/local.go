package algorithms

import (
	"fmt"

	"gonum.org/v1/gonum/floats"
)

// Local is the configuration of a local update.
type Local struct {
	Steps int     // K, local steps per round (>= 1)
	LR    float64 // eta, the local learning rate (> 0)
	// Beta is Cheng et al.'s momentum weight on the FRESH gradient, in (0, 1].
	// 1 turns client momentum off (FedAvg, SCAFFOLD); below 1 it gives
	// FedAvg-M and SCAFFOLD-M: v = beta*d + (1-beta)*g^r.
	Beta float64
	// VR selects the variance-reduced variants (FedAvg-M-VR, SCAFFOLD-M-VR):
	// v = beta*d + (1-beta)*(g^r + G(y) - G(x^{r-1})), both gradients on one
	// minibatch. With Beta = 1 it changes nothing.
	VR bool
	// ProxMu is FedProx's proximal weight: d += mu*(y - x^r). 0 is off.
	ProxMu float64
	// HeavyBall is plain local heavy-ball SGD, a different algorithm from
	// Cheng et al.'s: a client-private buffer b = hb*b + v, reset every
	// round, and y -= eta*b. 0 is off.
	HeavyBall float64
}

// Validate checks the ranges.
func (l Local) Validate() error {
	switch {
	case l.Steps < 1:
		return fmt.Errorf("local steps = %d, want at least 1", l.Steps)
	case !(l.LR > 0) || l.LR-l.LR != 0:
		return fmt.Errorf("local learning rate = %v, want a finite number above 0", l.LR)
	case !(l.Beta > 0 && l.Beta <= 1):
		return fmt.Errorf("momentum beta = %v, want 0 < beta <= 1 (1 turns client momentum off)", l.Beta)
	case !(l.ProxMu >= 0) || l.ProxMu-l.ProxMu != 0:
		return fmt.Errorf("prox_mu = %v, want a finite number >= 0", l.ProxMu)
	case !(l.HeavyBall >= 0 && l.HeavyBall < 1):
		return fmt.Errorf("local heavy-ball momentum = %v, want 0 <= momentum < 1", l.HeavyBall)
	case l.HeavyBall > 0 && l.Beta < 1:
		return fmt.Errorf("local heavy-ball momentum %v with client momentum beta %v: both add momentum, pick one (ALGORITHMS.md P11)", l.HeavyBall, l.Beta)
	}
	return nil
}

// Momentum reports whether the client mixes in the server's g^r.
func (l Local) Momentum() bool { return l.Beta < 1 }

// Workspace holds the buffers of local updates over n parameters. It is
// reused across tasks by one goroutine, so a local step allocates nothing.
type Workspace struct {
	Y, Grad, GradPrev, Buf, Sum, Corr, Shift []float64
}

// NewWorkspace returns buffers for n parameters.
func NewWorkspace(n int) *Workspace {
	return &Workspace{
		Y: make([]float64, n), Grad: make([]float64, n), GradPrev: make([]float64, n),
		Buf: make([]float64, n), Sum: make([]float64, n), Corr: make([]float64, n),
		Shift: make([]float64, n),
	}
}

// Run runs K local steps from b.X and leaves the final model in ws.Y.
// corr is SCAFFOLD's correction c - c_i, added to every fresh gradient (nil
// for none). If gradSum is not nil it receives the sum of the raw minibatch
// gradients along the trajectory (SCAFFOLD-M's control variate). Run returns
// the mean minibatch loss.
func (l Local) Run(o Oracle, b *Broadcast, corr, gradSum []float64, ws *Workspace) float64 {
	y, grad := ws.Y, ws.Grad
	copy(y, b.X)
	if gradSum != nil {
		clear(gradSum)
	}
	if l.HeavyBall > 0 {
		clear(ws.Buf)
	}
	mom := l.Momentum()
	// shift is the part of the direction that is constant over the round:
	// beta*corr + (1-beta)*g^r with momentum, corr without (nil for none).
	// The step direction is then v = beta*d + shift (plus the VR term),
	// with d the fresh gradient and the prox term.
	shift := corr
	if mom {
		shift = ws.Shift
		floats.ScaleTo(shift, 1-l.Beta, b.G)
		if corr != nil {
			floats.AddScaled(shift, l.Beta, corr)
		}
	}
	var loss float64
	for k := 0; k < l.Steps; k++ {
		loss += o.Grad(y, k, grad)
		if gradSum != nil {
			floats.Add(gradSum, grad)
		}
		if mom && l.VR {
			// v = beta*d + shift + (1-beta)*(G - G(x^{r-1})), both on minibatch k.
			o.Grad(b.XPrev, k, ws.GradPrev)
			floats.SubTo(ws.GradPrev, grad, ws.GradPrev)
		}
		if l.ProxMu > 0 { // d = G + mu*(y - x^r)
			floats.AddScaled(grad, l.ProxMu, y)
			floats.AddScaled(grad, -l.ProxMu, b.X)
		}
		switch {
		case mom:
			floats.AddScaledTo(grad, shift, l.Beta, grad)
			if l.VR {
				floats.AddScaled(grad, 1-l.Beta, ws.GradPrev)
			}
		case shift != nil:
			floats.Add(grad, shift)
		}
		if l.HeavyBall > 0 {
			floats.Scale(l.HeavyBall, ws.Buf)
			floats.Add(ws.Buf, grad)
			grad = ws.Buf
		}
		floats.AddScaled(y, -l.LR, grad)
		grad = ws.Grad
	}
	return loss / float64(l.Steps)
}
