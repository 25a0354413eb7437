//go:build !amd64 || noasm

package model

// useFMA reports whether spmm runs assembly strips; there are none here.
var useFMA = false

func fmaStrip32(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int) {
	panic("model: no assembly")
}

func fmaStrip16(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int) {
	panic("model: no assembly")
}

func fmaStrip8(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int) {
	panic("model: no assembly")
}

func fmaStrip4(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int) {
	panic("model: no assembly")
}

func fmaStripMask(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int, mask *[4]int64) {
	panic("model: no assembly")
}
