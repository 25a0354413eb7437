//go:build !amd64 || noasm

package model

// useFMA reports whether spmm runs assembly strips; there are none here.
var useFMA = false

func spmmFMA(dst *float64, ldd int, base *float64, ptr *int32, rows int, idx *int32, val *float64, m *float64, ldm int, n int, mask *[4]int64) {
	panic("model: no assembly")
}
