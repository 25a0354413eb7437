package le

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

func TestRoundTripAndLayout(t *testing.T) {
	v := []float64{0, math.Copysign(0, -1), 1.5, -2.25e300, math.Inf(1), math.NaN(), 5e-324}
	var want bytes.Buffer
	for _, x := range v {
		binary.Write(&want, binary.LittleEndian, math.Float64bits(x))
	}
	var got bytes.Buffer
	if err := Write(&got, v); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) || !bytes.Equal(Encode(make([]byte, 8*len(v)), v), want.Bytes()) {
		t.Fatal("encodings differ from little-endian IEEE 754")
	}
	back := make([]float64, len(v))
	Decode(back, want.Bytes())
	for i := range v {
		if math.Float64bits(back[i]) != math.Float64bits(v[i]) {
			t.Fatalf("element %d: %v, want %v", i, back[i], v[i])
		}
	}
	// The block path (what a big-endian machine takes) agrees.
	Native = false
	defer func() { Native = true }()
	long := make([]float64, 3000)
	for i := range long {
		long[i] = float64(i) * 0.1
	}
	var blocks, direct bytes.Buffer
	Write(&blocks, long)
	Write(&direct, long[:0])
	direct.Write(Encode(make([]byte, 8*len(long)), long))
	if !bytes.Equal(blocks.Bytes(), direct.Bytes()) {
		t.Fatal("the block path differs")
	}
}
