package algorithms

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
)

// Server optimizers.
const (
	SGD     = "sgd"     // x -= eta_g*Delta, with optional heavy-ball or Nesterov momentum
	Adam    = "adam"    // FedAdam (Reddi et al.)
	Yogi    = "yogi"    // FedYogi
	Adagrad = "adagrad" // FedAdagrad
)

// ServerConfig is the server side of an algorithm.
type ServerConfig struct {
	Optimizer string  // SGD, Adam, Yogi or Adagrad
	LR        float64 // eta_g, on the model scale: 1 with SGD and no momentum is plain averaging
	Momentum  float64 // beta_s, heavy ball on the OLD buffer (SGD only); 0 is off
	Nesterov  bool    // Nesterov form of the heavy ball (SGD only)
	Beta1     float64 // adaptive optimizers: first-moment decay
	Beta2     float64 // FedAdam, FedYogi: second-moment decay
	Tau       float64 // adaptive optimizers: adaptivity; v starts at tau^2

	Local    Local // the clients' local update: eta and K scale g, Beta and VR say what to keep
	Scaffold bool  // keep SCAFFOLD's control variates
	Clients  int   // N, for SCAFFOLD's c += (1/N) sum delta c_i
	// SampleWeighted weights client deltas by n_i / sum_{j in S_r} n_j
	// (McMahan et al.); otherwise every reporting client weighs 1/|S_r|.
	SampleWeighted bool
}

// Validate reports a configuration the math forbids, and why.
func (c ServerConfig) Validate() error {
	if err := c.Local.Validate(); err != nil {
		return err
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("server lr = %v, want a finite number above 0", c.LR)
	}
	if c.Clients < 1 {
		return fmt.Errorf("clients = %d, want at least 1", c.Clients)
	}
	switch c.Optimizer {
	case SGD:
		if !(c.Momentum >= 0 && c.Momentum < 1) {
			return fmt.Errorf("server momentum = %v, want 0 <= momentum < 1", c.Momentum)
		}
		if c.Nesterov && c.Momentum == 0 {
			return fmt.Errorf("server nesterov needs server momentum above 0")
		}
	case Adam, Yogi, Adagrad:
		if c.Momentum != 0 || c.Nesterov {
			return fmt.Errorf("server momentum and nesterov are heavy-ball options of the sgd optimizer; %s keeps its own first moment (beta1)", c.Optimizer)
		}
		if !(c.Beta1 >= 0 && c.Beta1 < 1) {
			return fmt.Errorf("server beta1 = %v, want 0 <= beta1 < 1", c.Beta1)
		}
		if c.Optimizer != Adagrad && !(c.Beta2 >= 0 && c.Beta2 < 1) {
			return fmt.Errorf("server beta2 = %v, want 0 <= beta2 < 1", c.Beta2)
		}
		if !(c.Tau > 0) || math.IsInf(c.Tau, 0) {
			return fmt.Errorf("server tau = %v, want a finite number above 0", c.Tau)
		}
	default:
		return fmt.Errorf("server optimizer %q is unknown, want sgd, adam, yogi or adagrad", c.Optimizer)
	}
	if c.Local.VR && !c.Local.Momentum() {
		return fmt.Errorf("momentum vr: true needs momentum beta < 1: with beta = 1 the variance-reduced update is plain SGD")
	}
	return nil
}

// Server is the whole server-side state of a run. Every field is needed to
// resume a run bit for bit.
type Server struct {
	Config ServerConfig
	Round  int         // the next round to run
	X      []float64   // x^r
	XPrev  []float64   // x^{r-1} (x^{-1} = x^0); only for the VR variants
	G      []float64   // g^r; only with client momentum
	C      []float64   // c; only for SCAFFOLD
	CI     [][]float64 // the ledger of every c_i (nil until client i first reports); only for SCAFFOLD
	M, V   []float64   // optimizer buffers (heavy-ball m; adaptive m and v)

	agg []float64
}

// NewServer starts a run from the initial model x0 (which it copies).
func NewServer(cfg ServerConfig, x0 []float64) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := len(x0)
	s := &Server{Config: cfg, X: append([]float64(nil), x0...)}
	if cfg.Local.VR {
		s.XPrev = append([]float64(nil), x0...)
	}
	if cfg.Local.Momentum() {
		s.G = make([]float64, n)
	}
	if cfg.Scaffold {
		s.C = make([]float64, n)
		s.CI = make([][]float64, cfg.Clients)
	}
	switch {
	case cfg.Optimizer == SGD && cfg.Momentum > 0:
		s.M = make([]float64, n)
	case cfg.Optimizer != SGD:
		s.M = make([]float64, n)
		s.V = make([]float64, n)
		for i := range s.V {
			s.V[i] = cfg.Tau * cfg.Tau
		}
	}
	return s, nil
}

// Broadcast returns what the clients of the current round receive. The
// slices alias the server's state: clients must not modify them.
func (s *Server) Broadcast() *Broadcast {
	return &Broadcast{Round: s.Round, X: s.X, XPrev: s.XPrev, G: s.G, C: s.C}
}

// ClientControl returns client i's control variate c_i (nil means zero).
func (s *Server) ClientControl(i int) []float64 {
	if s.CI == nil {
		return nil
	}
	return s.CI[i]
}

// Apply ends the round with the updates of the clients that reported, which
// the caller has checked and sorted by client id. With no update the model
// stays as it is and only the round advances.
func (s *Server) Apply(ups []*Update) {
	s.Round++
	if len(ups) == 0 {
		return
	}
	cfg := s.Config
	if s.agg == nil {
		s.agg = make([]float64, len(s.X))
	}
	agg := s.agg // avg_i (y_i - x) = -Delta
	total := 0.0
	for _, u := range ups {
		total += float64(u.Samples)
	}
	w := make([]float64, len(ups))
	for k, u := range ups {
		w[k] = 1 / float64(len(ups))
		if cfg.SampleWeighted {
			w[k] = float64(u.Samples) / total
		}
	}
	// Sum block by block so the block of agg stays in cache while the
	// deltas stream past; each element still adds the clients in order.
	for lo := 0; lo < len(agg); lo += block {
		a := agg[lo:min(lo+block, len(agg))]
		clear(a)
		for k, u := range ups {
			floats.AddScaled(a, w[k], u.Delta[lo:lo+len(a)])
		}
	}
	if s.G != nil { // g^{r+1} = Delta / (eta*K)
		floats.ScaleTo(s.G, -1/(cfg.Local.LR*float64(cfg.Local.Steps)), agg)
	}
	if s.XPrev != nil {
		copy(s.XPrev, s.X)
	}
	s.step(agg)
	if s.C != nil {
		s.applyControls(ups)
	}
}

// block is the number of parameters the server sums at a time (16 KiB).
const block = 2048

// applyControls adds (1/N) sum delta c_i to c and each delta c_i to the
// ledger, in client order.
func (s *Server) applyControls(ups []*Update) {
	inv := 1 / float64(s.Config.Clients)
	for _, u := range ups {
		if s.CI[u.Client] == nil {
			s.CI[u.Client] = make([]float64, len(s.X))
		}
	}
	for lo := 0; lo < len(s.C); lo += block {
		c := s.C[lo:min(lo+block, len(s.C))]
		hi := lo + len(c)
		for _, u := range ups {
			floats.AddScaled(c, inv, u.DeltaC[lo:hi])
			floats.Add(s.CI[u.Client][lo:hi], u.DeltaC[lo:hi])
		}
	}
}

// step applies the server optimizer to the averaged client delta agg = -Delta.
func (s *Server) step(agg []float64) {
	cfg := s.Config
	x, m, v := s.X, s.M, s.V
	switch cfg.Optimizer {
	case SGD:
		if m == nil { // x -= eta_g*Delta
			floats.AddScaled(x, cfg.LR, agg)
			return
		}
		// m = beta_s*m + Delta
		floats.Scale(cfg.Momentum, m)
		floats.AddScaled(m, -1, agg)
		if cfg.Nesterov { // x -= eta_g*(Delta + beta_s*m)
			floats.AddScaled(x, cfg.LR, agg)
			floats.AddScaled(x, -cfg.LR*cfg.Momentum, m)
		} else { // x -= eta_g*m
			floats.AddScaled(x, -cfg.LR, m)
		}
	default: // adaptive, on Delta_t = agg
		b1, b2 := cfg.Beta1, cfg.Beta2
		for j, d := range agg {
			m[j] = b1*m[j] + (1-b1)*d
			d2 := d * d
			switch cfg.Optimizer {
			case Adagrad:
				v[j] += d2
			case Yogi:
				v[j] -= (1 - b2) * d2 * sign(v[j]-d2)
			case Adam:
				v[j] = b2*v[j] + (1-b2)*d2
			}
			x[j] += cfg.LR * m[j] / (math.Sqrt(v[j]) + cfg.Tau)
		}
	}
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
