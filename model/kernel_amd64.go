//go:build amd64 && !noasm

package model

// useFMA reports whether spmm runs the AVX2+FMA assembly strips. Tests turn
// it off to check the Go fallback against them.
var useFMA = hasAVX2FMA()

// hasAVX2FMA reports whether the CPU has AVX2 and FMA and the OS saves the
// YMM registers.
func hasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, c, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if c&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // XMM and YMM state
		return false
	}
	_, b, _, _ := cpuid(7, 0)
	return b&(1<<5) != 0 // AVX2
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// The strips compute w = 32, 16, 8 or 4 adjacent output columns of one row:
// for c in [0, w), dst[c] = init[c] + sum over k < nnz of val[k]*m[idx[k]*ldm+c],
// with init = base, or zero if base is nil. fmaStripMask does the same for
// the lanes of 4 whose mask element is -1.

//go:noescape
func fmaStrip32(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)

//go:noescape
func fmaStrip16(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)

//go:noescape
func fmaStrip8(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)

//go:noescape
func fmaStrip4(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)

//go:noescape
func fmaStripMask(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int, mask *[4]int64)
