package model

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// InitScheme names how a model draws its initial weights. Biases always start
// at zero.
type InitScheme string

// The initialisation schemes.
const (
	// InitZeros sets every parameter to zero.
	InitZeros InitScheme = "zeros"
	// InitGlorot draws each weight uniformly from [-a, a) with
	// a = sqrt(6/(fan_in+fan_out)) (Glorot and Bengio, 2010).
	InitGlorot InitScheme = "glorot"
	// InitHe draws each weight from a normal distribution with mean 0 and
	// standard deviation sqrt(2/fan_in) (He et al., 2015).
	InitHe InitScheme = "he"
)

// initSchemes lists the valid schemes in the order error messages name them.
var initSchemes = []InitScheme{InitZeros, InitGlorot, InitHe}

// ParseInit returns the scheme named s.
func ParseInit(s string) (InitScheme, error) {
	for _, k := range initSchemes {
		if s == string(k) {
			return k, nil
		}
	}
	return "", fmt.Errorf("model: unknown init scheme %q, want one of %q", s, initSchemes)
}

// fill writes the weights of one fanIn x fanOut layer into w, drawing from r
// in index order. It panics on an unknown scheme.
func (s InitScheme) fill(w []float64, fanIn, fanOut int, r *rand.Rand) {
	switch s {
	case InitZeros:
		clear(w)
	case InitGlorot:
		a := math.Sqrt(6 / float64(fanIn+fanOut))
		for i := range w {
			w[i] = a * (2*r.Float64() - 1)
		}
	case InitHe:
		sd := math.Sqrt(2 / float64(fanIn))
		for i := range w {
			w[i] = sd * r.NormFloat64()
		}
	default:
		panic(fmt.Sprintf("model: unknown init scheme %q", string(s)))
	}
}

// check panics if s is not a known scheme; constructors call it so that a bad
// scheme fails at construction rather than at Init.
func (s InitScheme) check() {
	if _, err := ParseInit(string(s)); err != nil {
		panic(err)
	}
}
