package wire

import (
	"errors"
	"fmt"
	"io"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

// Message is a stream message that may carry a vector's chunk or end:
// *fedmov1.TrainRequest and *fedmov1.TrainResponse.
type Message interface {
	GetChunk() *fedmov1.VectorChunk
	GetEnd() *fedmov1.VectorEnd
}

// ReceiveVector reads one vector of the given kind and len(dst) elements
// into dst, calling recv (a gRPC stream's Recv) until the vector's
// VectorEnd has been checked. A message that is neither a chunk nor an
// end, an io.EOF before the end, and every check of Assembler fail with
// an error that wraps ErrCorrupt; other errors from recv are returned
// wrapped, so status.Code still reports the RPC's status.
//
// ReceiveVector owns the messages recv returns: once it has copied a
// chunk's data into dst, it recycles the data's memory for later chunks
// if UnmarshalVectorMessage allocated it (never other memory). So recv
// must not keep the messages or hand them to anyone else.
//
// It is SendVector's counterpart: on a Train stream,
//
//	err := wire.ReceiveVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, model, stream.Recv)
func ReceiveVector[M Message](kind fedmov1.VectorKind, dst []float64, recv func() (M, error)) error {
	var a Assembler
	a.Reset(kind, dst)
	for {
		m, err := recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: %s vector of %d elements: the stream ended after %d elements (truncated): %w",
					ErrCorrupt, kind, len(dst), a.Received(), err)
			}
			return fmt.Errorf("wire: receive %s vector: %w", kind, err)
		}
		if c := m.GetChunk(); c != nil {
			err := a.Chunk(c)
			recycleChunkData(c.Data) // copied out (or refused): reuse it
			c.Data = nil
			if err != nil {
				return err
			}
			continue
		}
		if e := m.GetEnd(); e != nil {
			return a.End(e)
		}
		return fmt.Errorf("%w: %s vector of %d elements: a message other than a chunk or an end after %d elements",
			ErrCorrupt, kind, len(dst), a.Received())
	}
}
