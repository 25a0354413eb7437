package model

import (
	"math"
	"math/rand/v2"
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

// withGo runs f with the assembly strips turned off.
func withGo(t testing.TB, f func()) {
	t.Helper()
	saved := useFMA
	useFMA = false
	defer func() { useFMA = saved }()
	f()
}

func TestSpmmMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 10, 15, 16, 31, 32, 33, 47, 63, 64, 70, 200} {
		for _, density := range []float64{0, 0.2, 1} {
			const rows, k = 5, 9
			a := randSparse(r, rows, k, density)
			ldm := n + 3 // rows of m are not contiguous
			m := randDense(r, (k-1)*ldm+n)
			base := randDense(r, n)
			s := newSpRows(rows, k)
			s.gather(a, rows, k, true)
			for _, b := range [][]float64{nil, base} {
				ldd := n + 1
				got := make([]float64, (rows-1)*ldd+n)
				for i := range got {
					got[i] = 99 // must be overwritten
				}
				spmm(got, ldd, b, &s, m, k, ldm, n)
				want := make([]float64, len(got))
				copy(want, got)
				withGo(t, func() { spmm(want, ldd, b, &s, m, k, ldm, n) })
				for i := range rows {
					for c := range n {
						g, w := got[i*ldd+c], want[i*ldd+c]
						if math.Float64bits(g) != math.Float64bits(w) {
							t.Fatalf("n=%d density=%v base=%v: asm [%d,%d] = %v, Go %v", n, density, b != nil, i, c, g, w)
						}
						ref := 0.0
						if b != nil {
							ref = b[c]
						}
						for j := range k {
							ref += a[i*k+j] * m[j*ldm+c]
						}
						if math.Abs(g-ref) > 1e-12*(1+math.Abs(ref)) {
							t.Fatalf("n=%d density=%v: [%d,%d] = %v, want %v", n, density, i, c, g, ref)
						}
					}
					for c := n; c < ldd && i < rows-1; c++ {
						if got[i*ldd+c] != 99 {
							t.Fatalf("n=%d: wrote outside the row at [%d,%d]", n, i, c)
						}
					}
				}
			}
		}
	}
}

func TestTransposeTo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 7, 11
	a := randSparse(r, rows, cols, 0.3)
	s := newSpRows(rows, cols)
	s.gather(a, rows, cols, true)
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
