// Package le is the one encoding of float64 vectors that fedmo writes
// anywhere: little-endian IEEE 754 bytes, the layout of model hashes,
// checkpoints, dataset fingerprints and the wire. On little-endian machines
// (amd64, arm64) that is the vectors' own memory, so Bytes and Write need no
// copy; elsewhere they encode in blocks.
package le

import (
	"encoding/binary"
	"io"
	"math"
	"unsafe"
)

// Native reports whether float64 values are stored in memory as their
// little-endian encoding.
var Native = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Bytes returns v's memory as bytes, without copying. Only valid where
// Native is true; the bytes alias v.
func Bytes(v []float64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 8*len(v))
}

// Floats returns b's memory as float64 values, without copying: the
// inverse of Bytes. Only valid where Native is true and b's address is a
// multiple of 8; the values alias b.
func Floats(b []byte) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
}

// Encode writes v into buf, which has room for 8*len(v) bytes, and returns
// the bytes written.
func Encode(buf []byte, v []float64) []byte {
	b := buf[:8*len(v)]
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:8*i+8], math.Float64bits(x))
	}
	return b
}

// Decode fills dst from b, which holds 8*len(dst) bytes.
func Decode(dst []float64, b []byte) {
	_ = b[8*len(dst)-1:]
	for i := range dst {
		dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i : 8*i+8]))
	}
}

// Write writes v's encoding to w.
func Write(w io.Writer, v []float64) error {
	if Native {
		_, err := w.Write(Bytes(v))
		return err
	}
	var buf [8 << 10]byte
	for len(v) > 0 {
		k := min(len(v), len(buf)/8)
		if _, err := w.Write(Encode(buf[:], v[:k])); err != nil {
			return err
		}
		v = v[k:]
	}
	return nil
}
