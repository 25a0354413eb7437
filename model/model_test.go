package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// batch returns rows x features inputs with about the given fraction of
// nonzeros (values in (0, 1] when sparse, normal otherwise) and random
// labels.
func batch(r *rand.Rand, rows, features, classes int, density float64) ([]float64, []int) {
	x := make([]float64, rows*features)
	for i := range x {
		switch {
		case density >= 1:
			x[i] = r.NormFloat64()
		case r.Float64() < density:
			x[i] = 1 - r.Float64()
		}
	}
	y := make([]int, rows)
	for i := range y {
		y[i] = r.IntN(classes)
	}
	return x, y
}

// initParams returns parameters of m drawn with He init and small random
// biases, so that bias gradients are exercised away from zero.
func initParams(m Model, r *rand.Rand) []float64 {
	p := make([]float64, m.NumParams())
	m.Init(p, r)
	for i := range p {
		if p[i] == 0 {
			p[i] = 0.1 * r.NormFloat64()
		}
	}
	return p
}

// checkGrad compares s's gradient at p with central finite differences of
// its loss.
func checkGrad(t *testing.T, s Scratch, p, x []float64, y []int) {
	t.Helper()
	n := len(p)
	g := make([]float64, n)
	for i := range g {
		g[i] = math.NaN() // LossGrad must write every element
	}
	s.LossGrad(p, x, y, g)
	tmp := make([]float64, n)
	q := slices.Clone(p)
	const h = 1e-5
	var num, den float64
	for i := range n {
		q[i] = p[i] + h
		lp := s.LossGrad(q, x, y, tmp)
		q[i] = p[i] - h
		lm := s.LossGrad(q, x, y, tmp)
		q[i] = p[i]
		fd := (lp - lm) / (2 * h)
		if d := math.Abs(g[i] - fd); !(d <= 1e-6*math.Max(math.Abs(g[i]), math.Abs(fd))+1e-8) {
			t.Errorf("grad[%d] = %v, finite difference %v", i, g[i], fd)
		}
		num += (g[i] - fd) * (g[i] - fd)
		den += (math.Abs(g[i]) + math.Abs(fd)) * (math.Abs(g[i]) + math.Abs(fd))
	}
	if rel := math.Sqrt(num / den); !(rel < 1e-6) {
		t.Errorf("relative error of the gradient = %.3g, want < 1e-6", rel)
	}
}

func TestMLPGradient(t *testing.T) {
	for _, hidden := range [][]int{nil, {5}, {5, 4}} {
		for _, density := range []float64{0.3, 1} {
			for _, path := range []int{pathAuto, pathSparse, pathDense} {
				name := fmt.Sprintf("hidden=%v/density=%v/path=%d", hidden, density, path)
				t.Run(name, func(t *testing.T) {
					r := rand.New(rand.NewPCG(1, 2))
					m := NewMLP(7, hidden, 3, InitHe)
					p := initParams(m, r)
					x, y := batch(r, 5, 7, 3, density)
					s := m.NewScratch(6)
					s.(*mlpScratch).path = path
					checkGrad(t, s, p, x, y)
				})
			}
		}
	}
}

func TestSoftmaxGradient(t *testing.T) {
	for _, l2 := range []float64{0, 0.3} {
		for _, density := range []float64{0.3, 1} {
			t.Run(fmt.Sprintf("l2=%v/density=%v", l2, density), func(t *testing.T) {
				r := rand.New(rand.NewPCG(1, 2))
				m := NewSoftmax(6, 4, l2, InitGlorot)
				p := initParams(m, r)
				x, y := batch(r, 5, 6, 4, density)
				checkGrad(t, m.NewScratch(5), p, x, y)
			})
		}
	}
}

// refMLPLoss is the mean cross-entropy of an MLP in plain loops.
func refMLPLoss(m *MLP, p, x []float64, y []int) (mean float64, correct int) {
	f := m.sizes[0]
	for r := range y {
		a := x[r*f : (r+1)*f]
		for l := range m.layers() {
			w, b := m.weights(p, l)
			in, out := m.sizes[l], m.sizes[l+1]
			z := slices.Clone(b)
			for j := range in {
				for c := range out {
					z[c] += a[j] * w[j*out+c]
				}
			}
			if l < m.layers()-1 {
				for c := range z {
					z[c] = math.Max(z[c], 0)
				}
			}
			a = z
		}
		loss, ok := refCE(a, y[r])
		mean += loss
		if ok {
			correct++
		}
	}
	return mean / float64(len(y)), correct
}

// refCE returns the cross-entropy of logits z against label c and whether
// the label has the largest logit.
func refCE(z []float64, c int) (float64, bool) {
	var se float64
	for _, v := range z {
		se += math.Exp(v)
	}
	return math.Log(se) - z[c], slices.Index(z, slices.Max(z)) == c
}

func refSoftmaxLoss(m *Softmax, p, x []float64, y []int) (mean float64, correct int) {
	w, b := m.split(p)
	for r := range y {
		z := slices.Clone(b)
		for c := range z {
			for j := range m.features {
				z[c] += w[c*m.features+j] * x[r*m.features+j]
			}
		}
		loss, ok := refCE(z, y[r])
		mean += loss
		if ok {
			correct++
		}
	}
	return mean/float64(len(y)) + m.Penalty(p), correct
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestLossAndEval(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows = 11
	mlp := NewMLP(9, []int{6, 5}, 4, InitHe)
	soft := NewSoftmax(9, 4, 0.2, InitGlorot)
	for _, density := range []float64{0.2, 1} {
		x, y := batch(r, rows, 9, 4, density)
		for _, tc := range []struct {
			m   Model
			ref func(p []float64) (float64, int)
			pen func(p []float64) float64
		}{
			{mlp, func(p []float64) (float64, int) { return refMLPLoss(mlp, p, x, y) }, func([]float64) float64 { return 0 }},
			{soft, func(p []float64) (float64, int) { return refSoftmaxLoss(soft, p, x, y) }, soft.Penalty},
		} {
			p := initParams(tc.m, r)
			want, wantCorrect := tc.ref(p)
			got := tc.m.NewScratch(rows).LossGrad(p, x, y, make([]float64, len(p)))
			if !near(got, want, 1e-12) {
				t.Errorf("%T density %v: LossGrad = %v, reference %v", tc.m, density, got, want)
			}
			// Eval in chunks of 3, 4 and all rows at once.
			for _, chunk := range []int{3, 4, rows} {
				sum, correct := tc.m.NewScratch(chunk).Eval(p, x, y)
				if e := sum/rows + tc.pen(p); !near(e, want, 1e-12) || correct != wantCorrect {
					t.Errorf("%T density %v chunk %d: Eval = %v/%d + penalty = %v, %d correct; want %v, %d",
						tc.m, density, chunk, sum, rows, e, correct, want, wantCorrect)
				}
			}
		}
	}
}

func TestLayerOnePathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := NewMLP(50, []int{20}, 10, InitGlorot)
	p := initParams(m, r)
	for _, density := range []float64{0.19, 1} {
		x, y := batch(r, 16, 50, 10, density)
		var grads [2][]float64
		var losses [2]float64
		for i, path := range []int{pathSparse, pathDense} {
			s := m.NewScratch(16)
			s.(*mlpScratch).path = path
			grads[i] = make([]float64, m.NumParams())
			losses[i] = s.LossGrad(p, x, y, grads[i])
		}
		if !near(losses[0], losses[1], 1e-12) {
			t.Errorf("density %v: sparse loss %v, dense %v", density, losses[0], losses[1])
		}
		for i := range grads[0] {
			if !near(grads[0][i], grads[1][i], 1e-12) {
				t.Fatalf("density %v: grad[%d] sparse %v, dense %v", density, i, grads[0][i], grads[1][i])
			}
		}
	}
}

// lossGradBits runs LossGrad and returns its loss and gradient.
func lossGradBits(s Scratch, p, x []float64, y []int) (float64, []float64) {
	g := make([]float64, len(p))
	return s.LossGrad(p, x, y, g), g
}

func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(u, v float64) bool { return math.Float64bits(u) == math.Float64bits(v) })
}

func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []Model{NewMLP(40, []int{33, 7}, 5, InitHe), NewSoftmax(40, 5, 1e-3, InitGlorot)} {
		p := initParams(m, r)
		for _, density := range []float64{0.19, 1} {
			x, y := batch(r, 13, 40, 5, density)
			s := m.NewScratch(13)
			l1, g1 := lossGradBits(s, p, x, y)
			l2, g2 := lossGradBits(s, p, x, y) // same scratch again
			prev := runtime.GOMAXPROCS(1)
			l3, g3 := lossGradBits(m.NewScratch(20), p, x, y) // fresh, larger scratch
			runtime.GOMAXPROCS(prev)
			var l4 float64
			var g4 []float64
			withGo(func() { l4, g4 = lossGradBits(m.NewScratch(13), p, x, y) })
			for i, c := range []struct {
				l float64
				g []float64
			}{{l2, g2}, {l3, g3}, {l4, g4}} {
				if math.Float64bits(c.l) != math.Float64bits(l1) || !sameBits(c.g, g1) {
					t.Errorf("%T density %v: run %d differs from the first (loss %v vs %v)", m, density, i+2, c.l, l1)
				}
			}
			e1, c1 := s.Eval(p, x, y)
			var e2 float64
			var c2 int
			withGo(func() { e2, c2 = m.NewScratch(4).Eval(p, x, y) })
			if math.Float64bits(e1) != math.Float64bits(e2) || c1 != c2 {
				t.Errorf("%T density %v: Eval %v, %d then %v, %d", m, density, e1, c1, e2, c2)
			}
		}
	}
}

func TestNumParams(t *testing.T) {
	for _, tc := range []struct {
		m    Model
		want int
	}{
		{NewMLP(784, []int{200}, 10, InitHe), 159010},
		{NewMLP(784, []int{200, 200}, 10, InitHe), 199210},
		{NewMLP(784, nil, 10, InitZeros), 7850},
		{NewSoftmax(60, 10, 1e-3, InitZeros), 610},
	} {
		if got := tc.m.NumParams(); got != tc.want {
			t.Errorf("%T%v: NumParams = %d, want %d", tc.m, tc.m, got, tc.want)
		}
	}
}

func TestInit(t *testing.T) {
	const in, out = 784, 200
	m := NewMLP(in, []int{out}, 10, InitZeros)
	p := make([]float64, m.NumParams())
	for i := range p {
		p[i] = 1
	}
	m.Init(p, rand.New(rand.NewPCG(1, 2)))
	if i := slices.IndexFunc(p, func(v float64) bool { return v != 0 }); i >= 0 {
		t.Errorf("zeros: p[%d] = %v", i, p[i])
	}

	for _, scheme := range []InitScheme{InitGlorot, InitHe} {
		m := NewMLP(in, []int{out}, 10, scheme)
		p := make([]float64, m.NumParams())
		for i := range p {
			p[i] = 1
		}
		m.Init(p, rand.New(rand.NewPCG(1, 2)))
		w1, b1 := m.weights(p, 0)
		_, b2 := m.weights(p, 1)
		if slices.ContainsFunc(b1, func(v float64) bool { return v != 0 }) ||
			slices.ContainsFunc(b2, func(v float64) bool { return v != 0 }) {
			t.Errorf("%s: biases not zero", scheme)
		}
		var mean, sq float64
		for _, v := range w1 {
			mean += v
			sq += v * v
		}
		mean /= float64(len(w1))
		sd := math.Sqrt(sq/float64(len(w1)) - mean*mean)
		switch scheme {
		case InitGlorot:
			a := math.Sqrt(6.0 / (in + out))
			if lo, hi := slices.Min(w1), slices.Max(w1); lo < -a || hi > a || hi < 0.99*a || lo > -0.99*a {
				t.Errorf("glorot: weights in [%v, %v], want them to fill [-%v, %v]", lo, hi, a, a)
			}
			if want := a / math.Sqrt(3); math.Abs(sd-want) > 0.01*want {
				t.Errorf("glorot: sd %v, want %v", sd, want)
			}
		case InitHe:
			if want := math.Sqrt(2.0 / in); math.Abs(sd-want) > 0.01*want || math.Abs(mean) > 0.01*want {
				t.Errorf("he: mean %v sd %v, want 0 and %v", mean, sd, want)
			}
		}
		q := make([]float64, len(p))
		m.Init(q, rand.New(rand.NewPCG(1, 2)))
		if !sameBits(p, q) {
			t.Errorf("%s: two inits from the same seed differ", scheme)
		}
		m.Init(q, rand.New(rand.NewPCG(1, 3)))
		if sameBits(p, q) {
			t.Errorf("%s: inits from different seeds are equal", scheme)
		}
	}

	s := NewSoftmax(60, 10, 0, InitGlorot)
	p = make([]float64, s.NumParams())
	s.Init(p, rand.New(rand.NewPCG(1, 2)))
	w, _ := s.split(p)
	if a := math.Sqrt(6.0 / 70); slices.Max(w) > a || slices.Min(w) < -a || slices.Max(w) == 0 {
		t.Errorf("softmax glorot: weights in [%v, %v], want within ±%v", slices.Min(w), slices.Max(w), a)
	}
}

func TestParseInit(t *testing.T) {
	for _, s := range []string{"zeros", "glorot", "he"} {
		if got, err := ParseInit(s); err != nil || string(got) != s {
			t.Errorf("ParseInit(%q) = %q, %v", s, got, err)
		}
	}
	_, err := ParseInit("xavier")
	if err == nil {
		t.Fatal(`ParseInit("xavier") succeeded`)
	}
	for _, want := range []string{"xavier", "zeros", "glorot", "he"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []Model{NewMLP(784, []int{200}, 10, InitHe), NewSoftmax(784, 10, 1e-3, InitHe)} {
		p := initParams(m, r)
		g := make([]float64, len(p))
		for _, density := range []float64{0.19, 1} {
			x, y := batch(r, 32, 784, 10, density)
			s := m.NewScratch(32)
			if a := testing.AllocsPerRun(10, func() { s.LossGrad(p, x, y, g) }); a != 0 {
				t.Errorf("%T density %v: LossGrad allocates %v times", m, density, a)
			}
			if a := testing.AllocsPerRun(10, func() { s.Eval(p, x, y) }); a != 0 {
				t.Errorf("%T density %v: Eval allocates %v times", m, density, a)
			}
		}
	}
}

func TestShapePanics(t *testing.T) {
	m := NewMLP(4, []int{3}, 2, InitHe)
	s := m.NewScratch(2)
	p := make([]float64, m.NumParams())
	g := make([]float64, m.NumParams())
	for name, f := range map[string]func(){
		"too many rows": func() { s.LossGrad(p, make([]float64, 12), []int{0, 1, 0}, g) },
		"short x":       func() { s.LossGrad(p, make([]float64, 7), []int{0, 1}, g) },
		"short grad":    func() { s.LossGrad(p, make([]float64, 8), []int{0, 1}, g[1:]) },
		"bad label":     func() { s.Eval(p, make([]float64, 8), []int{0, 2}) },
		"bad hidden":    func() { NewMLP(4, []int{0}, 2, InitHe) },
		"bad scheme":    func() { NewSoftmax(4, 2, 0, "xavier") },
		"negative l2":   func() { NewSoftmax(4, 2, -1, InitHe) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
