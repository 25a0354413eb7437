package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulps returns the distance of a and b in units in the last place.
func ulps(a, b float64) int64 {
	d := int64(math.Float64bits(a)) - int64(math.Float64bits(b))
	return max(d, -d)
}

func TestDetExpLog(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	same := 0
	const n = 200000
	for i := range n {
		x := (r.Float64() - 0.9) * 100 // mostly the softmax range, below 0
		if i%4 == 0 {
			x = (r.Float64()*2 - 1) * 700
		}
		// math.Exp is another algorithm on amd64, within an ulp or two.
		if got, want := detExp(x), math.Exp(x); ulps(got, want) > 2 {
			t.Fatalf("detExp(%v) = %v, math.Exp %v", x, got, want)
		} else if got == want {
			same++
		}
		y := math.Exp((r.Float64()*2 - 1) * 50)
		if got, want := detLog(y), math.Log(y); ulps(got, want) > 1 {
			t.Fatalf("detLog(%v) = %v, math.Log %v", y, got, want)
		}
	}
	if same < n*8/10 {
		t.Errorf("detExp equals math.Exp in only %d of %d cases", same, n)
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, 710, -745.1, -746, math.Inf(1), math.Inf(-1)} {
		if got, want := detExp(x), math.Exp(x); got != want {
			t.Errorf("detExp(%v) = %v, want %v", x, got, want)
		}
	}
	if !math.IsNaN(detExp(math.NaN())) || !math.IsNaN(detLog(math.NaN())) || !math.IsNaN(detLog(-1)) {
		t.Error("NaN cases")
	}
	for _, x := range []float64{1, 2, math.E, 0.5, math.MaxFloat64, 0, math.Inf(1)} {
		if got, want := detLog(x), math.Log(x); got != want && ulps(got, want) > 1 {
			t.Errorf("detLog(%v) = %v, want %v", x, got, want)
		}
	}
	// Where math's amd64 assembly is off: subnormals and the top of the range.
	if got, want := detLog(math.SmallestNonzeroFloat64), -1074*math.Ln2; ulps(got, want) > 1 {
		t.Errorf("detLog(2**-1074) = %v, want %v", got, want)
	}
	if got := detExp(709.7); math.IsInf(got, 0) || math.Abs(detLog(got)-709.7) > 1e-13 {
		t.Errorf("detExp(709.7) = %v", got)
	}
}
