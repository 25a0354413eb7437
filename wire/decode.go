package wire

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
)

// Received chunk data comes from power-of-two size classes, so that the
// data of one chunk size (and the shorter last chunk) are recycled.
const (
	minPooledLog = 12 // 4 KiB: smaller chunk data are left to proto.Unmarshal
	maxPooledLog = 20 // 1 MiB = MaxChunkBytes
)

var chunkData [maxPooledLog + 1]sync.Pool // by log2 of the data capacity

// A pooled buffer has 1<<c bytes of room for data and, past them, a tag:
// poolTag while the buffer is out of the pool. recycleChunkData takes
// back only tagged buffers, so memory that did not come from
// getChunkData (a chunk a caller built from its own slice) is never
// recycled, and clearing the tag makes a second recycle a no-op.
const tagBytes = 8

var poolTag = func() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0x6665646d6f776972 // crypto/rand does not fail on supported systems
	}
	return binary.LittleEndian.Uint64(b[:]) | 1 // never 0, the cleared tag
}()

// getChunkData returns a buffer of n bytes, 1<<minPooledLog ≤ n ≤
// 1<<maxPooledLog.
func getChunkData(n int) []byte {
	c := bits.Len(uint(n - 1)) // smallest c with 1<<c >= n
	var b []byte
	if p, _ := chunkData[c].Get().(*[]byte); p != nil {
		b = *p
	} else {
		b = make([]byte, 1<<c+tagBytes)
	}
	binary.LittleEndian.PutUint64(b[1<<c:], poolTag)
	return b[:n]
}

// recycleChunkData returns a chunk's data to the pool if getChunkData
// made it and it has not been recycled since.
func recycleChunkData(b []byte) {
	room := cap(b) - tagBytes
	if room < 1<<minPooledLog || room > 1<<maxPooledLog || room&(room-1) != 0 {
		return
	}
	b = b[:cap(b)]
	if binary.LittleEndian.Uint64(b[room:]) != poolTag {
		return
	}
	binary.LittleEndian.PutUint64(b[room:], 0)
	chunkData[bits.Len(uint(room))-1].Put(&b)
}

// UnmarshalVectorMessage is a fast path for gRPC codecs: it decodes b,
// the protobuf encoding of a *fedmov1.TrainRequest or
// *fedmov1.TrainResponse given as m, if the message carries a
// VectorChunk of at least 4 KiB, and reports whether it did. Otherwise it
// leaves m alone and reports false, and the codec uses proto.Unmarshal.
// The result is the same as proto.Unmarshal's, except that the chunk's
// Data is taken from a pool that ReceiveVector refills once it has copied
// the data out, so that receiving a vector creates no garbage. Package
// security's codec calls it.
func UnmarshalVectorMessage(b []byte, m any) bool {
	switch m := m.(type) {
	case *fedmov1.TrainRequest:
		if m == nil {
			return false
		}
	case *fedmov1.TrainResponse:
		if m == nil {
			return false
		}
	default:
		return false
	}
	// The message is one field: the oneof's chunk (field 2 in both).
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return false
	}
	inner, n2 := protowire.ConsumeBytes(b[n:])
	if n2 < 0 || n+n2 != len(b) {
		return false
	}
	var (
		kind   fedmov1.VectorKind
		offset uint64
		data   []byte
	)
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			return false
		}
		inner = inner[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(inner)
			if n < 0 {
				return false
			}
			kind, inner = fedmov1.VectorKind(int32(x)), inner[n:]
		case num == 2 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(inner)
			if n < 0 {
				return false
			}
			offset, inner = x, inner[n:]
		case num == 3 && typ == protowire.BytesType:
			d, n := protowire.ConsumeBytes(inner)
			if n < 0 {
				return false
			}
			data, inner = d, inner[n:]
		default: // unknown fields and the like: proto.Unmarshal keeps them
			return false
		}
	}
	if len(data) < 1<<minPooledLog || len(data) > 1<<maxPooledLog {
		return false
	}
	c := &fedmov1.VectorChunk{Kind: kind, Offset: offset, Data: getChunkData(len(data))}
	copy(c.Data, data)
	switch m := m.(type) {
	case *fedmov1.TrainRequest:
		proto.Reset(m)
		m.Msg = &fedmov1.TrainRequest_Chunk{Chunk: c}
	case *fedmov1.TrainResponse:
		proto.Reset(m)
		m.Msg = &fedmov1.TrainResponse_Chunk{Chunk: c}
	}
	return true
}
