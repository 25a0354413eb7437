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

// spmmFMA is spmm for rows rows of the sparse matrix given by ptr, idx and
// val, with the same arguments otherwise; mask is tailMasks[n%4]. Its callers
// check every bound.
//
//go:noescape
func spmmFMA(dst *float64, ldd int, base *float64, ptr *int32, rows int, idx *int32, val *float64, m *float64, ldm int, n int, mask *[4]int64)
