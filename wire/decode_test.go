package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

func chunkRequest(kind fedmov1.VectorKind, offset uint64, data []byte) *fedmov1.TrainRequest {
	return &fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: &fedmov1.VectorChunk{Kind: kind, Offset: offset, Data: data}}}
}

func chunkResponse(kind fedmov1.VectorKind, offset uint64, data []byte) *fedmov1.TrainResponse {
	return &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Chunk{Chunk: &fedmov1.VectorChunk{Kind: kind, Offset: offset, Data: data}}}
}

func TestUnmarshalVectorMessage(t *testing.T) {
	for _, n := range []int{4 << 10, 5000, 64 << 10, 256<<10 - 8, 256 << 10, 1 << 20} {
		data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, n/8)
		for _, in := range []proto.Message{
			chunkRequest(model, 123456789, data),
			chunkResponse(fedmov1.VectorKind_VECTOR_KIND_DELTA_CONTROL, 0, data),
			chunkRequest(fedmov1.VectorKind(-3), 1<<60, data), // any enum value, as proto
		} {
			b, err := proto.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			got := in.ProtoReflect().New().Interface()
			// A message decoded into is reset first, as by proto.Unmarshal.
			if r, ok := got.(*fedmov1.TrainRequest); ok {
				r.Msg = &fedmov1.TrainRequest_Header{Header: &fedmov1.TrainHeader{Round: 9}}
			}
			if !UnmarshalVectorMessage(b, got) {
				t.Fatalf("%d bytes of data: the fast path declined", n)
			}
			if !proto.Equal(got, in) {
				t.Fatalf("%d bytes of data: decoded differently from proto.Unmarshal", n)
			}
			d := got.(interface{ GetChunk() *fedmov1.VectorChunk }).GetChunk().Data
			if c := cap(d) - tagBytes; c&(c-1) != 0 || c < len(d) || c >= 2*len(d) {
				t.Errorf("%d bytes of data: capacity %d, want the next power of two plus the tag", n, cap(d))
			}
			recycleChunkData(d)
		}
	}

	data := make([]byte, 8<<10)
	big, _ := proto.Marshal(chunkRequest(model, 0, data))
	for _, tc := range []struct {
		name string
		b    []byte
		m    any
	}{
		{"header", must(proto.Marshal(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: &fedmov1.TrainHeader{NumParams: 1}}})), new(fedmov1.TrainRequest)},
		{"end", must(proto.Marshal(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_End{End: &fedmov1.VectorEnd{Length: 5}}})), new(fedmov1.TrainResponse)},
		{"small chunk", must(proto.Marshal(chunkRequest(model, 0, make([]byte, 4<<10-8)))), new(fedmov1.TrainRequest)},
		{"chunk too large", must(proto.Marshal(chunkRequest(model, 0, make([]byte, 1<<20+8)))), new(fedmov1.TrainRequest)},
		{"other message type", big, new(fedmov1.VectorChunk)},
		{"not a message", big, new(int)},
		{"nil request", big, (*fedmov1.TrainRequest)(nil)},
		{"nil response", big, (*fedmov1.TrainResponse)(nil)},
		{"trailing field", protowire.AppendVarint(protowire.AppendTag(bytes.Clone(big), 5, protowire.VarintType), 1), new(fedmov1.TrainRequest)},
		{"chunk twice", append(bytes.Clone(big), big...), new(fedmov1.TrainRequest)},
		{"truncated", big[:len(big)-1], new(fedmov1.TrainRequest)},
		{"empty", nil, new(fedmov1.TrainRequest)},
		{"unknown field in the chunk", withInnerField(data), new(fedmov1.TrainRequest)},
	} {
		if UnmarshalVectorMessage(tc.b, tc.m) {
			t.Errorf("%s: the fast path accepted it", tc.name)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// withInnerField encodes a TrainRequest chunk with an extra field 9.
func withInnerField(data []byte) []byte {
	var inner []byte
	inner = protowire.AppendTag(inner, 3, protowire.BytesType)
	inner = protowire.AppendBytes(inner, data)
	inner = protowire.AppendTag(inner, 9, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 7)
	b := protowire.AppendTag(nil, 2, protowire.BytesType)
	return protowire.AppendBytes(b, inner)
}

func TestChunkDataPool(t *testing.T) {
	for _, n := range []int{4 << 10, 4<<10 + 1, 300_000, 1 << 20} {
		b := getChunkData(n)
		if room := cap(b) - tagBytes; len(b) != n || room < n || room&(room-1) != 0 {
			t.Errorf("getChunkData(%d): len %d cap %d", n, len(b), cap(b))
		}
		recycleChunkData(b)
	}
	recycleChunkData(nil)

	// Only buffers from getChunkData are recycled, and only once: memory
	// of the caller's (here a vector's, as SendVector sends it) is never
	// handed out again.
	mine := make([]byte, 64<<10+tagBytes)
	recycleChunkData(mine[:64<<10])
	b := getChunkData(64 << 10)
	recycleChunkData(b)
	recycleChunkData(b)
	seen := map[*byte]bool{}
	for range 4 {
		x := getChunkData(64 << 10)
		if &x[0] == &mine[0] {
			t.Fatal("a caller's buffer was recycled")
		}
		if seen[&x[0]] {
			t.Fatal("one buffer was handed out twice")
		}
		seen[&x[0]] = true
	}
}

// FuzzUnmarshalVectorMessage checks that whenever the fast path decodes a
// message, proto.Unmarshal decodes the same bytes to an equal message.
func FuzzUnmarshalVectorMessage(f *testing.F) {
	data := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1100)
	f.Add(must(proto.Marshal(chunkRequest(model, 77, data))), false)
	f.Add(must(proto.Marshal(chunkResponse(control, 1<<40, data))), true)
	f.Add(withInnerField(data), false)
	f.Fuzz(func(t *testing.T, b []byte, response bool) {
		var fast, slow proto.Message = new(fedmov1.TrainRequest), new(fedmov1.TrainRequest)
		if response {
			fast, slow = new(fedmov1.TrainResponse), new(fedmov1.TrainResponse)
		}
		if !UnmarshalVectorMessage(b, fast) {
			return
		}
		if err := proto.Unmarshal(b, slow); err != nil {
			t.Fatalf("the fast path decoded bytes that proto.Unmarshal refuses: %v", err)
		}
		if !proto.Equal(fast, slow) {
			t.Fatal("the fast path and proto.Unmarshal disagree")
		}
	})
}

// A vector sent in-process (chunk data are views of it) and received with
// ReceiveVector must not have its memory recycled.
func TestReceiveVectorKeepsCallersMemory(t *testing.T) {
	v := vec(4 * MinChunkBytes / 8)
	want := leBytes(v)
	var ms []*fedmov1.TrainRequest
	err := SendVector(model, v, MinChunkBytes,
		func(c *fedmov1.VectorChunk) error {
			ms = append(ms, chunkRequest(c.Kind, c.Offset, c.Data)) // Data still a view of v
			return nil
		},
		func(e *fedmov1.VectorEnd) error {
			ms = append(ms, &fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_End{End: e}})
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, len(v))
	if err := ReceiveVector(model, dst, func() (*fedmov1.TrainRequest, error) {
		m := ms[0]
		ms = ms[1:]
		return m, nil
	}); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		b := getChunkData(MinChunkBytes)
		for i := range b {
			b[i] = 0xff
		}
	}
	if !bytes.Equal(leBytes(v), want) {
		t.Fatal("the sent vector's memory was recycled and overwritten")
	}
}
