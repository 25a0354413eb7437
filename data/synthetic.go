package data

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fedmo/fedmo/rng"
)

// FedProx Synthetic(alpha, beta) geometry, as in the authors'
// generate_synthetic.py.
const (
	SyntheticDim          = 60 // features per example
	SyntheticClasses      = 10 // classes
	DefaultSyntheticUsers = 30 // NUM_USER
)

// maxSyntheticRows bounds the total size the lognormal user sizes may reach
// (each row is 60 float64s, so this is under 2 GiB of features).
const maxSyntheticRows = 4_000_000

// SyntheticConfig configures FedProx's Synthetic(alpha, beta) generator.
type SyntheticConfig struct {
	// Alpha is the standard deviation (numpy's scale, not a variance) of
	// u_k, the mean of user k's model W_k and b_k: model heterogeneity.
	Alpha float64
	// Beta is the standard deviation of B_k, the mean of the entries of
	// user k's feature mean v_k: feature heterogeneity.
	Beta float64
	// IID selects synthetic_iid: one model (W, b) ~ N(0, 1) shared by all
	// users and zero-mean features. Alpha and Beta are then ignored.
	IID bool
	// Users is the number of users; 0 means DefaultSyntheticUsers.
	Users int
}

// Validate checks the configuration.
func (c SyntheticConfig) Validate() error {
	if c.Users < 0 || c.Users > maxSyntheticRows/50 {
		return fmt.Errorf("data: synthetic: %d users, want 0 (default %d) up to %d", c.Users, DefaultSyntheticUsers, maxSyntheticRows/50)
	}
	if c.IID {
		return nil
	}
	if !(c.Alpha >= 0) || math.IsInf(c.Alpha, 0) {
		return fmt.Errorf("data: synthetic: alpha %v, want a finite standard deviation >= 0", c.Alpha)
	}
	if !(c.Beta >= 0) || math.IsInf(c.Beta, 0) {
		return fmt.Errorf("data: synthetic: beta %v, want a finite standard deviation >= 0", c.Beta)
	}
	return nil
}

// syntheticUser is one generated user, kept for tests.
type syntheticUser struct {
	N     int       // examples before the split (>= 50)
	Train int       // int(0.9 * N)
	W     []float64 // 60x10, row-major: logits = x @ W + b
	B     []float64 // 10
	V     []float64 // 60, feature mean v_k
	X     []float64 // N*60 after the shuffle; the first Train rows are training rows
	Y     []int     // N
}

// Synthetic generates FedProx's Synthetic(alpha, beta) dataset following the
// authors' code (generate_synthetic.py, generate_iid.py), not the paper's
// wording:
//
//   - user k has n_k = int(lognormal(4, 2)) + 50 examples;
//   - u_k ~ N(0, Alpha^2) and B_k ~ N(0, Beta^2) (Alpha and Beta are
//     standard deviations), v_k has entries ~ N(B_k, 1);
//   - W_k (60x10) has entries ~ N(u_k, 1) and b_k entries ~ N(u_k, 1): b_k
//     shares its mean with W_k;
//   - x = v_k + sqrt(Sigma) z with z ~ N(0, I) and Sigma = diag((j+1)^-1.2),
//     j = 0..59;
//   - y = argmax(x W_k + b_k), deterministically (softmax does not change
//     the argmax; ties go to the lower class);
//   - each user's examples are shuffled, then its first int(0.9 n_k) are
//     training examples and the rest test examples.
//
// With IID, all users share (W, b) with entries ~ N(0, 1), and v_k = 0.
// Synthetic(0, 0) is not IID: every user still draws its own W_k and v_k.
//
// The result pools the users' training and test rows (user 0's first), and
// Parts[k] lists user k's training rows: the "natural" partition. User k's
// data comes from its own stream rng.Stream(seed, rng.Synthetic, -1, k)
// (the shared IID model from client -1), so it does not depend on the
// number of users. The draws follow numpy's procedure, not its bit stream.
func Synthetic(cfg SyntheticConfig, seed uint64) (*Federated, error) {
	f, _, err := generateSynthetic(cfg, seed)
	return f, err
}

func generateSynthetic(cfg SyntheticConfig, seed uint64) (*Federated, []syntheticUser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	users := cfg.Users
	if users == 0 {
		users = DefaultSyntheticUsers
	}
	const d, k = SyntheticDim, SyntheticClasses
	sqrtSigma := make([]float64, d)
	for j := range sqrtSigma {
		sqrtSigma[j] = math.Sqrt(math.Pow(float64(j+1), -1.2))
	}
	var sharedW, sharedB []float64
	if cfg.IID {
		r := rng.Stream(seed, rng.Synthetic, -1, -1)
		sharedW = normals(r, 0, d*k)
		sharedB = normals(r, 0, k)
	}

	us := make([]syntheticUser, users)
	total := 0
	for i := range us {
		u := &us[i]
		r := rng.Stream(seed, rng.Synthetic, -1, i)
		u.N = int(math.Exp(4+2*r.NormFloat64())) + 50
		total += u.N
		if total > maxSyntheticRows || u.N > maxSyntheticRows {
			return nil, nil, fmt.Errorf("data: synthetic: the lognormal user sizes exceed %d rows in total at user %d; use another seed or fewer users", maxSyntheticRows, i)
		}
		u.Train = int(0.9 * float64(u.N))
		if cfg.IID {
			u.W, u.B = sharedW, sharedB
			u.V = make([]float64, d)
		} else {
			meanW := cfg.Alpha * r.NormFloat64() // u_k
			bk := cfg.Beta * r.NormFloat64()     // B_k
			u.V = normals(r, bk, d)
			u.W = normals(r, meanW, d*k)
			u.B = normals(r, meanW, k)
		}
		u.X = make([]float64, u.N*d)
		u.Y = make([]int, u.N)
		for row := range u.N {
			x := u.X[row*d : (row+1)*d]
			for j := range x {
				// The conversion forbids FMA fusion (see argmaxLogits).
				x[j] = u.V[j] + float64(sqrtSigma[j]*r.NormFloat64())
			}
			u.Y[row] = argmaxLogits(x, u.W, u.B)
		}
		r.Shuffle(u.N, func(a, b int) {
			u.Y[a], u.Y[b] = u.Y[b], u.Y[a]
			xa, xb := u.X[a*d:(a+1)*d], u.X[b*d:(b+1)*d]
			for j := range xa {
				xa[j], xb[j] = xb[j], xa[j]
			}
		})
	}

	train := &Dataset{D: d, Classes: k}
	test := &Dataset{D: d, Classes: k}
	parts := make([][]int, users)
	for i := range us {
		u := &us[i]
		start := train.Len()
		parts[i] = make([]int, u.Train)
		for j := range parts[i] {
			parts[i][j] = start + j
		}
		train.X = append(train.X, u.X[:u.Train*d]...)
		train.Y = append(train.Y, u.Y[:u.Train]...)
		test.X = append(test.X, u.X[u.Train*d:]...)
		test.Y = append(test.Y, u.Y[u.Train:]...)
	}
	name := fmt.Sprintf("synthetic(%g,%g)", cfg.Alpha, cfg.Beta)
	if cfg.IID {
		name = "synthetic_iid"
	}
	return &Federated{Name: name, Train: train, Test: test, Parts: parts}, us, nil
}

// normals returns n draws from N(mean, 1).
func normals(r *rand.Rand, mean float64, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = mean + r.NormFloat64()
	}
	return v
}

// argmaxLogits returns argmax_c (x @ W + b)_c for W stored row-major with
// len(b) columns; the first maximum wins. The explicit conversion keeps
// the compiler from fusing the multiply-add, so labels are the same on
// every architecture.
func argmaxLogits(x, w, b []float64) int {
	k := len(b)
	best, bestV := 0, math.Inf(-1)
	for c := range k {
		s := b[c]
		for j, xj := range x {
			s += float64(xj * w[j*k+c])
		}
		if s > bestV {
			best, bestV = c, s
		}
	}
	return best
}
