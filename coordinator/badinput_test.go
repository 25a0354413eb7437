package coordinator

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/fedmo/fedmo/client/process"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/runner"
)

// evil wraps a real Trainer and tampers with what it sends.
type evil struct {
	fedmov1.UnimplementedClientServiceServer
	inner  *process.Trainer
	tamper func(call int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse
	mu     sync.Mutex
	calls  int
}

type evilStream struct {
	fedmov1.ClientService_TrainServer
	send func(*fedmov1.TrainResponse) error
}

func (s evilStream) Send(m *fedmov1.TrainResponse) error { return s.send(m) }

func (e *evil) Train(stream fedmov1.ClientService_TrainServer) error {
	e.mu.Lock()
	e.calls++
	call := e.calls
	e.mu.Unlock()
	return e.inner.Train(evilStream{stream, func(m *fedmov1.TrainResponse) error {
		if m = e.tamper(call, m); m == nil {
			return nil // dropped
		}
		return stream.Send(m)
	}})
}

func serveEvil(t *testing.T, setup *experiment.Setup, name string, tamper func(int, *fedmov1.TrainResponse) *fedmov1.TrainResponse) (Host, *grpc.Server) {
	t.Helper()
	return listen(t, name, &evil{inner: trainer(t, setup, 1), tamper: tamper})
}

func flipChunk(m *fedmov1.TrainResponse) *fedmov1.TrainResponse {
	c := m.GetChunk()
	if c == nil {
		return m
	}
	data := append([]byte(nil), c.Data...)
	data[3] ^= 0x10
	return &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Chunk{Chunk: &fedmov1.VectorChunk{Kind: c.Kind, Offset: c.Offset, Data: data}}}
}

// TestBadProcesses: a corrupted stream is retried, a process that keeps
// sending wrong-length vectors or answers for unknown clients is dropped and
// its clients re-hosted; the run ends on the simulator's model. NaN updates
// are rejected with their reason and counted, and the run goes on.
func TestBadProcesses(t *testing.T) {
	setup := parse(t, "algorithm.name=scaffold")
	want := simulated(t, setup)
	for _, tc := range []struct {
		name     string
		tamper   func(call int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse
		sameRun  bool
		rejected string
	}{
		{"corrupt-once", func(call int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse {
			if call == 1 {
				return flipChunk(m)
			}
			return m
		}, true, ""},
		{"wrong-length", func(_ int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse {
			if e := m.GetEnd(); e != nil {
				return &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_End{End: &fedmov1.VectorEnd{Kind: e.Kind, Length: e.Length + 1, Crc32C: e.Crc32C}}}
			}
			return m
		}, true, ""},
		{"unknown-client", func(_ int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse {
			if u := m.GetUpdate(); u != nil {
				return &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: &fedmov1.UpdateHeader{
					Client: 1000 + u.Client, Samples: u.Samples, Loss: u.Loss, HasDeltaControl: u.HasDeltaControl}}}
			}
			return m
		}, true, "not sampled"},
		{"nan", func(_ int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse {
			if u := m.GetUpdate(); u != nil {
				return &fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: &fedmov1.UpdateHeader{
					Client: u.Client, Samples: u.Samples, Loss: math.NaN(), HasDeltaControl: u.HasDeltaControl}}}
			}
			return m
		}, false, "loss NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, _ := serve(t, setup, "good")
			evil, _ := serveEvil(t, setup, "evil", tc.tamper)
			dir := &fixedDir{hosts: []Host{good, evil}}
			r := remote(setup, dir)
			defer r.Close()
			var rejected []engine.Rejection
			obs := engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
				rejected = append(rejected, m.Rejected...)
				return nil
			})
			got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1, Observer: obs})
			if err != nil {
				t.Fatal(err)
			}
			if tc.sameRun && hashes(got) != hashes(want) {
				t.Fatalf("hashes\n%s\nwant the simulator's\n%s", hashes(got), hashes(want))
			}
			if !tc.sameRun && got.FinalSHA256 == "" {
				t.Fatal("no final model")
			}
			if tc.rejected != "" && (len(rejected) == 0 || !strings.Contains(rejected[0].Reason, tc.rejected)) {
				t.Fatalf("rejected %+v, want a reason with %q", rejected, tc.rejected)
			}
			if tc.rejected == "" && len(rejected) != 0 {
				t.Fatalf("rejected %+v, want none", rejected)
			}
			if tc.name == "wrong-length" && !r.dead["evil"] {
				t.Error("a process that keeps sending wrong lengths was not dropped")
			}
			if tc.name == "corrupt-once" && r.dead["evil"] {
				t.Error("a process whose stream was corrupted once was dropped instead of retried")
			}
		})
	}
}
