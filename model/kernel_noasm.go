//go:build !amd64 || noasm

package model

// The instruction sets the kernels can use: here only Go.
const (
	kernelGo = iota
)

// bestKernel is the best instruction set of this CPU, and kernel the one in
// use.
var (
	bestKernel = kernelGo
	kernel     = bestKernel
)

func spmmAsm(dst []float64, ldd int, base []float64, s *spRows, m []float64, ldm, n int) bool {
	return false
}

func gatherAsm(s *spRows, a []float64, rows, cols int, relu bool) (int, bool) { return 0, false }

func maskAsm(d, h []float64) bool { return false }
