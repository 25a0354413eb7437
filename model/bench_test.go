package model

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"go/build"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// The benchmarks use the real MNIST test set from the GoMNIST module in the
// module cache when it is there, and otherwise synthetic MNIST-like digits
// (about 19% nonzero pixels in (0, 1], clustered in the middle of the 28x28
// image), so that they depend on no other package of this repository.

const (
	mnistFeatures = 784
	mnistHidden   = 200
	mnistClasses  = 10
	benchBatch    = 32
)

// mlpStepFLOP is the dense floating-point work of one 784-200-10 step of 32
// rows: forward x W1 and h W2, backward the two weight gradients and dH.
const mlpStepFLOP = 2 * benchBatch * (2*mnistFeatures*mnistHidden + 3*mnistHidden*mnistClasses)

type labelled struct {
	x []float64
	y []int
}

var mnistOnce = sync.OnceValues(func() (labelled, error) {
	x, y, err := loadMNIST()
	return labelled{x, y}, err
})

// mnist returns the 10k MNIST test images (scaled to [0, 1]) and labels, or
// synthetic ones, and the name of the source.
func mnist(tb testing.TB) ([]float64, []int, string) {
	d, err := mnistOnce()
	if err != nil {
		x, y := syntheticDigits(rand.New(rand.NewPCG(1, 2)), 10000)
		return x, y, "synthetic (" + err.Error() + ")"
	}
	return d.x, d.y, "mnist"
}

func loadMNIST() ([]float64, []int, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		cache = filepath.Join(filepath.SplitList(build.Default.GOPATH)[0], "pkg", "mod")
	}
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63", "data")
	img, err := readIDX(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), 0x803)
	if err != nil {
		return nil, nil, err
	}
	lab, err := readIDX(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), 0x801)
	if err != nil {
		return nil, nil, err
	}
	if len(img) != len(lab)*mnistFeatures {
		return nil, nil, fmt.Errorf("%d pixels for %d labels", len(img), len(lab))
	}
	x := make([]float64, len(img))
	for i, v := range img {
		x[i] = float64(v) / 255
	}
	y := make([]int, len(lab))
	for i, v := range lab {
		y[i] = int(v)
	}
	return x, y, nil
}

// readIDX returns the data bytes of a gzipped IDX file with the given magic.
func readIDX(path string, magic uint32) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(z)
	if err != nil {
		return nil, err
	}
	dims := int(magic & 0xff)
	if len(b) < 4+4*dims || binary.BigEndian.Uint32(b) != magic {
		return nil, fmt.Errorf("%s: not an IDX file with magic %#x", path, magic)
	}
	return b[4+4*dims:], nil
}

// syntheticDigits returns n MNIST-like rows: a random blob of strokes in the
// middle 20x20 of a 28x28 image, about 19% nonzero, values in (0, 1].
func syntheticDigits(r *rand.Rand, n int) ([]float64, []int) {
	x := make([]float64, n*mnistFeatures)
	y := make([]int, n)
	for i := range n {
		img := x[i*mnistFeatures : (i+1)*mnistFeatures]
		y[i] = r.IntN(mnistClasses)
		// A pen walks 30 steps from a random point near the centre and
		// paints a 3-pixel-wide stroke.
		pr, pc := 10+r.IntN(8), 10+r.IntN(8)
		for range 30 {
			for dr := -1; dr <= 1; dr++ {
				for dc := -1; dc <= 1; dc++ {
					rr, cc := pr+dr, pc+dc
					if rr >= 4 && rr < 24 && cc >= 4 && cc < 24 {
						img[rr*28+cc] = max(img[rr*28+cc], 1-0.7*r.Float64()*float64(dr*dr+dc*dc))
					}
				}
			}
			pr = min(max(pr+r.IntN(3)-1, 5), 22)
			pc = min(max(pc+r.IntN(3)-1, 5), 22)
		}
	}
	return x, y
}

// benchBatches cuts the data into batches of benchBatch rows.
func benchBatches(x []float64, y []int) (xs [][]float64, ys [][]int) {
	for r := 0; r+benchBatch <= len(y); r += benchBatch {
		xs = append(xs, x[r*mnistFeatures:(r+benchBatch)*mnistFeatures])
		ys = append(ys, y[r:r+benchBatch])
	}
	return xs, ys
}

func reportGFLOPs(b *testing.B, flop float64) {
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkMLPStep is one LossGrad of a 784-200-10 MLP on 32 MNIST rows,
// cycling through the test set. GFLOP/s counts the dense work.
func BenchmarkMLPStep(b *testing.B) {
	x, y, src := mnist(b)
	b.Log("data:", src)
	m := NewMLP(mnistFeatures, []int{mnistHidden}, mnistClasses, InitHe)
	p := make([]float64, m.NumParams())
	m.Init(p, rand.New(rand.NewPCG(1, 2)))
	g := make([]float64, len(p))
	s := m.NewScratch(benchBatch)
	xs, ys := benchBatches(x, y)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.LossGrad(p, xs[i], ys[i], g)
		i = (i + 1) % len(xs)
	}
	reportGFLOPs(b, mlpStepFLOP)
}

// BenchmarkMLPStepKernels is BenchmarkMLPStep with each instruction set
// this CPU has (0 Go, 1 AVX2, 2 AVX-512), for machines with fewer.
func BenchmarkMLPStepKernels(b *testing.B) {
	x, y, _ := mnist(b)
	m := NewMLP(mnistFeatures, []int{mnistHidden}, mnistClasses, InitHe)
	p := make([]float64, m.NumParams())
	m.Init(p, rand.New(rand.NewPCG(1, 2)))
	g := make([]float64, len(p))
	s := m.NewScratch(benchBatch)
	xs, ys := benchBatches(x, y)
	for k := kernelGo; k <= bestKernel; k++ {
		b.Run(fmt.Sprint("kernel=", k), func(b *testing.B) {
			withKernel(k, func() {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					s.LossGrad(p, xs[i], ys[i], g)
					i = (i + 1) % len(xs)
				}
				reportGFLOPs(b, mlpStepFLOP)
			})
		})
	}
}

// BenchmarkMLPStepDenseGemm is the same step as BenchmarkMLPStep in the
// plain blas64.Gemm formulation, the baseline for its speed.
func BenchmarkMLPStepDenseGemm(b *testing.B) {
	x, y, _ := mnist(b)
	m := NewMLP(mnistFeatures, []int{mnistHidden}, mnistClasses, InitHe)
	p := make([]float64, m.NumParams())
	m.Init(p, rand.New(rand.NewPCG(1, 2)))
	g := make([]float64, len(p))
	ref := newGemmMLP(mnistFeatures, mnistHidden, mnistClasses, benchBatch)
	xs, ys := benchBatches(x, y)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ref.lossGrad(p, xs[i], ys[i], g)
		i = (i + 1) % len(xs)
	}
	reportGFLOPs(b, mlpStepFLOP)
}

// BenchmarkMLPStepDenseData is a step on dense (normal) inputs, where the
// first layer takes the dense path, against the Gemm formulation.
func BenchmarkMLPStepDenseData(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, y := batch(r, 64*benchBatch, mnistFeatures, mnistClasses, 1)
	xs, ys := benchBatches(x, y)
	m := NewMLP(mnistFeatures, []int{mnistHidden}, mnistClasses, InitHe)
	p := make([]float64, m.NumParams())
	m.Init(p, r)
	g := make([]float64, len(p))
	b.Run("model", func(b *testing.B) {
		s := m.NewScratch(benchBatch)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.LossGrad(p, xs[i], ys[i], g)
			i = (i + 1) % len(xs)
		}
		reportGFLOPs(b, mlpStepFLOP)
	})
	b.Run("gemm", func(b *testing.B) {
		ref := newGemmMLP(mnistFeatures, mnistHidden, mnistClasses, benchBatch)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ref.lossGrad(p, xs[i], ys[i], g)
			i = (i + 1) % len(xs)
		}
		reportGFLOPs(b, mlpStepFLOP)
	})
}

// BenchmarkMLPEval10k evaluates a 784-200-10 MLP on the 10k test rows with a
// scratch for batches of 32, as a client's scratch would be.
func BenchmarkMLPEval10k(b *testing.B) {
	x, y, _ := mnist(b)
	m := NewMLP(mnistFeatures, []int{mnistHidden}, mnistClasses, InitHe)
	p := make([]float64, m.NumParams())
	m.Init(p, rand.New(rand.NewPCG(1, 2)))
	s := m.NewScratch(benchBatch)
	b.ReportAllocs()
	for b.Loop() {
		s.Eval(p, x, y)
	}
	reportGFLOPs(b, float64(len(y))*2*(mnistFeatures*mnistHidden+mnistHidden*mnistClasses))
}

// BenchmarkSoftmaxStep is one LossGrad of softmax regression on 32 rows of
// MNIST and of FedProx-synthetic-sized dense data (60 features).
func BenchmarkSoftmaxStep(b *testing.B) {
	x, y, _ := mnist(b)
	r := rand.New(rand.NewPCG(1, 2))
	sx, sy := batch(r, benchBatch, 60, mnistClasses, 1)
	for _, tc := range []struct {
		name     string
		features int
		x        []float64
		y        []int
	}{
		{"mnist", mnistFeatures, x[:benchBatch*mnistFeatures], y[:benchBatch]},
		{"synthetic", 60, sx, sy},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := NewSoftmax(tc.features, mnistClasses, 1e-3, InitGlorot)
			p := make([]float64, m.NumParams())
			m.Init(p, r)
			g := make([]float64, len(p))
			s := m.NewScratch(benchBatch)
			b.ReportAllocs()
			for b.Loop() {
				s.LossGrad(p, tc.x, tc.y, g)
			}
		})
	}
}

// gemmMLP is a one-hidden-layer MLP step written the plain way with
// blas64.Gemm on dense matrices, in the MLP layout: the benchmark baseline
// and a reference for the tests.
type gemmMLP struct {
	in, hid, out int
	h, z, dz, dh []float64
}

func newGemmMLP(in, hid, out, rows int) *gemmMLP {
	return &gemmMLP{in: in, hid: hid, out: out,
		h: make([]float64, rows*hid), z: make([]float64, rows*out),
		dz: make([]float64, rows*out), dh: make([]float64, rows*hid)}
}

func general(rows, cols int, data []float64) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: data[:rows*cols]}
}

func (g *gemmMLP) lossGrad(p, x []float64, y []int, grad []float64) float64 {
	rows := len(y)
	in, hid, out := g.in, g.hid, g.out
	o2 := in*hid + hid
	w1, b1 := general(in, hid, p), p[in*hid:o2]
	w2, b2 := general(hid, out, p[o2:]), p[o2+hid*out:]
	gw1, gb1 := general(in, hid, grad), grad[in*hid:o2]
	gw2, gb2 := general(hid, out, grad[o2:]), grad[o2+hid*out:]
	X := general(rows, in, x)
	H, Z := general(rows, hid, g.h), general(rows, out, g.z)
	dZ, dH := general(rows, out, g.dz), general(rows, hid, g.dh)

	for r := range rows {
		copy(H.Data[r*hid:], b1)
		copy(Z.Data[r*out:], b2)
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, X, w1, 1, H)
	for i, v := range H.Data {
		H.Data[i] = max(v, 0)
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, H, w2, 1, Z)
	loss := softmaxCE(Z.Data, dZ.Data, y, out)

	blas64.Gemm(blas.Trans, blas.NoTrans, 1, H, dZ, 0, gw2)
	colSums(gb2, dZ.Data, rows, out)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, dZ, w2, 0, dH)
	for i, v := range H.Data {
		if v <= 0 {
			dH.Data[i] = 0
		}
	}
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, X, dH, 0, gw1)
	colSums(gb1, dH.Data, rows, hid)
	return loss
}

func colSums(dst, a []float64, rows, cols int) {
	clear(dst)
	for r := range rows {
		for c, v := range a[r*cols : (r+1)*cols] {
			dst[c] += v
		}
	}
}

func TestMatchesGemmReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const in, hid, out, rows = 30, 17, 6, 9
	m := NewMLP(in, []int{hid}, out, InitHe)
	p := initParams(m, r)
	ref := newGemmMLP(in, hid, out, rows)
	for _, density := range []float64{0.19, 1} {
		x, y := batch(r, rows, in, out, density)
		want := make([]float64, len(p))
		wantLoss := ref.lossGrad(p, x, y, want)
		got := make([]float64, len(p))
		gotLoss := m.NewScratch(rows).LossGrad(p, x, y, got)
		if !near(gotLoss, wantLoss, 1e-12) {
			t.Errorf("density %v: loss %v, Gemm reference %v", density, gotLoss, wantLoss)
		}
		if i := slices.IndexFunc(got, func(v float64) bool { return v != v }); i >= 0 {
			t.Fatalf("grad[%d] is NaN", i)
		}
		for i := range got {
			if !near(got[i], want[i], 1e-12) {
				t.Fatalf("density %v: grad[%d] = %v, Gemm reference %v", density, i, got[i], want[i])
			}
		}
	}
}
