package algorithms

import (
	"math"
	"testing"
)

// TestCheckVectorOverflowingSum: a sum that overflows is not a bad vector.
func TestCheckVectorOverflowingSum(t *testing.T) {
	if err := CheckVector("v", []float64{math.MaxFloat64, math.MaxFloat64, -1}, 3); err != nil {
		t.Fatalf("finite values whose sum overflows: %v", err)
	}
	if err := CheckVector("v", []float64{math.MaxFloat64, math.MaxFloat64, math.NaN()}, 3); err == nil {
		t.Fatal("a NaN behind an overflowing sum was accepted")
	}
}
