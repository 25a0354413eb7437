package wire

import (
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/fedmo/fedmo/internal/le"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

// Chunk sizes, in bytes of vector data per VectorChunk. A chunk size must
// lie in [MinChunkBytes, MaxChunkBytes]; it is rounded down to whole
// float64 values.
//
// The gRPC message that carries a chunk is a few bytes longer than its
// data, so MaxChunkBytes keeps every message far below gRPC's default
// 4 MiB receive limit. On loopback (BenchmarkChunkSize, 10M parameters)
// 64 KiB chunks were about 25% slower than the rest; 128 KiB to 1 MiB
// were within the noise of each other. Smaller chunks cost per-message
// overhead, larger ones buffer memory per stream.
const (
	MinChunkBytes     = 64 << 10
	MaxChunkBytes     = 1 << 20
	DefaultChunkBytes = 256 << 10
)

// ErrCorrupt is wrapped by every error that reports a vector stream that
// does not match what was expected: wrong kind, gap, overlap, truncation,
// excess data or a CRC-32C mismatch. The transfer may succeed if retried.
var ErrCorrupt = errors.New("wire: corrupt vector stream")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the CRC-32C (Castagnoli) of v's little-endian bytes, the
// checksum a VectorEnd carries for v. It needs no buffer of v's size.
func CRC32C(v []float64) uint32 {
	if le.Native {
		return crc32.Checksum(le.Bytes(v), castagnoli)
	}
	var buf [4096]byte
	var crc uint32
	for len(v) > 0 {
		n := min(len(v), len(buf)/8)
		b := le.Encode(buf[:8*n], v[:n])
		crc = crc32.Update(crc, castagnoli, b)
		v = v[n:]
	}
	return crc
}

// SendVector sends v as VectorChunks through sendChunk, then one VectorEnd
// through sendEnd. kind must be a defined VectorKind other than
// VECTOR_KIND_UNSPECIFIED. chunkBytes is the data size of a chunk: 0 means
// DefaultChunkBytes, anything else must lie in [MinChunkBytes,
// MaxChunkBytes]. An empty v is sent as an End of length 0 alone.
//
// SendVector copies nothing it need not. On a little-endian machine
// (amd64, arm64, ...) memory already holds the wire format, so each
// chunk's Data is a view of v itself; elsewhere chunks are encoded into
// one buffer of at most chunkBytes, reused for the whole call. Either way
// the same *VectorChunk is passed each time with its Offset and Data
// updated. So sendChunk must be done with the chunk when it returns: it
// must not modify Data, keep the chunk or its Data, or hand them to
// another goroutine; and v must not change during the call.
//
// A gRPC stream's Send satisfies this. grpc.ClientStream.SendMsg and
// grpc.ServerStream.SendMsg, which the generated Send methods call
// directly, marshal the message into gRPC's own buffers (prepareMsg in
// grpc-go v1.85 stream.go) before they hand anything to the transport or
// to the retry buffer, and keep no reference to the message once they
// return. The one exception grpc-go documents ("It is not safe to modify
// the message after calling SendMsg. Tracing libraries and stats handlers
// may use the message lazily.") is a stats handler that keeps the
// message and reads it later; with such a handler installed, copy Data
// in sendChunk. The options of package security install none.
//
// Errors returned by sendChunk or sendEnd are wrapped (errors.Is and
// status.Code see through), so a gRPC client stream's io.EOF still means
// "the stream broke, Recv for the status".
func SendVector(kind fedmov1.VectorKind, v []float64, chunkBytes int,
	sendChunk func(*fedmov1.VectorChunk) error, sendEnd func(*fedmov1.VectorEnd) error) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if chunkBytes == 0 {
		chunkBytes = DefaultChunkBytes
	}
	if chunkBytes < MinChunkBytes || chunkBytes > MaxChunkBytes {
		return fmt.Errorf("wire: chunk size %d bytes, want %d to %d", chunkBytes, MinChunkBytes, MaxChunkBytes)
	}
	if sendChunk == nil || sendEnd == nil {
		return errors.New("wire: SendVector needs both send functions")
	}
	per := chunkBytes / 8
	var buf []byte
	if !le.Native {
		buf = make([]byte, 8*min(per, len(v)))
	}
	chunk := &fedmov1.VectorChunk{Kind: kind}
	var crc uint32
	for off := 0; off < len(v); off += per {
		part := v[off:min(off+per, len(v))]
		var b []byte
		if le.Native {
			b = le.Bytes(part) // already the wire format: no copy
		} else {
			b = le.Encode(buf, part)
		}
		crc = crc32.Update(crc, castagnoli, b)
		chunk.Offset = uint64(off)
		chunk.Data = b
		if err := sendChunk(chunk); err != nil {
			return fmt.Errorf("wire: send %s chunk at element %d of %d: %w", kind, off, len(v), err)
		}
	}
	chunk.Data = nil
	if err := sendEnd(&fedmov1.VectorEnd{Kind: kind, Length: uint64(len(v)), Crc32C: crc}); err != nil {
		return fmt.Errorf("wire: send %s end: %w", kind, err)
	}
	return nil
}

func checkKind(kind fedmov1.VectorKind) error {
	if _, ok := fedmov1.VectorKind_name[int32(kind)]; !ok || kind == fedmov1.VectorKind_VECTOR_KIND_UNSPECIFIED {
		return fmt.Errorf("wire: vector kind %s is not a defined kind", kind)
	}
	return nil
}

// An Assembler reassembles one vector from its chunks into a slice that
// the caller sized to the expected length. Feed it every VectorChunk of
// the vector with Chunk, then the VectorEnd with End; the vector is
// complete and verified when End returns nil.
//
// The first error poisons the Assembler: every later call returns it
// again. All errors that describe the received data wrap ErrCorrupt. The
// destination may hold a partial vector after an error.
//
// The zero Assembler is unusable; make one with NewAssembler, and reuse it
// for the next vector with Reset.
type Assembler struct {
	kind fedmov1.VectorKind
	dst  []float64
	next int // elements received so far
	crc  uint32
	done bool
	err  error
}

// NewAssembler returns an Assembler that expects a vector of the given
// kind and exactly len(dst) elements, and writes it into dst.
func NewAssembler(kind fedmov1.VectorKind, dst []float64) *Assembler {
	a := new(Assembler)
	a.Reset(kind, dst)
	return a
}

// Reset makes a ready for a new vector, as NewAssembler would.
func (a *Assembler) Reset(kind fedmov1.VectorKind, dst []float64) {
	*a = Assembler{kind: kind, dst: dst}
	if err := checkKind(kind); err != nil {
		a.err = fmt.Errorf("wire: assembler: %w", err)
	}
}

// Received returns the number of elements received so far.
func (a *Assembler) Received() int { return a.next }

// Done reports whether End accepted the vector.
func (a *Assembler) Done() bool { return a.done }

// unusable reports an Assembler that was never set up (the zero value).
func (a *Assembler) unusable() bool {
	if a.err == nil && a.kind == fedmov1.VectorKind_VECTOR_KIND_UNSPECIFIED {
		a.err = errors.New("wire: assembler: not set up (use NewAssembler or Reset)")
	}
	return a.err != nil
}

func (a *Assembler) fail(format string, args ...any) error {
	a.err = fmt.Errorf("%w: %s vector of %d elements: %s",
		ErrCorrupt, a.kind, len(a.dst), fmt.Sprintf(format, args...))
	return a.err
}

// Chunk adds the next chunk. It must have the expected kind, start at the
// first element not yet received, hold whole float64 values (at least
// one) and end within the expected length.
func (a *Assembler) Chunk(c *fedmov1.VectorChunk) error {
	switch {
	case a.unusable():
		return a.err
	case c == nil:
		return a.fail("nil chunk")
	case a.done:
		return a.fail("chunk at element %d after the end", c.GetOffset())
	case c.Kind != a.kind:
		return a.fail("chunk of kind %s", c.Kind)
	case c.Offset < uint64(a.next):
		return a.fail("chunk at element %d overlaps the %d elements received (duplicate or reordered chunk)", c.Offset, a.next)
	case c.Offset > uint64(a.next):
		return a.fail("chunk at element %d, want element %d (missing chunk)", c.Offset, a.next)
	case len(c.Data) == 0:
		return a.fail("empty chunk at element %d", c.Offset)
	case len(c.Data)%8 != 0:
		return a.fail("chunk at element %d has %d bytes, not a multiple of 8", c.Offset, len(c.Data))
	case len(c.Data)/8 > len(a.dst)-a.next:
		return a.fail("chunk of %d elements at element %d goes past the end (too long)", len(c.Data)/8, c.Offset)
	}
	a.crc = crc32.Update(a.crc, castagnoli, c.Data)
	d := a.dst[a.next : a.next+len(c.Data)/8]
	if le.Native {
		copy(le.Bytes(d), c.Data)
	} else {
		le.Decode(d, c.Data)
	}
	a.next += len(d)
	return nil
}

// End checks the vector's end: the expected kind and length, every
// element received, and the CRC-32C of all the bytes.
func (a *Assembler) End(e *fedmov1.VectorEnd) error {
	switch {
	case a.unusable():
		return a.err
	case e == nil:
		return a.fail("nil end")
	case a.done:
		return a.fail("second end")
	case e.Kind != a.kind:
		return a.fail("end of kind %s", e.Kind)
	case e.Length != uint64(len(a.dst)):
		return a.fail("end says %d elements", e.Length)
	case a.next != len(a.dst):
		return a.fail("end after only %d elements (truncated)", a.next)
	case e.Crc32C != a.crc:
		return a.fail("CRC-32C of the data is %08x, the end says %08x", a.crc, e.Crc32C)
	}
	a.done = true
	return nil
}
