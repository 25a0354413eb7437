package algotest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/fedmo/fedmo/algorithms"
)

// Federation is what Run needs of the clients: their number and the oracle
// of each (round, client). *Problem is one.
type Federation interface {
	NumClients() int
	Oracle(round, client int) algorithms.Oracle
}

// Participation returns the clients of each of rounds rounds, each sorted
// in ascending id: all n clients when s <= 0 or s >= n, otherwise s distinct
// clients drawn uniformly without replacement from one math/rand/v2 PCG
// stream seeded with seed, which runs on from round to round.
func Participation(n, s int, seed uint64, rounds int) [][]int {
	out := make([][]int, rounds)
	if s <= 0 || s >= n {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		for r := range out {
			out[r] = slices.Clone(all)
		}
		return out
	}
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	for r := range out {
		out[r] = rng.Perm(n)[:s]
		slices.Sort(out[r])
	}
	return out
}

// Options configure Run.
type Options struct {
	Rounds int // R, the number of rounds to run
	// S clients take part in every round, drawn by Participation with
	// Seed; 0 (or S >= N) is full participation.
	S    int
	Seed uint64
	// Samples[i] is client i's number of training examples n_i, reported
	// in Update.Samples; nil means 1 for every client.
	Samples []int
	// Before, if set, runs at the start of every round, before the
	// broadcast; it may change the server's state (for example to pin
	// SCAFFOLD's control variates).
	Before func(s *algorithms.Server)
	// After, if set, runs after every Apply with the round's updates,
	// sorted by client id. The updates' buffers are not reused.
	After func(s *algorithms.Server, ups []*algorithms.Update)
}

// Run runs opt.Rounds rounds of client c and server s over the clients of
// f, the way the round engine does, using only the public API: it takes
// s.Broadcast(), runs c.Update for every participant in ascending id with
// its control variate s.ClientControl(i) and one shared Workspace, checks
// every update as the round engine does (algorithms.CheckVector on the
// deltas, a finite loss, at least one sample), sorts the updates by client id
// and calls s.Apply. It returns a copy of x after every round.
//
// Run also checks that no client writes to the broadcast or to its control
// variate: both alias the server's state.
func Run(s *algorithms.Server, c algorithms.Client, f Federation, opt Options) ([][]float64, error) {
	n := len(s.X)
	nc := f.NumClients()
	if opt.Samples != nil && len(opt.Samples) != nc {
		return nil, fmt.Errorf("algotest: %d sample counts for %d clients", len(opt.Samples), nc)
	}
	sched := Participation(nc, opt.S, opt.Seed, opt.Rounds)
	ws := algorithms.NewWorkspace(n)
	hist := make([][]float64, 0, opt.Rounds)
	for r := range opt.Rounds {
		if opt.Before != nil {
			opt.Before(s)
		}
		b := s.Broadcast()
		snap := snapshot(b)
		ups := make([]*algorithms.Update, 0, len(sched[r]))
		for _, i := range sched[r] {
			ci := s.ClientControl(i)
			ci0 := slices.Clone(ci)
			u := &algorithms.Update{Client: i, Samples: 1, Delta: make([]float64, n)}
			if opt.Samples != nil {
				u.Samples = opt.Samples[i]
			}
			if s.Config.Scaffold {
				u.DeltaC = make([]float64, n)
			}
			c.Update(f.Oracle(b.Round, i), b, ci, u, ws)
			if err := snap.same(b); err != nil {
				return hist, fmt.Errorf("algotest: round %d, client %d: %w", b.Round, i, err)
			}
			if !sameBits(ci, ci0) {
				return hist, fmt.Errorf("algotest: round %d, client %d modified its control variate", b.Round, i)
			}
			if err := check(u, n, s.Config.Scaffold); err != nil {
				return hist, fmt.Errorf("algotest: round %d, client %d: %w", b.Round, i, err)
			}
			ups = append(ups, u)
		}
		slices.SortFunc(ups, func(a, b *algorithms.Update) int { return a.Client - b.Client })
		s.Apply(ups)
		if opt.After != nil {
			opt.After(s, ups)
		}
		hist = append(hist, slices.Clone(s.X))
	}
	return hist, nil
}

func check(u *algorithms.Update, n int, scaffold bool) error {
	if err := algorithms.CheckVector("delta", u.Delta, n); err != nil {
		return err
	}
	if scaffold {
		if err := algorithms.CheckVector("delta c", u.DeltaC, n); err != nil {
			return err
		}
	}
	if math.IsNaN(u.Loss) || math.IsInf(u.Loss, 0) {
		return fmt.Errorf("loss = %v, want a finite number", u.Loss)
	}
	if u.Samples < 1 { // Apply's sample weights would be 0/0
		return fmt.Errorf("%d samples, want at least 1", u.Samples)
	}
	return nil
}

type broadcastSnapshot struct{ x, xPrev, g, c []float64 }

func snapshot(b *algorithms.Broadcast) broadcastSnapshot {
	return broadcastSnapshot{slices.Clone(b.X), slices.Clone(b.XPrev), slices.Clone(b.G), slices.Clone(b.C)}
}

func (s broadcastSnapshot) same(b *algorithms.Broadcast) error {
	for _, v := range []struct {
		name      string
		was, have []float64
	}{{"x", s.x, b.X}, {"x_prev", s.xPrev, b.XPrev}, {"g", s.g, b.G}, {"c", s.c, b.C}} {
		if !sameBits(v.was, v.have) {
			return fmt.Errorf("the client modified the broadcast %s", v.name)
		}
	}
	return nil
}

// sameBits reports whether a and b have the same length and the same
// float64 bits element by element.
func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// SameBits reports whether a and b have the same length and bit-identical
// elements (so +0 and -0 differ and a NaN equals the same NaN).
func SameBits(a, b []float64) bool { return sameBits(a, b) }
