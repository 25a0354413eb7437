package wire

import (
	"fmt"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

// Piece is one received message of a vector: a chunk or the end. Exactly
// one of the two is set.
type Piece struct {
	Chunk *fedmov1.VectorChunk
	End   *fedmov1.VectorEnd
}

// ReceiveVector reads one whole vector of the given kind into dst, taking
// messages from next until the vector's end. A message that is neither a
// chunk nor an end, or any inconsistency, is an error wrapping ErrCorrupt;
// errors from next are returned as they are.
func ReceiveVector(kind fedmov1.VectorKind, dst []float64, next func() (Piece, error)) error {
	a := NewAssembler(kind, dst)
	for {
		p, err := next()
		if err != nil {
			return err
		}
		switch {
		case p.Chunk != nil:
			if err := a.Chunk(p.Chunk); err != nil {
				return err
			}
		case p.End != nil:
			return a.End(p.End)
		default:
			return fmt.Errorf("%w: %s vector: a message that is neither a chunk nor an end", ErrCorrupt, kind)
		}
	}
}
