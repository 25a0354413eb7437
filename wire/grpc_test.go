package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/security"
	"github.com/fedmo/fedmo/wire"
)

// TestMain fails the package if a test leaves a goroutine behind (a gRPC
// server or connection not stopped).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type trainStream = grpc.BidiStreamingServer[fedmov1.TrainRequest, fedmov1.TrainResponse]

// echo is a ClientService whose Train receives a TrainHeader and the
// vectors it announces (the model, then the optional previous model,
// momentum and control), and streams them back as an UpdateHeader for the
// header's round followed by the same vectors.
type echo struct {
	fedmov1.UnimplementedClientServiceServer
	chunkBytes int
}

func announced(h *fedmov1.TrainHeader) []fedmov1.VectorKind {
	kinds := []fedmov1.VectorKind{fedmov1.VectorKind_VECTOR_KIND_MODEL}
	if h.HasPreviousModel {
		kinds = append(kinds, fedmov1.VectorKind_VECTOR_KIND_PREVIOUS_MODEL)
	}
	if h.HasMomentum {
		kinds = append(kinds, fedmov1.VectorKind_VECTOR_KIND_MOMENTUM)
	}
	if h.HasControl {
		kinds = append(kinds, fedmov1.VectorKind_VECTOR_KIND_CONTROL)
	}
	return kinds
}

func (e echo) Train(stream trainStream) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	h := req.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "echo: want a TrainHeader first")
	}
	kinds := announced(h)
	vecs := make([][]float64, len(kinds))
	for i, k := range kinds {
		vecs[i] = make([]float64, h.NumParams)
		if err := wire.ReceiveVector(k, vecs[i], stream.Recv); err != nil {
			if errors.Is(err, wire.ErrCorrupt) {
				return status.Error(codes.DataLoss, err.Error())
			}
			return err
		}
	}
	if err := stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: &fedmov1.UpdateHeader{Client: h.Round}}}); err != nil {
		return err
	}
	for i, k := range kinds {
		if err := wire.SendVector(k, vecs[i], e.chunkBytes, responseChunk(stream), responseEnd(stream)); err != nil {
			return err
		}
		vecs[i] = nil // let the collector have it while the rest is sent
	}
	return nil
}

func responseChunk(stream trainStream) func(*fedmov1.VectorChunk) error {
	return func(c *fedmov1.VectorChunk) error {
		return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Chunk{Chunk: c}})
	}
}

func responseEnd(stream trainStream) func(*fedmov1.VectorEnd) error {
	return func(e *fedmov1.VectorEnd) error {
		return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_End{End: e}})
	}
}

type trainClient = grpc.BidiStreamingClient[fedmov1.TrainRequest, fedmov1.TrainResponse]

func requestChunk(stream trainClient) func(*fedmov1.VectorChunk) error {
	return func(c *fedmov1.VectorChunk) error {
		return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: c}})
	}
}

func requestEnd(stream trainClient) func(*fedmov1.VectorEnd) error {
	return func(e *fedmov1.VectorEnd) error {
		return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_End{End: e}})
	}
}

// serve runs srv as the ClientService of a gRPC server with the
// production options (insecure) on an ephemeral 127.0.0.1 port, and
// returns a connection to it. Cleanup closes both.
func serve(tb testing.TB, srv fedmov1.ClientServiceServer) *grpc.ClientConn {
	tb.Helper()
	sopts, err := security.ServerOptions(security.Options{Insecure: true})
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer(sopts...)
	fedmov1.RegisterClientServiceServer(s, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	tb.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	dopts, err := security.DialOptions(security.Options{Insecure: true})
	if err != nil {
		tb.Fatal(err)
	}
	cc, err := grpc.NewClient(lis.Addr().String(), dopts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// fill writes deterministic values into v, NaNs with payloads included.
func fill(v []float64, seed uint64) {
	x := seed | 1
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = math.Float64frombits(x)
	}
}

// digest is the SHA-256 of v's little-endian bytes.
func digest(v []float64) [sha256.Size]byte {
	h := sha256.New()
	var buf [64 << 10]byte
	for len(v) > 0 {
		n := min(len(v), len(buf)/8)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(x))
		}
		h.Write(buf[:8*n])
		v = v[n:]
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// roundTrip sends the header and vectors (in the order announced) through
// Train, and returns the response's update header and vectors.
func roundTrip(ctx context.Context, cc *grpc.ClientConn, h *fedmov1.TrainHeader, vecs [][]float64, chunkBytes int) (*fedmov1.UpdateHeader, [][]float64, error) {
	stream, err := fedmov1.NewClientServiceClient(cc).Train(ctx)
	if err != nil {
		return nil, nil, err
	}
	kinds := announced(h)
	err = stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: h}})
	for i := 0; err == nil && i < len(kinds); i++ {
		err = wire.SendVector(kinds[i], vecs[i], chunkBytes, requestChunk(stream), requestEnd(stream))
		vecs[i] = nil
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil && !errors.Is(err, io.EOF) { // io.EOF: the status comes with Recv
		return nil, nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	up := resp.GetUpdate()
	if up == nil {
		return nil, nil, fmt.Errorf("got %v, want an UpdateHeader", resp)
	}
	out := make([][]float64, len(kinds))
	for i, k := range kinds {
		out[i] = make([]float64, h.NumParams)
		if err := wire.ReceiveVector(k, out[i], stream.Recv); err != nil {
			return nil, nil, err
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		return nil, nil, fmt.Errorf("after the vectors: %v, want io.EOF", err)
	}
	return up, out, nil
}

func TestEcho(t *testing.T) {
	for _, chunkBytes := range []int{0, wire.MinChunkBytes, wire.MaxChunkBytes} {
		cc := serve(t, echo{chunkBytes: chunkBytes})
		for _, n := range []int{0, 1, 100_003} {
			t.Run(fmt.Sprintf("chunk=%d/n=%d", chunkBytes, n), func(t *testing.T) {
				h := &fedmov1.TrainHeader{Round: 3, NumParams: uint64(n), HasMomentum: true, HasControl: true}
				in := [][]float64{make([]float64, n), make([]float64, n), make([]float64, n)}
				var want [][sha256.Size]byte
				for i, v := range in {
					fill(v, uint64(i+1))
					want = append(want, digest(v))
				}
				up, out, err := roundTrip(t.Context(), cc, h, in, chunkBytes)
				if err != nil {
					t.Fatal(err)
				}
				if up.Client != 3 {
					t.Errorf("update header %v, want client 3 (the round)", up)
				}
				for i, v := range out {
					if digest(v) != want[i] {
						t.Errorf("vector %d came back different", i)
					}
				}
			})
		}
	}
}

// The server refuses a stream that ends before the vector does.
func TestEchoTruncated(t *testing.T) {
	cc := serve(t, echo{})
	stream, err := fedmov1.NewClientServiceClient(cc).Train(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, 100_000)
	sent := 0
	err = stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: &fedmov1.TrainHeader{NumParams: uint64(len(v))}}})
	if err == nil {
		err = wire.SendVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, v, 0,
			func(c *fedmov1.VectorChunk) error {
				if sent++; sent > 2 {
					return nil // lose the rest
				}
				return requestChunk(stream)(c)
			},
			func(*fedmov1.VectorEnd) error { return nil })
	}
	if err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	_, err = stream.Recv()
	if status.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Recv: %v, want DataLoss saying truncated", err)
	}
}

// TestEcho50M sends 50 million float64 (400 MB) to the echo server and
// back through a real gRPC connection and checks that they return bit
// for bit.
func TestEcho50M(t *testing.T) {
	if testing.Short() {
		t.Skip("400 MB each way; skipped in -short")
	}
	if raceEnabled {
		t.Skip("400 MB each way; too slow and large under the race detector")
	}
	const n = 50_000_000
	// The client drops its vector once sent and the server drops each
	// vector once sent back, so about 800 MB are live at a time (peak RSS
	// measured 1.2 GiB). Received chunk data are recycled; the limit
	// keeps whatever garbage remains from doubling the heap.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1536 << 20))
	cc := serve(t, echo{})
	v := make([]float64, n)
	fill(v, 50)
	want := digest(v)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	_, out, err := roundTrip(ctx, cc, &fedmov1.TrainHeader{NumParams: n}, [][]float64{v}, 0)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if got := digest(out[0]); got != want {
		t.Fatalf("SHA-256 %x after the round trip, want %x", got, want)
	}
	t.Logf("400 MB there and back in %v (%.0f MB/s each way); SHA-256 %x", elapsed, 2*8*n/elapsed.Seconds()/1e6, want[:8])
	if peak, ok := peakRSS(); ok {
		t.Logf("peak RSS of the test process: %d MiB", peak>>20)
		if peak > 3<<30 {
			t.Errorf("peak RSS %d MiB, want under 3 GiB", peak>>20)
		}
	}
}

// peakRSS reads VmHWM from /proc/self/status (Linux only).
func peakRSS() (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// sink is a ClientService whose Train receives a header and a model into
// a buffer it keeps, and answers with an UpdateHeader: one-way transfer.
// Benchmarks call it from one goroutine at a time.
type sink struct {
	fedmov1.UnimplementedClientServiceServer
	buf []float64
}

func (s *sink) Train(stream trainStream) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	n := req.GetHeader().GetNumParams()
	if uint64(cap(s.buf)) < n {
		s.buf = make([]float64, n)
	}
	if err := wire.ReceiveVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, s.buf[:n], stream.Recv); err != nil {
		return status.Error(codes.DataLoss, err.Error())
	}
	return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: &fedmov1.UpdateHeader{}}})
}

// sendModel is one one-way model transfer to a sink.
func sendModel(ctx context.Context, cc *grpc.ClientConn, v []float64, chunkBytes int) error {
	stream, err := fedmov1.NewClientServiceClient(cc).Train(ctx)
	if err != nil {
		return err
	}
	err = stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: &fedmov1.TrainHeader{NumParams: uint64(len(v))}}})
	if err == nil {
		err = wire.SendVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, v, chunkBytes, requestChunk(stream), requestEnd(stream))
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("after the answer: %v, want io.EOF", err)
	}
	return nil
}

// BenchmarkTransfer measures a one-way model transfer over loopback:
// grpc is a Train stream with the production options of package security
// (insecure), sending a header and the model with SendVector and
// receiving it with ReceiveVector (encoding, CRC-32C and decoding
// included); rawTCP writes the model's little-endian bytes, encoded
// beforehand, to a TCP connection with io.Copy and reads them into a
// buffer with io.ReadFull, followed by a one-byte acknowledgement. Both
// reuse one connection.
func BenchmarkTransfer(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		v := make([]float64, n)
		fill(v, 1)
		name := fmt.Sprintf("params=%dM", n/1_000_000)
		b.Run(name+"/grpc", func(b *testing.B) {
			cc := serve(b, &sink{})
			b.SetBytes(int64(8 * n))
			b.ReportAllocs()
			for b.Loop() {
				if err := sendModel(b.Context(), cc, v, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/rawTCP", func(b *testing.B) {
			benchRawTCP(b, v)
		})
	}
}

// BenchmarkChunkSize is BenchmarkTransfer's grpc case for 10M parameters
// at several chunk sizes.
func BenchmarkChunkSize(b *testing.B) {
	v := make([]float64, 10_000_000)
	fill(v, 1)
	for _, cb := range []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("chunk=%dKiB", cb>>10), func(b *testing.B) {
			cc := serve(b, &sink{})
			b.SetBytes(int64(8 * len(v)))
			for b.Loop() {
				if err := sendModel(b.Context(), cc, v, cb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchRawTCP(b *testing.B, v []float64) {
	data := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(x))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, len(data))
		for {
			if _, err := io.ReadFull(conn, buf); err != nil {
				return
			}
			if _, err := conn.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		lis.Close()
		<-done
	})
	ack := make([]byte, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(conn, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, ack); err != nil {
			b.Fatal(err)
		}
	}
}
