//go:build amd64 && !noasm

package model

//go:generate go run kernel_gen.go

// The instruction sets the kernels can use, in increasing order.
const (
	kernelGo     = iota // the Go code in kernel.go
	kernelAVX2          // AVX2 and FMA
	kernelAVX512        // AVX-512 F
)

// bestKernel is the best instruction set of this CPU, and kernel the one in
// use. Tests lower kernel to check every set against the Go code.
var (
	bestKernel = detectKernel()
	kernel     = bestKernel
)

// detectKernel reports which instruction sets the CPU has and the OS
// saves the registers of.
func detectKernel() int {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return kernelGo
	}
	_, _, c, _ := cpuid(1, 0)
	const fma, osxsave, avx, popcnt = 1 << 12, 1 << 27, 1 << 28, 1 << 23
	if c&(fma|osxsave|avx|popcnt) != fma|osxsave|avx|popcnt {
		return kernelGo
	}
	xcr0, _ := xgetbv()
	if xcr0&6 != 6 { // XMM and YMM state
		return kernelGo
	}
	_, b, _, _ := cpuid(7, 0)
	if b&(1<<5) == 0 { // AVX2
		return kernelGo
	}
	if b&(1<<16) == 0 || xcr0&0xe0 != 0xe0 { // AVX-512 F; opmask and ZMM state
		return kernelAVX2
	}
	return kernelAVX512
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// spmmAsm runs spmm in assembly if the CPU allows and reports whether it did.
// spmm has checked every bound.
func spmmAsm(dst []float64, ldd int, base []float64, s *spRows, m []float64, ldm, n int) bool {
	rows := s.rows()
	var vp *float64
	var ip *int32
	if s.nnz() > 0 {
		vp, ip = &s.val[0], &s.idx[0]
	}
	switch kernel {
	case kernelAVX2:
		var bp *float64
		if base != nil {
			bp = &base[0]
		}
		spmmAVX2(&dst[0], ldd, bp, &s.ptr[0], rows, ip, vp, &m[0], ldm, n, &tailMasks[n%4])
	case kernelAVX512:
		// Passes of at most maxGroups groups of 8 columns, balanced.
		groups := (n + 7) / 8
		passes := (groups + maxGroups - 1) / maxGroups
		per := (groups + passes - 1) / passes
		for c := 0; c < n; {
			w := min(8*per, n-c)
			g := (w + 7) / 8
			kmask := uint64(1)<<(w-8*(g-1)) - 1
			var bp *float64
			if base != nil {
				bp = &base[c]
			}
			spmm512[g-1](&dst[c], ldd, bp, &s.ptr[0], rows, ip, vp, &m[c], ldm, kmask)
			c += w
		}
	default:
		return false
	}
	return true
}

// tailMasks[t] selects the first t lanes of 4.
var tailMasks = [4][4]int64{{}, {-1}, {-1, -1}, {-1, -1, -1}}

// gatherAsm runs gather (with relu, reluGather) in assembly if the CPU
// allows and reports the number of entries stored and whether it ran.
func gatherAsm(s *spRows, a []float64, rows, cols int, relu bool) (int, bool) {
	if kernel < kernelAVX512 || rows == 0 || cols == 0 || len(s.idx) < rows*cols+gatherSlack || len(s.val) < rows*cols+gatherSlack {
		return 0, false
	}
	return gather512(&a[0], rows, cols, &s.ptr[0], &s.idx[0], &s.val[0], relu), true
}

// maskAsm runs reluMask in assembly if the CPU allows and reports whether
// it did.
func maskAsm(d, h []float64) bool {
	if kernel < kernelAVX512 || len(d) == 0 {
		return false
	}
	mask512(&d[0], &h[0], len(d))
	return true
}

//go:noescape
func spmmAVX2(dst *float64, ldd int, base *float64, ptr *int32, rows int, idx *int32, val *float64, m *float64, ldm int, n int, mask *[4]int64)

//go:noescape
func gather512(a *float64, rows, cols int, ptr *int32, idx *int32, val *float64, relu bool) int

//go:noescape
func mask512(d, h *float64, n int)
