package model

import (
	"fmt"
	"math"
)

// This file holds the one numerical kernel of the package: a sparse matrix
// (rows given as index/value lists) times a dense row-major matrix. Forward
// passes, weight gradients, input gradients and bias gradients are all this
// product, with the sparse operand being the layer input, its transpose, the
// output gradient or a row of ones.
//
// Every output element is computed as
//
//	acc = init; for k in list order: acc = math.FMA(val[k], m[idx[k]*ldm+c], acc)
//
// by the assembly strips (AVX2+FMA, amd64) and by the Go fallback alike, so
// the two give bit-identical results and a result does not depend on the CPU
// or on which code ran. A fused multiply-add is exact before its one
// rounding, so this holds on every architecture.

// spRows is a sparse matrix stored by rows: row r holds the entries
// val[ptr[r]:ptr[r+1]] in columns idx[ptr[r]:ptr[r+1]] (ascending).
type spRows struct {
	ptr []int32 // rows+1 offsets into idx and val
	idx []int32
	val []float64
}

// newSpRows returns a sparse matrix with room for rows rows of up to cols
// entries each.
func newSpRows(rows, cols int) spRows {
	return spRows{
		ptr: make([]int32, rows+1),
		idx: make([]int32, rows*cols),
		val: make([]float64, rows*cols),
	}
}

// rows returns the number of rows last stored.
func (s *spRows) rows() int { return len(s.ptr) - 1 }

// nnz returns the number of stored entries.
func (s *spRows) nnz() int { return int(s.ptr[len(s.ptr)-1]) }

// gather stores the rows x cols row-major matrix a, keeping only the nonzero
// entries if sparse is true and every entry otherwise. It returns the number
// of entries stored. s must have room for rows rows of cols entries.
func (s *spRows) gather(a []float64, rows, cols int, sparse bool) int {
	s.ptr = s.ptr[:rows+1]
	a = a[:rows*cols]
	idx, val := s.idx[:rows*cols], s.val[:rows*cols]
	n := 0
	s.ptr[0] = 0
	for r := range rows {
		row := a[r*cols : (r+1)*cols]
		if sparse {
			// Branch-free: always write, advance only past a nonzero
			// (a zero pattern is too irregular to predict).
			for j, v := range row {
				idx[n] = int32(j)
				val[n] = v
				n += nonzero(v)
			}
		} else {
			for j, v := range row {
				idx[n+j] = int32(j)
				val[n+j] = v
			}
			n += cols
		}
		s.ptr[r+1] = int32(n)
	}
	return n
}

// nonzero returns 1 if v is not ±0, else 0.
func nonzero(v float64) int {
	u := math.Float64bits(v) << 1
	return int((u | -u) >> 63)
}

// transposeTo stores the transpose of s, a matrix with cols columns, in t,
// which must have room for cols rows of s.rows() entries. Entries of a row of
// t are in ascending row order of s. count is scratch of cols elements.
func (s *spRows) transposeTo(t *spRows, cols int, count []int32) {
	rows := s.rows()
	nnz := s.nnz()
	t.ptr = t.ptr[:cols+1]
	count = count[:cols]
	clear(count)
	for _, j := range s.idx[:nnz] {
		count[j]++
	}
	var sum int32
	for j, c := range count {
		t.ptr[j] = sum
		count[j] = sum
		sum += c
	}
	t.ptr[cols] = sum
	tidx, tval := t.idx[:nnz], t.val[:nnz]
	for r := range rows {
		k0, k1 := s.ptr[r], s.ptr[r+1]
		for k := k0; k < k1; k++ {
			j := s.idx[k]
			p := count[j]
			count[j]++
			tidx[p] = int32(r)
			tval[p] = s.val[k]
		}
	}
}

// spmm sets, for every row r of s and every c in [0, n),
//
//	dst[r*ldd+c] = init[c] + sum over entries (j, v) of row r of v*m[j*ldm+c]
//
// summing in list order with fused multiply-adds, where init is base, or zero
// if base is nil. Column indices of s must be below mrows, the number of rows
// of m. It panics if a buffer is too short.
func spmm(dst []float64, ldd int, base []float64, s *spRows, m []float64, mrows, ldm, n int) {
	rows := s.rows()
	if rows == 0 || n == 0 {
		return
	}
	if n > ldd || n > ldm || len(dst) < (rows-1)*ldd+n || mrows < 1 || len(m) < (mrows-1)*ldm+n ||
		(base != nil && len(base) < n) || len(s.idx) < s.nnz() || len(s.val) < s.nnz() {
		panic(fmt.Sprintf("model: spmm shapes: %d rows into dst[%d] (ld %d), n %d, m[%d] of %d rows (ld %d), base[%d]",
			rows, len(dst), ldd, n, len(m), mrows, ldm, len(base)))
	}
	if !useFMA {
		spmmGo(dst, ldd, base, s, m, ldm, n)
		return
	}
	var bp, vp *float64
	var ip *int32
	if base != nil {
		bp = &base[0]
	}
	if s.nnz() > 0 {
		vp, ip = &s.val[0], &s.idx[0]
	}
	spmmFMA(&dst[0], ldd, bp, &s.ptr[0], rows, ip, vp, &m[0], ldm, n, &tailMasks[n%4])
}

// tailMasks[t] selects the first t lanes of 4, for the last columns.
var tailMasks = [4][4]int64{{}, {-1}, {-1, -1}, {-1, -1, -1}}

// spmmGo is spmm in Go, for columns the assembly does not cover and for
// machines without it. base is nil or has n elements.
func spmmGo(dst []float64, ldd int, base []float64, s *spRows, m []float64, ldm, n int) {
	for r := range s.rows() {
		d := dst[r*ldd : r*ldd+n]
		if base != nil {
			copy(d, base)
		} else {
			clear(d)
		}
		k0, k1 := s.ptr[r], s.ptr[r+1]
		for k := k0; k < k1; k++ {
			v := s.val[k]
			row := m[int(s.idx[k])*ldm:][:n]
			for c, w := range row {
				d[c] = math.FMA(v, w, d[c])
			}
		}
	}
}
