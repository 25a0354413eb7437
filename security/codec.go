package security

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/fedmo/fedmo/wire"
)

// codec is gRPC's protobuf codec (google.golang.org/grpc/encoding/proto)
// with two changes that BenchmarkTransfer in package wire measures. It
// takes its buffers from a bufferPool instead of the process-wide
// mem.DefaultBufferPool, which zeroes every buffer it hands out and
// rounds a message of 33 KiB to 1 MiB up to a 1 MiB buffer, so that a
// 256 KiB vector chunk cost clearing 1 MiB on each side. And it decodes
// messages that carry a vector chunk with wire.UnmarshalVectorMessage,
// whose chunk data wire.ReceiveVector recycles, instead of allocating
// every chunk's data anew. The wire format is unchanged ("proto").
type codec struct {
	pool *bufferPool
}

var _ encoding.CodecV2 = codec{}

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("security: codec: cannot marshal %T, want a proto.Message", v)
	}
	size := proto.Size(m)
	// UseCachedSize is safe right after Size, as in gRPC's codec.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := c.pool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		c.pool.Put(buf)
		return nil, err
	}
	if len(out) != size || &out[0] != &(*buf)[0] { // cannot happen; stay correct if it does
		c.pool.Put(buf)
		return mem.BufferSlice{mem.SliceBuffer(out)}, nil
	}
	return mem.BufferSlice{mem.NewBuffer(buf, c.pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("security: codec: cannot unmarshal into %T, want a proto.Message", v)
	}
	buf := data.MaterializeToBuffer(c.pool)
	defer buf.Free()
	if wire.UnmarshalVectorMessage(buf.ReadOnlyData(), m) { // recycled chunk data
		return nil
	}
	return proto.Unmarshal(buf.ReadOnlyData(), m) // copies what it keeps
}

// bufferClasses are the capacities of the pooled buffers: small messages,
// then a vector chunk of 64 KiB to 1 MiB of data plus its few bytes of
// framing. Larger requests are allocated and left to the collector.
var bufferClasses = [...]int{
	4 << 10, 16 << 10, 32 << 10,
	64<<10 + 1<<10, 128<<10 + 1<<10, 256<<10 + 1<<10, 512<<10 + 1<<10, 1<<20 + 1<<10,
}

// bufferPool is a mem.BufferPool of fixed size classes that does not zero
// the buffers it hands out: gRPC fills every buffer it gets (a marshalled
// message, or a message read from the network) before reading it, and
// its own transport reads through such a pool.
type bufferPool struct {
	pools [len(bufferClasses)]sync.Pool
}

var _ mem.BufferPool = (*bufferPool)(nil)

func (p *bufferPool) Get(n int) *[]byte {
	for i, c := range bufferClasses {
		if n <= c {
			if b, _ := p.pools[i].Get().(*[]byte); b != nil {
				*b = (*b)[:n]
				return b
			}
			b := make([]byte, n, c)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

func (p *bufferPool) Put(b *[]byte) {
	for i, c := range bufferClasses {
		if cap(*b) == c {
			p.pools[i].Put(b)
			return
		}
	}
}
