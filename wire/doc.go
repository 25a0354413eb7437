// Package wire moves float64 vectors (models, updates, control variates)
// over the chunked fedmo.v1 protocol.
//
// A vector travels as its little-endian IEEE-754 bytes, cut into
// VectorChunk messages of DefaultChunkBytes (any size from MinChunkBytes
// to MaxChunkBytes may be chosen) whose offsets count elements, followed
// by one VectorEnd that carries the vector's kind, its length in elements
// and the CRC-32C (Castagnoli) of all its bytes. No chunk comes near
// gRPC's 4 MiB default message limit, however long the vector.
//
// SendVector writes a vector through two send functions, so it serves
// both directions of ClientService.Train (TrainRequest and TrainResponse
// wrap the same VectorChunk and VectorEnd). ReceiveVector reads one back
// from a stream's Recv into a slice of the length the receiver expects;
// an Assembler does the same one message at a time, for a receiver that
// dispatches messages itself.
//
//	// sender (coordinator)
//	err := wire.SendVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, x, 0,
//		func(c *fedmov1.VectorChunk) error {
//			return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: c}})
//		},
//		func(e *fedmov1.VectorEnd) error {
//			return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_End{End: e}})
//		})
//
//	// receiver (client process), after the TrainHeader
//	x := make([]float64, header.NumParams)
//	err := wire.ReceiveVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, x, stream.Recv)
//
// A receiver should bound the length it allocates (NumParams comes from
// the peer) by what its configuration expects.
//
// # What is checked
//
// The Assembler accepts exactly one sequence per vector: chunks of the
// expected kind whose offsets follow each other without gap, overlap or
// reordering, whose data are whole float64 values and stay within the
// expected length, then an End with the expected kind and length, after
// every element arrived, whose CRC-32C matches. Anything else is an error
// that wraps ErrCorrupt, so a caller can tell a damaged transfer (retry
// it) from a local failure with errors.Is(err, ErrCorrupt).
//
// Values are not inspected: NaN and ±Inf pass bit for bit. Whether they
// are acceptable is the caller's decision.
//
// # Performance
//
// On little-endian machines SendVector sends views of the vector itself,
// and ReceiveVector copies each chunk straight into the destination. With
// a codec that decodes chunk messages through UnmarshalVectorMessage (the
// options of package security install one), received chunk data live in
// recycled buffers, so a transfer makes no garbage in proportion to its
// size. BenchmarkTransfer compares a one-way transfer with a raw TCP copy.
//
// # Concurrency
//
// SendVector may run concurrently with other calls, but not with another
// send on the same gRPC stream (a gRPC rule). An Assembler is not safe for
// concurrent use; one goroutine receives a stream.
package wire
