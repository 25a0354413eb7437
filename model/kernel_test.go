package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randSparse returns a rows x cols row-major matrix with about the given
// fraction of nonzero entries.
func randSparse(r *rand.Rand, rows, cols int, density float64) []float64 {
	a := make([]float64, rows*cols)
	for i := range a {
		if r.Float64() < density {
			a[i] = r.NormFloat64()
		}
	}
	return a
}

func randDense(r *rand.Rand, n int) []float64 {
	a := make([]float64, n)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	return a
}

// withKernel runs f with the kernels of instruction set k.
func withKernel(k int, f func()) {
	saved := kernel
	kernel = k
	defer func() { kernel = saved }()
	f()
}

// withGo runs f with the Go kernels.
func withGo(f func()) { withKernel(kernelGo, f) }

func TestSpmmMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 31, 32, 33, 47, 63, 64, 70, 200, 223, 224, 225, 300, 451} {
		for _, density := range []float64{0, 0.2, 1} {
			const rows, k = 5, 9
			a := randSparse(r, rows, k, density)
			ldm := n + 3 // rows of m are not contiguous
			m := randDense(r, (k-1)*ldm+n)
			base := randDense(r, n)
			s := newSpRows(rows, k)
			s.gather(a, rows, k)
			for _, b := range [][]float64{nil, base} {
				ldd := n + 1
				want := make([]float64, (rows-1)*ldd+n)
				for i := range want {
					want[i] = 99 // must be overwritten, and only within rows
				}
				got := slices.Clone(want)
				withGo(func() { spmm(want, ldd, b, &s, m, k, ldm, n) })
				for i := range rows {
					for c := range n {
						ref := 0.0
						if b != nil {
							ref = b[c]
						}
						for j := range k {
							ref += a[i*k+j] * m[j*ldm+c]
						}
						if w := want[i*ldd+c]; math.Abs(w-ref) > 1e-12*(1+math.Abs(ref)) {
							t.Fatalf("n=%d density=%v: [%d,%d] = %v, want %v", n, density, i, c, w, ref)
						}
					}
				}
				for k := kernelGo + 1; k <= bestKernel; k++ {
					copy(got, want)
					for i := range got {
						got[i] = 99
					}
					withKernel(k, func() { spmm(got, ldd, b, &s, m, k, ldm, n) })
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("kernel %d, n=%d density=%v base=%v: [%d] = %v, Go %v", k, n, density, b != nil, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// firstDiff returns the first index where a and b differ in bits, or -1.
func firstDiff(a, b []float64) int {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

// specials are inputs on the edges of ReLU and of "nonzero".
var specials = []float64{0, math.Copysign(0, -1), math.NaN(), -math.NaN(), math.Inf(1), math.Inf(-1),
	math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 1, -1, 0.5, -2}

func TestGatherKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, cols := range []int{1, 3, 7, 8, 9, 16, 17, 200, 784} {
		for _, relu := range []bool{false, true} {
			const rows = 6
			a := randSparse(r, rows, cols, 0.3)
			for i := range a {
				if r.IntN(8) == 0 {
					a[i] = specials[r.IntN(len(specials))]
				}
				if !relu && a[i] < 0 {
					a[i] = -a[i]
				}
			}
			var want spRows
			wantA := slices.Clone(a)
			withGo(func() {
				want = newSpRows(rows, cols)
				want.gatherRelu(wantA, rows, cols, relu)
			})
			for k := kernelGo; k <= bestKernel; k++ {
				got := newSpRows(rows, cols)
				gotA := slices.Clone(a)
				withKernel(k, func() { got.gatherRelu(gotA, rows, cols, relu) })
				nnz := want.nnz()
				if !slices.Equal(got.ptr, want.ptr) || !slices.Equal(got.idx[:nnz], want.idx[:nnz]) ||
					firstDiff(got.val[:nnz], want.val[:nnz]) >= 0 || firstDiff(gotA, wantA) >= 0 {
					t.Fatalf("kernel %d, cols %d, relu %v: differs from Go:\nptr %v\nwant %v", k, cols, relu, got.ptr, want.ptr)
				}
			}
			// The Go version against the definition.
			for i := range rows {
				var cols0 []int32
				for j := range cols {
					v := a[i*cols+j]
					if relu && v < 0 {
						v = 0
					}
					if math.Float64bits(wantA[i*cols+j]) != math.Float64bits(v) {
						t.Fatalf("relu(%v) = %v", a[i*cols+j], wantA[i*cols+j])
					}
					if v != 0 || v != v {
						cols0 = append(cols0, int32(j))
					}
				}
				if got := want.idx[want.ptr[i]:want.ptr[i+1]]; !slices.Equal(got, cols0) {
					t.Fatalf("cols %d relu %v row %d: columns %v, want %v", cols, relu, i, got, cols0)
				}
			}
		}
	}
}

func TestReluMaskKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 5, 8, 13, 64, 6400} {
		h := randSparse(r, 1, n, 0.5)
		for i := range h {
			h[i] = math.Abs(h[i])
			if r.IntN(6) == 0 {
				h[i] = specials[r.IntN(3)] // ±0, NaN
			}
		}
		d := randDense(r, n)
		want := slices.Clone(d)
		withGo(func() { reluMask(want, h) })
		for i := range n {
			if (h[i] == 0) != (want[i] == 0 && math.Signbit(want[i]) == false) && d[i] != 0 {
				t.Fatalf("mask: h %v, d %v -> %v", h[i], d[i], want[i])
			}
		}
		for k := kernelGo + 1; k <= bestKernel; k++ {
			got := slices.Clone(d)
			withKernel(k, func() { reluMask(got, h) })
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("kernel %d, n %d: [%d] = %v, Go %v", k, n, i, got[i], want[i])
			}
		}
	}
}

func TestTransposeTo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 7, 11
	a := randSparse(r, rows, cols, 0.3)
	s := newSpRows(rows, cols)
	s.gather(a, rows, cols)
	tr := newSpRows(cols, rows)
	s.transposeTo(&tr, cols, make([]int32, cols))
	at := make([]float64, cols*rows)
	for j := range cols {
		for k := tr.ptr[j]; k < tr.ptr[j+1]; k++ {
			if k > tr.ptr[j] && tr.idx[k] <= tr.idx[k-1] {
				t.Fatalf("row %d of the transpose is not in ascending order", j)
			}
			at[j*rows+int(tr.idx[k])] = tr.val[k]
		}
	}
	for i := range rows {
		for j := range cols {
			if at[j*rows+i] != a[i*cols+j] {
				t.Fatalf("transpose [%d,%d] = %v, want %v", j, i, at[j*rows+i], a[i*cols+j])
			}
		}
	}
}
