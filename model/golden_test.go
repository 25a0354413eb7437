package model

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// goldenDigest is the SHA-256 of the bits of the losses, gradients and
// evaluations in TestGolden. It must be the same for every build (any
// GOAMD64, the noasm tag, any GOARCH) and every CPU: the package's
// arithmetic is a fixed sequence of correctly rounded operations. Change it
// only for a deliberate change of that sequence. Checked here: amd64 with
// GOAMD64=v1 and v3, with and without the noasm tag, on AVX-512, AVX2 and
// Go kernels.
const goldenDigest = "b6bac9a4b24136a63e186709f664b70b196dd2d3a042098aef8b2f9c7a89b76e"

func TestGolden(t *testing.T) {
	for k := kernelGo; k <= bestKernel; k++ {
		withKernel(k, func() {
			if got := goldenRun(); got != goldenDigest {
				t.Errorf("kernel %d: digest %s, want %s", k, got, goldenDigest)
			}
		})
	}
}

func goldenRun() string {
	h := sha256.New()
	put := func(v ...float64) {
		for _, f := range v {
			binary.Write(h, binary.LittleEndian, math.Float64bits(f))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []Model{
		NewMLP(50, []int{20, 9}, 5, InitGlorot),
		NewMLP(50, nil, 5, InitGlorot),
		NewSoftmax(50, 5, 1e-3, InitGlorot),
	} {
		p := make([]float64, m.NumParams())
		m.Init(p, r)
		put(p...)
		for _, density := range []float64{0.19, 1} {
			// Uniform draws only: NormFloat64 calls math.Exp.
			x := make([]float64, 16*50)
			for i := range x {
				if r.Float64() < density {
					x[i] = 2*r.Float64() - 1
				}
			}
			y := make([]int, 16)
			for i := range y {
				y[i] = r.IntN(5)
			}
			g := make([]float64, len(p))
			s := m.NewScratch(16)
			put(s.LossGrad(p, x, y, g))
			put(g...)
			sum, correct := s.Eval(p, x, y)
			put(sum, float64(correct))
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
