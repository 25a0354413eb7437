// AVX2+FMA strips of spmm (kernel.go). Each strip computes w adjacent
// columns of one output row, keeping them in registers while it walks the
// row's index/value list, so each output element is read and written once.
// Every strip must stay in step with spmmGo: start from base (or zero), then
// one fused multiply-add per list entry, in list order.

//go:build amd64 && !noasm

#include "textflag.h"

// Register use in the strips:
//	DI dst, SI base (0: start from zero), R8 val, R9 idx, CX nnz,
//	R10 m (already offset to the strip's first column), R11 ldm in bytes,
//	AX row offset in bytes, Y0..Y7 accumulators, Y15 the broadcast value.

// func fmaStrip32(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)
TEXT ·fmaStrip32(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ base+8(FP), SI
	MOVQ val+16(FP), R8
	MOVQ idx+24(FP), R9
	MOVQ nnz+32(FP), CX
	MOVQ m+40(FP), R10
	MOVQ ldm+48(FP), R11
	SHLQ $3, R11
	TESTQ SI, SI
	JZ    zero
	VMOVUPD 0(SI), Y0
	VMOVUPD 32(SI), Y1
	VMOVUPD 64(SI), Y2
	VMOVUPD 96(SI), Y3
	VMOVUPD 128(SI), Y4
	VMOVUPD 160(SI), Y5
	VMOVUPD 192(SI), Y6
	VMOVUPD 224(SI), Y7
	JMP   start
zero:
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
start:
	TESTQ CX, CX
	JZ    done
loop:
	MOVLQSX (R9), AX
	IMULQ R11, AX
	VBROADCASTSD (R8), Y15
	VFMADD231PD 0(R10)(AX*1), Y15, Y0
	VFMADD231PD 32(R10)(AX*1), Y15, Y1
	VFMADD231PD 64(R10)(AX*1), Y15, Y2
	VFMADD231PD 96(R10)(AX*1), Y15, Y3
	VFMADD231PD 128(R10)(AX*1), Y15, Y4
	VFMADD231PD 160(R10)(AX*1), Y15, Y5
	VFMADD231PD 192(R10)(AX*1), Y15, Y6
	VFMADD231PD 224(R10)(AX*1), Y15, Y7
	ADDQ $8, R8
	ADDQ $4, R9
	DECQ CX
	JNZ  loop
done:
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VMOVUPD Y4, 128(DI)
	VMOVUPD Y5, 160(DI)
	VMOVUPD Y6, 192(DI)
	VMOVUPD Y7, 224(DI)
	VZEROUPPER
	RET

// func fmaStrip16(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)
TEXT ·fmaStrip16(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ base+8(FP), SI
	MOVQ val+16(FP), R8
	MOVQ idx+24(FP), R9
	MOVQ nnz+32(FP), CX
	MOVQ m+40(FP), R10
	MOVQ ldm+48(FP), R11
	SHLQ $3, R11
	TESTQ SI, SI
	JZ    zero
	VMOVUPD 0(SI), Y0
	VMOVUPD 32(SI), Y1
	VMOVUPD 64(SI), Y2
	VMOVUPD 96(SI), Y3
	JMP   start
zero:
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
start:
	TESTQ CX, CX
	JZ    done
loop:
	MOVLQSX (R9), AX
	IMULQ R11, AX
	VBROADCASTSD (R8), Y15
	VFMADD231PD 0(R10)(AX*1), Y15, Y0
	VFMADD231PD 32(R10)(AX*1), Y15, Y1
	VFMADD231PD 64(R10)(AX*1), Y15, Y2
	VFMADD231PD 96(R10)(AX*1), Y15, Y3
	ADDQ $8, R8
	ADDQ $4, R9
	DECQ CX
	JNZ  loop
done:
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VZEROUPPER
	RET

// func fmaStrip8(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)
TEXT ·fmaStrip8(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ base+8(FP), SI
	MOVQ val+16(FP), R8
	MOVQ idx+24(FP), R9
	MOVQ nnz+32(FP), CX
	MOVQ m+40(FP), R10
	MOVQ ldm+48(FP), R11
	SHLQ $3, R11
	TESTQ SI, SI
	JZ    zero
	VMOVUPD 0(SI), Y0
	VMOVUPD 32(SI), Y1
	JMP   start
zero:
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
start:
	TESTQ CX, CX
	JZ    done
loop:
	MOVLQSX (R9), AX
	IMULQ R11, AX
	VBROADCASTSD (R8), Y15
	VFMADD231PD 0(R10)(AX*1), Y15, Y0
	VFMADD231PD 32(R10)(AX*1), Y15, Y1
	ADDQ $8, R8
	ADDQ $4, R9
	DECQ CX
	JNZ  loop
done:
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VZEROUPPER
	RET

// func fmaStrip4(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int)
TEXT ·fmaStrip4(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ base+8(FP), SI
	MOVQ val+16(FP), R8
	MOVQ idx+24(FP), R9
	MOVQ nnz+32(FP), CX
	MOVQ m+40(FP), R10
	MOVQ ldm+48(FP), R11
	SHLQ $3, R11
	TESTQ SI, SI
	JZ    zero
	VMOVUPD 0(SI), Y0
	JMP   start
zero:
	VXORPD Y0, Y0, Y0
start:
	TESTQ CX, CX
	JZ    done
loop:
	MOVLQSX (R9), AX
	IMULQ R11, AX
	VBROADCASTSD (R8), Y15
	VFMADD231PD 0(R10)(AX*1), Y15, Y0
	ADDQ $8, R8
	ADDQ $4, R9
	DECQ CX
	JNZ  loop
done:
	VMOVUPD Y0, 0(DI)
	VZEROUPPER
	RET

// func fmaStripMask(dst, base, val *float64, idx *int32, nnz int, m *float64, ldm int, mask *[4]int64)
//
// fmaStripMask is fmaStrip4 for the lanes whose mask element is -1; it reads
// and writes no other element.
TEXT ·fmaStripMask(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ base+8(FP), SI
	MOVQ val+16(FP), R8
	MOVQ idx+24(FP), R9
	MOVQ nnz+32(FP), CX
	MOVQ m+40(FP), R10
	MOVQ ldm+48(FP), R11
	MOVQ mask+56(FP), DX
	SHLQ $3, R11
	VMOVDQU (DX), Y14
	TESTQ SI, SI
	JZ    zero
	VMASKMOVPD (SI), Y14, Y0
	JMP   start
zero:
	VXORPD Y0, Y0, Y0
start:
	TESTQ CX, CX
	JZ    done
loop:
	MOVLQSX (R9), AX
	IMULQ R11, AX
	VBROADCASTSD (R8), Y15
	VMASKMOVPD (R10)(AX*1), Y14, Y1
	VFMADD231PD Y1, Y15, Y0
	ADDQ $8, R8
	ADDQ $4, R9
	DECQ CX
	JNZ  loop
done:
	VMASKMOVPD Y0, Y14, (DI)
	VZEROUPPER
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET
