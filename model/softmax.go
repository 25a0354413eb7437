package model

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Softmax is multinomial logistic regression with an optional L2 penalty on
// the weights, the model of FedProx's synthetic tasks (there with l2 = 1e-3).
//
// The parameters are W, a classes x features row-major matrix (row c holds
// the weights of class c; logits are W x + b), followed by b (classes). The
// loss is the mean cross-entropy over the batch plus (l2/2)*||W||^2; the
// biases are not penalised. A Scratch's LossGrad includes that term; its
// Eval sums the cross-entropy alone, since the term belongs to no row (add
// len(y) times Penalty for the summed objective).
type Softmax struct {
	features, classes int
	l2                float64
	init              InitScheme
}

// NewSoftmax returns a softmax regression model. It panics if features is
// below 1, classes below 2, l2 negative or not finite, or init unknown.
func NewSoftmax(features, classes int, l2 float64, init InitScheme) *Softmax {
	init.check()
	if features < 1 || classes < 2 {
		panic(fmt.Sprintf("model: NewSoftmax(%d features, %d classes): want at least 1 feature and 2 classes", features, classes))
	}
	if !(l2 >= 0) || math.IsInf(l2, 0) {
		panic(fmt.Sprintf("model: NewSoftmax: l2 = %v, want a finite number >= 0", l2))
	}
	return &Softmax{features: features, classes: classes, l2: l2, init: init}
}

// NumParams returns classes*features + classes.
func (m *Softmax) NumParams() int { return m.classes*m.features + m.classes }

// Init draws W by the model's scheme (fan_in = features, fan_out = classes)
// and zeroes b.
func (m *Softmax) Init(params []float64, r *rand.Rand) {
	m.checkLen("params", params)
	w, b := m.split(params)
	m.init.fill(w, m.features, m.classes, r)
	clear(b)
}

// Penalty returns the L2 term (l2/2)*||W||^2 of the loss. LossGrad includes
// it; Eval's summed loss does not, since it belongs to no row.
func (m *Softmax) Penalty(params []float64) float64 {
	m.checkLen("params", params)
	if m.l2 == 0 {
		return 0
	}
	w, _ := m.split(params)
	// Four running sums, for speed; the order is fixed, so is the result.
	var ss [4]float64
	for len(w) >= 4 {
		ss[0] = math.FMA(w[0], w[0], ss[0])
		ss[1] = math.FMA(w[1], w[1], ss[1])
		ss[2] = math.FMA(w[2], w[2], ss[2])
		ss[3] = math.FMA(w[3], w[3], ss[3])
		w = w[4:]
	}
	for i, v := range w {
		ss[i] = math.FMA(v, v, ss[i])
	}
	return 0.5 * m.l2 * ((ss[0] + ss[1]) + (ss[2] + ss[3]))
}

func (m *Softmax) split(p []float64) (w, b []float64) {
	n := m.classes * m.features
	return p[:n], p[n : n+m.classes]
}

func (m *Softmax) checkLen(name string, p []float64) {
	if len(p) != m.NumParams() {
		panic(fmt.Sprintf("model: %s has %d elements, want %d", name, len(p), m.NumParams()))
	}
}

// NewScratch returns the buffers for batches of up to maxRows rows.
func (m *Softmax) NewScratch(maxRows int) Scratch {
	if maxRows < 1 {
		panic(fmt.Sprintf("model: NewScratch(%d), want at least 1 row", maxRows))
	}
	f, k := m.features, m.classes
	s := &softmaxScratch{
		m:       m,
		maxRows: maxRows,
		wT:      make([]float64, f*k),
		z:       make([]float64, maxRows*k),
		dz:      make([]float64, maxRows*k),
		x:       newSpRows(maxRows, f),
		dzRows:  newSpRows(k, maxRows),
		ones:    spRows{ptr: make([]int32, 2), idx: make([]int32, maxRows), val: make([]float64, maxRows)},
	}
	for i := range maxRows {
		s.ones.idx[i] = int32(i)
		s.ones.val[i] = 1
	}
	return s
}

// softmaxScratch is the Scratch of a Softmax.
type softmaxScratch struct {
	m       *Softmax
	maxRows int
	wT      []float64 // W transposed, features x classes
	z, dz   []float64 // logits and their gradient, rows x classes
	x       spRows    // the nonzero inputs by rows
	dzRows  spRows    // dz transposed, by rows
	ones    spRows
}

func (s *softmaxScratch) checkBatch(params, x []float64, y []int, rows int) {
	m := s.m
	m.checkLen("params", params)
	if len(y) > rows {
		panic(fmt.Sprintf("model: %d rows, want at most %d", len(y), rows))
	}
	if len(x) != len(y)*m.features {
		panic(fmt.Sprintf("model: x has %d elements for %d rows of %d features", len(x), len(y), m.features))
	}
	for i, c := range y {
		if c < 0 || c >= m.classes {
			panic(fmt.Sprintf("model: label %d of row %d outside [0, %d)", c, i, m.classes))
		}
	}
}

// transposeW stores W transposed in wT for forward.
func (s *softmaxScratch) transposeW(params []float64) {
	w, _ := s.m.split(params)
	transpose(s.wT, w, s.m.classes, s.m.features)
}

// forward writes the logits of the rows of x into z; wT must hold W
// transposed.
func (s *softmaxScratch) forward(params, x []float64, rows int) {
	m := s.m
	_, b := m.split(params)
	s.x.gather(x, rows, m.features)
	spmm(s.z, m.classes, b, &s.x, s.wT, m.features, m.classes, m.classes)
}

// LossGrad implements Scratch. With no rows only the L2 term remains.
func (s *softmaxScratch) LossGrad(params, x []float64, y []int, grad []float64) float64 {
	m := s.m
	s.checkBatch(params, x, y, s.maxRows)
	m.checkLen("grad", grad)
	rows := len(y)
	w, _ := m.split(params)
	gw, gb := m.split(grad)
	var loss float64
	if rows == 0 {
		clear(grad)
	} else {
		s.transposeW(params)
		s.forward(params, x, rows)
		loss = softmaxCE(s.z, s.dz, y, m.classes)
		// dW = dz^T x, by dense rows of dz^T against the rows of x.
		s.dzRows.denseTranspose(s.dz, rows, m.classes)
		spmm(gw, m.features, nil, &s.dzRows, x, rows, m.features, m.features)
		s.ones.ptr[1] = int32(rows)
		spmm(gb, m.classes, nil, &s.ones, s.dz, rows, m.classes, m.classes)
	}
	if m.l2 != 0 {
		for i, v := range w {
			gw[i] = math.FMA(m.l2, v, gw[i])
		}
		loss += m.Penalty(params)
	}
	return loss
}

// Eval implements Scratch. lossSum is the summed cross-entropy alone.
func (s *softmaxScratch) Eval(params, x []float64, y []int) (lossSum float64, correct int) {
	m := s.m
	s.checkBatch(params, x, y, len(y))
	f := m.features
	s.transposeW(params)
	for r0 := 0; r0 < len(y); r0 += s.maxRows {
		r1 := min(r0+s.maxRows, len(y))
		s.forward(params, x[r0*f:r1*f], r1-r0)
		var c int
		lossSum, c = ceSum(s.z, y[r0:r1], m.classes, lossSum)
		correct += c
	}
	return lossSum, correct
}
