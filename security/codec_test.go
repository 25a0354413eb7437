package security

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

func TestCodec(t *testing.T) {
	c := codec{pool: new(bufferPool)}
	if c.Name() != "proto" {
		t.Errorf("Name %q, want proto (the wire format is gRPC's)", c.Name())
	}
	for _, n := range []int{0, 100, 5000, 256 << 10, 1 << 20, 3 << 20} {
		data := bytes.Repeat([]byte{0xa5, 1, 2}, n/3)
		in := &fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: &fedmov1.VectorChunk{Kind: fedmov1.VectorKind_VECTOR_KIND_DELTA, Offset: 42, Data: data}}}
		for range 3 { // reuse pooled buffers
			bs, err := c.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := proto.Marshal(in)
			if got := bs.Materialize(); !bytes.Equal(got, want) {
				t.Fatalf("%d bytes of data: the codec's encoding differs from proto.Marshal", n)
			}
			out := new(fedmov1.TrainRequest)
			if err := c.Unmarshal(bs, out); err != nil {
				t.Fatal(err)
			}
			bs.Free()
			if !proto.Equal(in, out) {
				t.Fatalf("%d bytes of data: decoded %v", n, out.GetChunk().GetOffset())
			}
		}
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("Marshal of a string succeeded")
	}
	if err := c.Unmarshal(nil, new(int)); err == nil {
		t.Error("Unmarshal into an int succeeded")
	}
}

func TestBufferPool(t *testing.T) {
	p := new(bufferPool)
	for _, n := range []int{1, 4 << 10, 4<<10 + 1, 256<<10 + 16, 1<<20 + 1<<10, 1<<20 + 1<<10 + 1, 8 << 20} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): length %d", n, len(*b))
		}
		for i, c := range bufferClasses {
			if n <= c && (i == 0 || n > bufferClasses[i-1]) && cap(*b) != c {
				t.Errorf("Get(%d): capacity %d, want the class %d", n, cap(*b), c)
			}
		}
		(*b)[n-1] = 7
		p.Put(b)
	}
	// A returned buffer comes back with the asked length, whatever it held.
	b := p.Get(100)
	*b = (*b)[:10]
	p.Put(b)
	if b2 := p.Get(4000); len(*b2) != 4000 || cap(*b2) != 4<<10 {
		t.Errorf("Get(4000) after a Put: len %d cap %d", len(*b2), cap(*b2))
	}
	p.Put(&[]byte{1, 2, 3}) // not from the pool: ignored
}
