package model

import (
	"fmt"
	"math/rand/v2"
)

// MLP is a multilayer perceptron: fully connected layers with ReLU between
// them and a softmax cross-entropy output. With no hidden layers it is
// multinomial logistic regression in the MLP layout.
//
// The parameters are, for each layer l in order, its weights W_l as a
// fan_in x fan_out row-major matrix (row j holds the weights leaving input
// unit j; the forward pass is h = x W_l + b_l), then its biases b_l (fan_out).
// A 784-200-10 MLP has 784*200 + 200 + 200*10 + 10 = 159,010 parameters.
type MLP struct {
	sizes  []int // features, hidden widths..., classes
	init   InitScheme
	offset []int // offset[l] is where W_l starts; b_l follows it
	n      int
}

// NewMLP returns an MLP with the given hidden layer widths (none for a linear
// model), initialised by init. It panics if a width is below 1, if classes
// is below 2 or if init is unknown.
func NewMLP(features int, hidden []int, classes int, init InitScheme) *MLP {
	init.check()
	if features < 1 || classes < 2 {
		panic(fmt.Sprintf("model: NewMLP(%d features, %d classes): want at least 1 feature and 2 classes", features, classes))
	}
	m := &MLP{init: init}
	m.sizes = append(m.sizes, features)
	for i, h := range hidden {
		if h < 1 {
			panic(fmt.Sprintf("model: NewMLP: hidden layer %d has %d units, want at least 1", i, h))
		}
		m.sizes = append(m.sizes, h)
	}
	m.sizes = append(m.sizes, classes)
	for l := range m.layers() {
		m.offset = append(m.offset, m.n)
		m.n += m.sizes[l]*m.sizes[l+1] + m.sizes[l+1]
	}
	return m
}

// layers returns the number of weight layers.
func (m *MLP) layers() int { return len(m.sizes) - 1 }

// weights returns W_l and b_l as views of p.
func (m *MLP) weights(p []float64, l int) (w, b []float64) {
	in, out := m.sizes[l], m.sizes[l+1]
	o := m.offset[l]
	return p[o : o+in*out], p[o+in*out : o+in*out+out]
}

// NumParams returns the length of the parameter vector.
func (m *MLP) NumParams() int { return m.n }

// Init writes initial parameters: each W_l drawn by the model's scheme with
// fan_in and fan_out of that layer, in layout order, and zero biases.
func (m *MLP) Init(params []float64, r *rand.Rand) {
	m.checkLen("params", params)
	for l := range m.layers() {
		w, b := m.weights(params, l)
		m.init.fill(w, m.sizes[l], m.sizes[l+1], r)
		clear(b)
	}
}

func (m *MLP) checkLen(name string, p []float64) {
	if len(p) != m.n {
		panic(fmt.Sprintf("model: %s has %d elements, want %d", name, len(p), m.n))
	}
}

// NewScratch returns the buffers for batches of up to maxRows rows. They take
// about 28*maxRows*(features + hidden widths) bytes plus a copy of the
// weights of the layers after the first: 1 MB for 784-200-10 and 32 rows.
func (m *MLP) NewScratch(maxRows int) Scratch {
	if maxRows < 1 {
		panic(fmt.Sprintf("model: NewScratch(%d), want at least 1 row", maxRows))
	}
	L := m.layers()
	s := &mlpScratch{
		m:       m,
		maxRows: maxRows,
		z:       make([][]float64, L),
		dz:      make([][]float64, L),
		in:      make([]spRows, L),
		inT:     make([]spRows, L),
		wT:      make([][]float64, L),
		dzRows:  make([]spRows, L),
	}
	widest := 0
	for l := range L {
		in, out := m.sizes[l], m.sizes[l+1]
		widest = max(widest, in)
		s.z[l] = make([]float64, maxRows*out)
		s.dz[l] = make([]float64, maxRows*out)
		s.in[l] = newSpRows(maxRows, in)
		s.inT[l] = newSpRows(in, maxRows)
		if l > 0 {
			s.wT[l] = make([]float64, out*in)
			s.dzRows[l] = denseRows(maxRows, out)
		}
	}
	s.xDense = denseRows(maxRows, m.sizes[0])
	s.count = make([]int32, widest)
	s.ones = spRows{ptr: make([]int32, 2), idx: make([]int32, maxRows), val: make([]float64, maxRows)}
	for i := range maxRows {
		s.ones.idx[i] = int32(i)
		s.ones.val[i] = 1
	}
	return s
}

// Input paths of the first layer.
const (
	pathAuto   = iota // sparse below denseFraction nonzeros, else dense
	pathSparse        // only the nonzero entries
	pathDense         // every entry
)

// denseFraction is the fraction of nonzero inputs above which the first
// layer takes the dense path. Both paths do the same arithmetic on the
// nonzero inputs (a zero input only adds ±0), so the choice is one of speed:
// measured on 784-200-10 with 32 rows, the sparse path is faster up to about
// 90% nonzeros (170 µs at 19%, 370 µs at 60%, against 600 µs for the dense
// path), the dense path about 7% faster on fully dense inputs.
const denseFraction = 0.9

// mlpScratch is the Scratch of an MLP.
//
// Layer l maps its input a_l (rows x sizes[l]; a_0 = x) to z[l]
// (rows x sizes[l+1]), which holds relu(a_l W_l + b_l) for hidden layers and
// the logits for the last. in[l] holds a_l by rows and inT[l] its transpose;
// dz[l] is the loss gradient with respect to layer l's pre-activation.
type mlpScratch struct {
	m       *MLP
	maxRows int
	path    int // first-layer input path; pathAuto except in tests

	z, dz  [][]float64
	in     []spRows
	inT    []spRows
	wT     [][]float64 // wT[l] = W_l transposed (sizes[l+1] x sizes[l]), l >= 1
	dzRows []spRows    // dense views of dz[l], l >= 1
	xDense spRows      // dense view of x
	ones   spRows      // one row of ones, for bias gradients
	count  []int32
}

func (s *mlpScratch) checkBatch(params, x []float64, y []int, rows int) {
	m := s.m
	m.checkLen("params", params)
	if len(y) > rows {
		panic(fmt.Sprintf("model: %d rows, want at most %d", len(y), rows))
	}
	if len(x) != len(y)*m.sizes[0] {
		panic(fmt.Sprintf("model: x has %d elements for %d rows of %d features", len(x), len(y), m.sizes[0]))
	}
	for i, c := range y {
		if c < 0 || c >= m.sizes[len(m.sizes)-1] {
			panic(fmt.Sprintf("model: label %d of row %d outside [0, %d)", c, i, m.sizes[len(m.sizes)-1]))
		}
	}
}

// forward runs the layers on the first rows rows of x, leaving the logits in
// z[last] and each hidden layer's input by rows in in[l]. It reports whether
// the first layer took the dense path, in which case x itself is its input.
func (s *mlpScratch) forward(params, x []float64, rows int) (dense bool) {
	m := s.m
	L := m.layers()
	a := &s.in[0]
	f := m.sizes[0]
	nnz := a.gather(x, rows, f)
	switch s.path {
	case pathAuto:
		dense = float64(nnz) > denseFraction*float64(rows*f)
	case pathDense:
		dense = true
	}
	if dense {
		s.xDense.view(x, rows)
		a = &s.xDense
	}
	for l := range L {
		in, out := m.sizes[l], m.sizes[l+1]
		w, b := m.weights(params, l)
		spmm(s.z[l], out, b, a, w, in, out, out)
		if l < L-1 {
			a = &s.in[l+1]
			a.reluGather(s.z[l], rows, out)
		}
	}
	return dense
}

// LossGrad implements Scratch. With no rows the loss and gradient are zero.
func (s *mlpScratch) LossGrad(params, x []float64, y []int, grad []float64) float64 {
	m := s.m
	s.checkBatch(params, x, y, s.maxRows)
	m.checkLen("grad", grad)
	rows := len(y)
	if rows == 0 {
		clear(grad)
		return 0
	}
	L := m.layers()
	dense := s.forward(params, x, rows)
	loss := softmaxCE(s.z[L-1], s.dz[L-1], y, m.sizes[L])

	for l := L - 1; l >= 0; l-- {
		in, out := m.sizes[l], m.sizes[l+1]
		gw, gb := m.weights(grad, l)
		// dW_l = a_l^T dz_l, by rows of a_l^T; a row of zeros if input unit
		// j was never active.
		t := &s.inT[l]
		if l == 0 && dense {
			t.denseTranspose(x, rows, in)
		} else {
			s.in[l].transposeTo(t, in, s.count)
		}
		spmm(gw, out, nil, t, s.dz[l], rows, out, out)
		// db_l = the column sums of dz_l.
		s.ones.ptr[1] = int32(rows)
		spmm(gb, out, nil, &s.ones, s.dz[l], rows, out, out)
		if l == 0 {
			break
		}
		// dz_{l-1} = (dz_l W_l^T) masked by relu'(z_{l-1}).
		w, _ := m.weights(params, l)
		transpose(s.wT[l], w, in, out)
		d := &s.dzRows[l]
		d.view(s.dz[l], rows)
		spmm(s.dz[l-1], in, nil, d, s.wT[l], out, in, in)
		reluMask(s.dz[l-1][:rows*in], s.z[l-1][:rows*in])
	}
	return loss
}

// transpose writes the rows x cols matrix a into dst as cols x rows.
func transpose(dst, a []float64, rows, cols int) {
	for r := range rows {
		row := a[r*cols : (r+1)*cols]
		for c, v := range row {
			dst[c*rows+r] = v
		}
	}
}

// softmaxCE returns the mean cross-entropy of the rows of logits z
// (len(y) x classes) against labels y, and writes its gradient with respect
// to z into dz.
func softmaxCE(z, dz []float64, y []int, classes int) float64 {
	rows := len(y)
	inv := 1 / float64(rows)
	var sum float64
	for r, c := range y {
		zr := z[r*classes : (r+1)*classes]
		dr := dz[r*classes : (r+1)*classes]
		mx := zr[0]
		for _, v := range zr[1:] {
			mx = max(mx, v)
		}
		var se float64
		for k, v := range zr {
			e := detExp(v - mx)
			dr[k] = e
			se += e
		}
		sum += detLog(se) - (zr[c] - mx)
		scale := inv / se
		for k := range dr {
			dr[k] *= scale
		}
		dr[c] -= inv
	}
	return sum * inv
}

// ceSum adds the cross-entropy of each row of logits z against y to sum, in
// row order (so that a total does not depend on how rows are chunked), and
// counts the rows whose largest logit (the first, on ties) is the label.
func ceSum(z []float64, y []int, classes int, sum float64) (float64, int) {
	correct := 0
	for r, c := range y {
		zr := z[r*classes : (r+1)*classes]
		arg, mx := 0, zr[0]
		for k, v := range zr[1:] {
			if v > mx {
				arg, mx = k+1, v
			}
		}
		var se float64
		for _, v := range zr {
			se += detExp(v - mx)
		}
		sum += detLog(se) - (zr[c] - mx)
		if arg == c {
			correct++
		}
	}
	return sum, correct
}

// Eval implements Scratch.
func (s *mlpScratch) Eval(params, x []float64, y []int) (lossSum float64, correct int) {
	m := s.m
	s.checkBatch(params, x, y, len(y))
	f, classes := m.sizes[0], m.sizes[len(m.sizes)-1]
	for r0 := 0; r0 < len(y); r0 += s.maxRows {
		r1 := min(r0+s.maxRows, len(y))
		s.forward(params, x[r0*f:r1*f], r1-r0)
		var c int
		lossSum, c = ceSum(s.z[len(s.z)-1], y[r0:r1], classes, lossSum)
		correct += c
	}
	return lossSum, correct
}
