package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/internal/le"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

const (
	model   = fedmov1.VectorKind_VECTOR_KIND_MODEL
	control = fedmov1.VectorKind_VECTOR_KIND_CONTROL
)

// vec returns n deterministic values that exercise every bit pattern
// class: normal numbers, signed zeros, infinities and NaNs with payloads.
func vec(n int) []float64 {
	v := make([]float64, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		switch i % 7 {
		case 3:
			v[i] = math.Float64frombits(x) // anything, NaN payloads included
		case 5:
			v[i] = math.Copysign(0, -1)
		case 6:
			v[i] = math.Inf(1 - 2*int(x&1))
		default:
			v[i] = float64(int64(x>>11)) / (1 << 40)
		}
	}
	return v
}

func leBytes(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

type sent struct {
	chunks []*fedmov1.VectorChunk
	end    *fedmov1.VectorEnd
}

// record sends v and keeps copies of the messages (SendVector reuses its
// chunk and buffer).
func record(t testing.TB, kind fedmov1.VectorKind, v []float64, chunkBytes int) *sent {
	t.Helper()
	s := new(sent)
	err := SendVector(kind, v, chunkBytes,
		func(c *fedmov1.VectorChunk) error {
			s.chunks = append(s.chunks, &fedmov1.VectorChunk{Kind: c.Kind, Offset: c.Offset, Data: bytes.Clone(c.Data)})
			return nil
		},
		func(e *fedmov1.VectorEnd) error { s.end = e; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replay feeds chunks then end to an Assembler of n elements and returns
// the first error and the assembled vector.
func replay(kind fedmov1.VectorKind, n int, chunks []*fedmov1.VectorChunk, end *fedmov1.VectorEnd) ([]float64, error) {
	dst := make([]float64, n)
	a := NewAssembler(kind, dst)
	for _, c := range chunks {
		if err := a.Chunk(c); err != nil {
			return dst, err
		}
	}
	return dst, a.End(end)
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	for _, cb := range []int{0, MinChunkBytes, MinChunkBytes + 13, DefaultChunkBytes, MaxChunkBytes} {
		per := DefaultChunkBytes / 8
		if cb != 0 {
			per = cb / 8
		}
		for _, n := range []int{0, 1, per - 1, per, per + 1, 3*per + 5} {
			t.Run(fmt.Sprintf("chunk=%d/n=%d", cb, n), func(t *testing.T) {
				v := vec(n)
				s := record(t, model, v, cb)
				if want := (n + per - 1) / per; len(s.chunks) != want {
					t.Errorf("%d chunks, want %d", len(s.chunks), want)
				}
				for i, c := range s.chunks {
					if c.Offset != uint64(i*per) || len(c.Data) > 8*per || len(c.Data)%8 != 0 {
						t.Errorf("chunk %d: offset %d, %d bytes; want offset %d and at most %d bytes", i, c.Offset, len(c.Data), i*per, 8*per)
					}
				}
				want := crc32.Checksum(leBytes(v), crc32.MakeTable(crc32.Castagnoli))
				if s.end.Kind != model || s.end.Length != uint64(n) || s.end.Crc32C != want || CRC32C(v) != want {
					t.Errorf("end %v, CRC32C %08x; want kind %s, length %d, crc %08x", s.end, CRC32C(v), model, n, want)
				}
				got, err := replay(model, n, s.chunks, s.end)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(got, v) {
					t.Error("the assembled vector differs from the one sent")
				}
			})
		}
	}
}

func TestSendVectorArguments(t *testing.T) {
	nop := func(*fedmov1.VectorChunk) error { return nil }
	nopEnd := func(*fedmov1.VectorEnd) error { return nil }
	for _, tc := range []struct {
		name       string
		kind       fedmov1.VectorKind
		chunkBytes int
		want       string
	}{
		{"unspecified kind", fedmov1.VectorKind_VECTOR_KIND_UNSPECIFIED, 0, "not a defined kind"},
		{"undefined kind", 99, 0, "not a defined kind"},
		{"chunk too small", model, MinChunkBytes - 1, "chunk size"},
		{"chunk too large", model, MaxChunkBytes + 1, "chunk size"},
		{"negative chunk", model, -1, "chunk size"},
	} {
		err := SendVector(tc.kind, vec(3), tc.chunkBytes, nop, nopEnd)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "wire: ") {
			t.Errorf("%s: err = %v, want a wire: error containing %q", tc.name, err, tc.want)
		}
	}
	if err := SendVector(model, vec(3), 0, nil, nopEnd); err == nil {
		t.Error("nil sendChunk accepted")
	}
	boom := errors.New("boom")
	err := SendVector(model, vec(3), 0, func(*fedmov1.VectorChunk) error { return io.EOF }, nopEnd)
	if !errors.Is(err, io.EOF) {
		t.Errorf("chunk send error: %v, want it to wrap io.EOF", err)
	}
	err = SendVector(model, vec(3), 0, nop, func(*fedmov1.VectorEnd) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("end send error: %v, want it to wrap boom", err)
	}
}

func TestSendVectorAllocations(t *testing.T) {
	v := vec(10 * DefaultChunkBytes / 8)
	nop := func(*fedmov1.VectorChunk) error { return nil }
	nopEnd := func(*fedmov1.VectorEnd) error { return nil }
	// The buffer, the chunk and the end; nothing per chunk.
	if n := testing.AllocsPerRun(10, func() { _ = SendVector(model, v, 0, nop, nopEnd) }); n > 3 {
		t.Errorf("SendVector allocates %v times for 10 chunks, want at most 3", n)
	}
	dst := make([]float64, len(v))
	s := record(t, model, v, 0)
	var a Assembler
	if n := testing.AllocsPerRun(10, func() {
		a.Reset(model, dst)
		for _, c := range s.chunks {
			_ = a.Chunk(c)
		}
		_ = a.End(s.end)
	}); n != 0 {
		t.Errorf("assembling allocates %v times, want 0", n)
	}
}

func TestAssemblerRejects(t *testing.T) {
	const cb = MinChunkBytes
	per := cb / 8
	n := 4*per + 3
	v := vec(n)
	s := record(t, model, v, cb)
	if len(s.chunks) != 5 {
		t.Fatalf("%d chunks, want 5", len(s.chunks))
	}
	clone := func(c *fedmov1.VectorChunk) *fedmov1.VectorChunk {
		return &fedmov1.VectorChunk{Kind: c.Kind, Offset: c.Offset, Data: bytes.Clone(c.Data)}
	}
	end := func(kind fedmov1.VectorKind, length uint64, crc uint32) *fedmov1.VectorEnd {
		return &fedmov1.VectorEnd{Kind: kind, Length: length, Crc32C: crc}
	}
	cs := s.chunks
	flipped := clone(cs[2])
	flipped.Data[77] ^= 0x10
	wrongKind := clone(cs[1])
	wrongKind.Kind = control
	odd := clone(cs[4])
	odd.Data = odd.Data[:len(odd.Data)-1]
	empty := &fedmov1.VectorChunk{Kind: model, Offset: uint64(4 * per)}
	extra := &fedmov1.VectorChunk{Kind: model, Offset: uint64(n), Data: make([]byte, 8)}
	longLast := clone(cs[4])
	longLast.Data = append(longLast.Data, make([]byte, 8)...)

	for _, tc := range []struct {
		name   string
		n      int // expected length
		chunks []*fedmov1.VectorChunk
		end    *fedmov1.VectorEnd
		want   string
	}{
		{"truncated: last chunk lost", n, cs[:4], s.end, "truncated"},
		{"truncated: end says so", n, cs[:4], end(model, uint64(4*per), s.end.Crc32C), "end says"},
		{"flipped byte", n, []*fedmov1.VectorChunk{cs[0], cs[1], flipped, cs[3], cs[4]}, s.end, "CRC-32C"},
		{"wrong checksum", n, cs, end(model, uint64(n), s.end.Crc32C+1), "CRC-32C"},
		{"missing chunk", n, []*fedmov1.VectorChunk{cs[0], cs[2], cs[3], cs[4]}, s.end, "missing chunk"},
		{"duplicated chunk", n, []*fedmov1.VectorChunk{cs[0], cs[1], cs[1], cs[2], cs[3], cs[4]}, s.end, "duplicate"},
		{"reordered chunks", n, []*fedmov1.VectorChunk{cs[0], cs[2], cs[1], cs[3], cs[4]}, s.end, "missing chunk"},
		{"wrong kind of chunk", n, []*fedmov1.VectorChunk{cs[0], wrongKind}, s.end, "chunk of kind VECTOR_KIND_CONTROL"},
		{"wrong kind of end", n, cs, end(control, uint64(n), s.end.Crc32C), "end of kind VECTOR_KIND_CONTROL"},
		{"too long: extra chunk", n, append(cs[:5:5], extra), s.end, "too long"},
		{"too long: last chunk", n, append(cs[:4:4], longLast), s.end, "too long"},
		{"too long: sender's vector", n - 1, cs, s.end, "too long"},
		{"too short: sender's vector", n + 1, cs, s.end, "end says"},
		{"partial float64", n, append(cs[:4:4], odd), s.end, "not a multiple of 8"},
		{"empty chunk", n, append(cs[:4:4], empty), s.end, "empty chunk"},
		{"nil chunk", n, []*fedmov1.VectorChunk{nil}, s.end, "nil chunk"},
		{"nil end", n, cs, nil, "nil end"},
	} {
		_, err := replay(model, tc.n, tc.chunks, tc.end)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "wire: ") {
			t.Errorf("%s: err = %v, want ErrCorrupt saying %q", tc.name, err, tc.want)
		}
	}
}

func TestAssemblerStates(t *testing.T) {
	v := vec(10)
	s := record(t, model, v, 0)
	dst := make([]float64, len(v))
	a := NewAssembler(model, dst)
	if err := a.Chunk(s.chunks[0]); err != nil {
		t.Fatal(err)
	}
	if a.Done() || a.Received() != 10 {
		t.Errorf("after the chunk: Done %v, Received %d; want false, 10", a.Done(), a.Received())
	}
	if err := a.End(s.end); err != nil || !a.Done() {
		t.Fatalf("End: %v, Done %v", err, a.Done())
	}
	if err := a.End(s.end); !errors.Is(err, ErrCorrupt) {
		t.Errorf("second End: %v, want ErrCorrupt", err)
	}
	a.Reset(model, dst)
	if err := a.Chunk(s.chunks[0]); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	if err := a.End(s.end); err != nil {
		t.Fatal(err)
	}
	if err := a.Chunk(s.chunks[0]); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "after the end") {
		t.Errorf("chunk after End: %v, want ErrCorrupt", err)
	}
	// The first error sticks.
	a.Reset(model, dst)
	first := a.End(s.end)
	if again := a.Chunk(s.chunks[0]); first == nil || again != first {
		t.Errorf("errors %v then %v, want the first one repeated", first, again)
	}
	// An empty vector is an end alone.
	e := record(t, model, nil, 0)
	if len(e.chunks) != 0 {
		t.Errorf("empty vector sent %d chunks", len(e.chunks))
	}
	if _, err := replay(model, 0, nil, e.end); err != nil {
		t.Errorf("empty vector: %v", err)
	}
	// An assembler for an undefined kind refuses everything, and says why.
	var zero Assembler
	if err := zero.End(e.end); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("zero Assembler: %v, want a non-ErrCorrupt error", err)
	}
}

// FuzzAssembler feeds arbitrary chunk sequences to an Assembler of a small
// vector. It checks that nothing panics, that the Assembler accepts only
// a sequence that delivers exactly the vector End describes, and that the
// exact sequence SendVector produces is accepted.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{5, 0, 5, 3, 0, 0})
	f.Add([]byte{17, 0, 4, 0, 8, 0, 5, 3, 0})
	f.Add([]byte{9, 0x10, 3, 4, 0x20, 9, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{30, 1, 8, 0x80, 4, 7, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 3, 2, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &byteReader{b: in}
		n := int(r.next() % 40)
		v := vec(n)
		exact := leBytes(v)

		// The exact sequence is always accepted.
		s := record(t, model, v, MinChunkBytes)
		if got, err := replay(model, n, s.chunks, s.end); err != nil || !sameBits(got, v) {
			t.Fatalf("exact sequence of %d elements: %v", n, err)
		}

		dst := make([]float64, n)
		a := NewAssembler(model, dst)
		var fed []byte // data of the chunks the Assembler took
		var took []*fedmov1.VectorChunk
		accepted := false
		failed := false
		for ops := 0; ops < 64 && !r.empty(); ops++ {
			op := r.next()
			var err error
			isEnd := false
			switch op % 4 {
			case 0, 1: // a chunk cut from the exact bytes, perhaps damaged
				off := uint64(len(fed) / 8)
				if op&0x10 != 0 {
					off = uint64(r.next())
				}
				k := int(r.next() % 9)
				var data []byte
				if lo := int(off) * 8; lo <= len(exact) {
					data = bytes.Clone(exact[lo:min(lo+8*k, len(exact))])
				}
				if op&0x20 != 0 && len(data) > 0 {
					data[int(r.next())%len(data)] ^= 1 << (r.next() % 8)
				}
				if op&0x40 != 0 && len(data) > 0 {
					data = data[:len(data)-1]
				}
				kind := model
				if op&0x80 != 0 {
					kind = fedmov1.VectorKind(r.next() % 9)
				}
				c := &fedmov1.VectorChunk{Kind: kind, Offset: off, Data: data}
				if err = a.Chunk(c); err == nil {
					took = append(took, c)
					fed = append(fed, data...)
				}
			case 2: // anything
				c := &fedmov1.VectorChunk{Kind: fedmov1.VectorKind(r.next() % 9), Offset: uint64(r.next()), Data: r.bytes(int(r.next() % 40))}
				if err = a.Chunk(c); err == nil {
					took = append(took, c)
					fed = append(fed, c.Data...)
				}
			case 3: // an end, right or not
				isEnd = true
				e := &fedmov1.VectorEnd{Kind: model, Length: uint64(n), Crc32C: crc32.Checksum(fed, castagnoli)}
				if op&0x10 != 0 {
					e.Kind = fedmov1.VectorKind(r.next() % 9)
				}
				if op&0x20 != 0 {
					e.Length = uint64(r.next())
				}
				if op&0x40 != 0 {
					e.Crc32C = r.uint32()
				}
				if op&0x80 != 0 {
					e.Crc32C = crc32.Checksum(exact, castagnoli)
				}
				if err = a.End(e); err == nil {
					if accepted || failed {
						t.Fatal("End accepted a vector after an End or an error")
					}
					accepted = true
					if e.Kind != model || e.Length != uint64(n) || len(fed) != 8*n || crc32.Checksum(fed, castagnoli) != e.Crc32C {
						t.Fatalf("accepted end %v after %d bytes", e, len(fed))
					}
				}
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				failed = true
			} else if failed || (accepted && !isEnd) {
				t.Fatal("a call succeeded after an error or after the end")
			}
		}
		if !accepted {
			return
		}
		// What was accepted is exactly the vector the chunks carried, in order.
		next := uint64(0)
		for _, c := range took {
			if c.Kind != model || c.Offset != next || len(c.Data) == 0 || len(c.Data)%8 != 0 {
				t.Fatalf("accepted chunk kind %s offset %d with %d bytes, want %s at %d", c.Kind, c.Offset, len(c.Data), model, next)
			}
			next += uint64(len(c.Data) / 8)
		}
		if !bytes.Equal(leBytes(dst), fed) {
			t.Fatal("the assembled vector differs from the accepted data")
		}
	})
}

type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) empty() bool { return r.i >= len(r.b) }

func (r *byteReader) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *byteReader) bytes(n int) []byte {
	out := make([]byte, 0, n)
	for range n {
		out = append(out, r.next())
	}
	return out
}

func (r *byteReader) uint32() uint32 {
	return uint32(r.next()) | uint32(r.next())<<8 | uint32(r.next())<<16 | uint32(r.next())<<24
}

// TestPortableCodec runs the round trip through the byte-by-byte encoding
// that big-endian machines use.
func TestPortableCodec(t *testing.T) {
	defer func(native bool) { le.Native = native }(le.Native)
	le.Native = false
	for _, n := range []int{0, 1, MinChunkBytes/8 + 3} {
		v := vec(n)
		s := record(t, model, v, MinChunkBytes)
		if !bytes.Equal(bytes.Join(dataOf(s.chunks), nil), leBytes(v)) {
			t.Errorf("n=%d: the chunks' data are not the little-endian bytes", n)
		}
		got, err := replay(model, n, s.chunks, s.end)
		if err != nil || !sameBits(got, v) || CRC32C(v) != s.end.Crc32C {
			t.Errorf("n=%d: %v, same %v, CRC32C %08x vs %08x", n, err, sameBits(got, v), CRC32C(v), s.end.Crc32C)
		}
	}
}

func dataOf(cs []*fedmov1.VectorChunk) [][]byte {
	var out [][]byte
	for _, c := range cs {
		out = append(out, c.Data)
	}
	return out
}

func TestReceiveVector(t *testing.T) {
	v := vec(MinChunkBytes/8*2 + 1)
	s := record(t, control, v, MinChunkBytes)
	msgs := func(extra ...*fedmov1.TrainResponse) []*fedmov1.TrainResponse {
		var out []*fedmov1.TrainResponse
		for _, c := range s.chunks { // ReceiveVector takes the messages over
			c = &fedmov1.VectorChunk{Kind: c.Kind, Offset: c.Offset, Data: bytes.Clone(c.Data)}
			out = append(out, &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Chunk{Chunk: c}})
		}
		return append(out, extra...)
	}
	end := &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_End{End: s.end}}
	update := &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: &fedmov1.UpdateHeader{}}}
	boom := errors.New("boom")
	recvFrom := func(ms []*fedmov1.TrainResponse, final error) func() (*fedmov1.TrainResponse, error) {
		return func() (*fedmov1.TrainResponse, error) {
			if len(ms) == 0 {
				return nil, final
			}
			m := ms[0]
			ms = ms[1:]
			return m, nil
		}
	}
	dst := make([]float64, len(v))
	if err := ReceiveVector(control, dst, recvFrom(msgs(end, update), io.EOF)); err != nil || !sameBits(dst, v) {
		t.Fatalf("ReceiveVector: %v (same %v)", err, sameBits(dst, v))
	}
	for _, tc := range []struct {
		name    string
		ms      []*fedmov1.TrainResponse
		final   error
		corrupt bool
		is      error
	}{
		{"stream ends early", msgs(), io.EOF, true, io.EOF},
		{"a header inside the vector", msgs(update), io.EOF, true, nil},
		{"a nil message", msgs(nil), io.EOF, true, nil},
		{"the RPC fails", msgs(), boom, false, boom},
	} {
		err := ReceiveVector(control, make([]float64, len(v)), recvFrom(tc.ms, tc.final))
		if err == nil || errors.Is(err, ErrCorrupt) != tc.corrupt || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.HasPrefix(err.Error(), "wire: ") {
			t.Errorf("%s: %v, want ErrCorrupt %v and wrapping %v", tc.name, err, tc.corrupt, tc.is)
		}
	}
}
