// Package rng derives the independent random streams of a run.
//
// Every random draw in fedmo comes from a stream keyed by (run seed, purpose,
// round, client). The key is hashed with SHA-256 and seeds a PCG generator, so
// a stream depends on nothing else: not on the number of goroutines or
// processes, not on the order in which work runs, and not on how many draws
// another stream made. Adding a draw in one place never shifts another.
//
// Library code never uses the top-level functions of math/rand or
// math/rand/v2; it asks this package for a stream.
package rng

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
)

// Purpose names what a stream is for. Streams of different purposes are
// independent even for the same seed, round and client.
type Purpose string

// The purposes used by fedmo. A new kind of draw gets a new purpose.
const (
	Sample    Purpose = "sample"    // which clients take part in a round (client = -1)
	Batch     Purpose = "batch"     // a client's minibatch order within a round
	Partition Purpose = "partition" // how the training set is split across clients
	Init      Purpose = "init"      // the initial model parameters
	Synthetic Purpose = "synthetic" // generated datasets
)

// Stream returns a new generator for (seed, purpose, round, client). Use
// round = -1 or client = -1 where the draw does not belong to one.
// A *rand.Rand is not safe for concurrent use: each goroutine takes its own.
func Stream(seed uint64, p Purpose, round, client int) *rand.Rand {
	return rand.New(rand.NewPCG(Key(seed, p, round, client)))
}

// Key returns the PCG seed of the stream (seed, purpose, round, client):
// the first 16 bytes of the SHA-256 of the four, little-endian. A hot loop
// reseeds one generator with it instead of allocating a new one:
// pcg.Seed(rng.Key(...)).
func Key(seed uint64, p Purpose, round, client int) (uint64, uint64) {
	var buf [64]byte
	b := buf[:0]
	if 32+len(p) > len(buf) {
		b = make([]byte, 0, 32+len(p))
	}
	b = binary.LittleEndian.AppendUint64(b, seed)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(p)))
	b = append(b, p...)
	b = binary.LittleEndian.AppendUint64(b, uint64(int64(round)))
	b = binary.LittleEndian.AppendUint64(b, uint64(int64(client)))
	sum := sha256.Sum256(b)
	return binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16])
}
