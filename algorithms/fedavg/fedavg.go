// Package fedavg is the client side of FedAvg (McMahan et al., 2017) and the
// algorithms that share its stateless clients:
//
//   - FedAvg: K steps of minibatch SGD from the global model.
//   - FedProx (Li et al., 2020): ProxMu > 0 adds mu*(y - x^r) to every step.
//   - FedAvg-M (Cheng et al., ICLR 2024): Beta < 1 mixes the server's g^r
//     into every step, v = beta*grad + (1-beta)*g^r.
//   - FedAvg-M-VR: VR with Beta < 1, v = grad + (1-beta)*(g^r - grad(x^{r-1})),
//     both gradients on the same minibatch.
//   - Local heavy-ball SGD: HeavyBall > 0 keeps a client-private buffer,
//     reset every round. This is a different algorithm from FedAvg-M: its
//     momentum never leaves the client.
//
// The server side (averaging, server momentum, adaptive optimizers) is
// algorithms.Server.
package fedavg

import (
	"gonum.org/v1/gonum/floats"

	"github.com/fedmo/fedmo/algorithms"
)

// Client runs FedAvg-family local updates.
type Client struct {
	Local algorithms.Local
}

// New returns a client for the local configuration l.
func New(l algorithms.Local) (*Client, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Client{Local: l}, nil
}

// Update runs the local steps from b.X and writes y - x^r into out.Delta.
// FedAvg clients keep no control variate: ci is ignored and out.DeltaC is
// left alone.
func (c *Client) Update(o algorithms.Oracle, b *algorithms.Broadcast, _ []float64, out *algorithms.Update, ws *algorithms.Workspace) {
	out.Loss = c.Local.Run(o, b, nil, nil, ws)
	floats.SubTo(out.Delta, ws.Y, b.X)
}
