package process

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/experiment"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/wire"
)

const small = `
seed: 3
rounds: 2
clients: 8
participation: 4
data: {name: synthetic, partition: natural}
model: {name: mlp, hidden: [8]}
local: {steps: 2, batch: 4, lr: 0.05}
`

func setupOf(t *testing.T, sets ...string) *experiment.Setup {
	t.Helper()
	cfg, err := config.Parse([]byte(small), sets)
	if err != nil {
		t.Fatal(err)
	}
	s, err := experiment.Build(cfg, experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dial serves a Trainer of setup with the given workers and opens a Train
// stream to it.
func dial(t *testing.T, setup *experiment.Setup, workers int) fedmov1.ClientService_TrainClient {
	t.Helper()
	rt, err := setup.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	fedmov1.RegisterClientServiceServer(s, NewTrainer(setup, rt, workers, nil))
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := fedmov1.NewClientServiceClient(conn).Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

func send(t *testing.T, stream fedmov1.ClientService_TrainClient, m *fedmov1.TrainRequest) {
	t.Helper()
	if err := stream.Send(m); err != nil && !errors.Is(err, io.EOF) { // EOF: the server ended the call; Recv says why
		t.Fatal(err)
	}
}

// sendBroadcast sends the header and the model of setup's initial state.
func sendBroadcast(t *testing.T, stream fedmov1.ClientService_TrainClient, setup *experiment.Setup, edit func(*fedmov1.TrainHeader)) []float64 {
	t.Helper()
	x := setup.InitialModel()
	h := &fedmov1.TrainHeader{ProtocolVersion: ProtocolVersion, ConfigSha256: setup.Config.Hash(), Round: 1, NumParams: uint64(len(x))}
	if edit != nil {
		edit(h)
	}
	send(t, stream, &fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: h}})
	err := wire.SendVector(fedmov1.VectorKind_VECTOR_KIND_MODEL, x, 0,
		func(c *fedmov1.VectorChunk) error {
			return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: c}})
		},
		func(e *fedmov1.VectorEnd) error {
			return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_End{End: e}})
		})
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return x
}

func task(id int64) *fedmov1.TrainRequest {
	return &fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Task{Task: &fedmov1.Task{Client: id}}}
}

// TestTrainAnswersEachTask: tasks sent one after another over one call are
// answered one by one, each with the update the client runtime computes
// for it directly.
func TestTrainAnswersEachTask(t *testing.T) {
	setup := setupOf(t)
	stream := dial(t, setup, 1)
	x := sendBroadcast(t, stream, setup, nil)
	rt, _ := setup.Runtime()
	pool := rt.NewPool(1, false)
	for _, id := range []int{5, 2, 7} {
		send(t, stream, task(int64(id)))
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		uh := m.GetUpdate()
		if uh == nil || uh.Client != int64(id) {
			t.Fatalf("got %v, want the update of client %d", m, id)
		}
		got := make([]float64, len(x))
		if err := wire.ReceiveVector(fedmov1.VectorKind_VECTOR_KIND_DELTA, got, stream.Recv); err != nil {
			t.Fatal(err)
		}
		want := pool.NewUpdate(len(x))
		pool.Do(id, &algorithms.Broadcast{Round: 1, X: x}, nil, want)
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want.Delta[i]) {
				t.Fatalf("client %d: delta[%d] = %v, want %v", id, i, got[i], want.Delta[i])
			}
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last task: %v, want io.EOF", err)
	}
}

// TestTrainRejects: every malformed call ends with a status that says what
// is wrong.
func TestTrainRejects(t *testing.T) {
	setup := setupOf(t)
	for _, tc := range []struct {
		name  string
		edit  func(*fedmov1.TrainHeader)
		tasks []*fedmov1.TrainRequest
		want  string
	}{
		{"out of range", nil, []*fedmov1.TrainRequest{task(8)}, "client 8 is not in [0, 8)"},
		{"twice", nil, []*fedmov1.TrainRequest{task(1), task(1)}, "client 1 twice"},
		{"control variate", nil, []*fedmov1.TrainRequest{{Msg: &fedmov1.TrainRequest_Task{Task: &fedmov1.Task{Client: 1, HasClientControl: true}}}},
			"has a control variate but the algorithm is not scaffold"},
		{"not a task", nil, []*fedmov1.TrainRequest{{Msg: &fedmov1.TrainRequest_Header{Header: &fedmov1.TrainHeader{}}}}, "expected a Task"},
		{"shared directory", func(h *fedmov1.TrainHeader) { h.SharedDir = "0123456789abcdef" }, nil, "not one this process opened"},
		{"protocol", func(h *fedmov1.TrainHeader) { h.ProtocolVersion = 1 }, nil, "protocol version 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := dial(t, setup, 2)
			sendBroadcast(t, stream, setup, tc.edit)
			for _, m := range tc.tasks {
				send(t, stream, m)
			}
			stream.CloseSend()
			var err error
			for err == nil {
				_, err = stream.Recv()
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
