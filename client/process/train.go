package process

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/client"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/membership"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/wire"
	"github.com/fedmo/fedmo/wire/shm"
)

// ProtocolVersion is the version of the wire protocol this build speaks.
const ProtocolVersion = membership.ProtocolVersion

// Trainer serves ClientService.Train: it runs the local updates of the
// tasks a coordinator sends, on a client.Pool, with the same client
// runtime as the simulator.
type Trainer struct {
	fedmov1.UnimplementedClientServiceServer

	setup     *experiment.Setup
	rt        *client.Runtime
	configSHA string
	log       *zap.Logger

	mu             sync.Mutex // one round at a time: the pool's buffers are reused
	pool           *client.Pool
	x, xprev, g, c []float64
	cis            [][]float64

	shared *shm.Dir  // the shared directory this process opened; nil for none
	file   *shm.File // this process's file in it, for its updates
}

// NewTrainer returns the Train service for setup's run with the given
// number of worker goroutines. rt decides which clients this process can
// serve (all virtual clients, or one real client's own data).
func NewTrainer(setup *experiment.Setup, rt *client.Runtime, workers int, log *zap.Logger) *Trainer {
	n := setup.Model.NumParams()
	if log == nil {
		log = zap.NewNop()
	}
	return &Trainer{
		setup: setup, rt: rt, configSHA: setup.Config.Hash(), log: log,
		pool: rt.NewPool(workers, setup.Server.Scaffold),
		x:    make([]float64, n), xprev: make([]float64, n), g: make([]float64, n), c: make([]float64, n),
	}
}

// Share makes the trainer accept vectors through the shared directory d
// and send its updates through a file of its own there.
func (t *Trainer) Share(d *shm.Dir) error {
	f, err := d.Create(fmt.Sprintf("client-%d-%s.vec", os.Getpid(), rand.Text()[:8]))
	if err != nil {
		return err
	}
	t.shared, t.file = d, f
	return nil
}

// Close removes the trainer's shared file, if any.
func (t *Trainer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.file == nil {
		return nil
	}
	err := t.file.Close()
	t.file = nil
	return err
}

// Train implements fedmov1.ClientServiceServer.
func (t *Trainer) Train(stream fedmov1.ClientService_TrainServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "train: the stream must start with a TrainHeader")
	}
	ids, err := t.check(h)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	shared := h.SharedDir != ""
	if shared && (t.file == nil || h.SharedDir != t.shared.ID()) {
		return status.Errorf(codes.FailedPrecondition, "train: the coordinator's shared directory %q is not one this process opened (start it with --shm DIR on the coordinator's host)", h.SharedDir)
	}
	recv := func(kind fedmov1.VectorKind, dst []float64) error {
		var err error
		if shared {
			err = t.recvShared(kind, dst, stream)
		} else {
			err = wire.ReceiveVector(kind, dst, stream.Recv)
		}
		if errors.Is(err, wire.ErrCorrupt) {
			return status.Error(codes.DataLoss, err.Error())
		}
		return err
	}
	b := &algorithms.Broadcast{Round: int(h.Round), X: t.x}
	if err := recv(fedmov1.VectorKind_VECTOR_KIND_MODEL, t.x); err != nil {
		return err
	}
	if h.HasPreviousModel {
		b.XPrev = t.xprev
		if err := recv(fedmov1.VectorKind_VECTOR_KIND_PREVIOUS_MODEL, t.xprev); err != nil {
			return err
		}
	}
	if h.HasMomentum {
		b.G = t.g
		if err := recv(fedmov1.VectorKind_VECTOR_KIND_MOMENTUM, t.g); err != nil {
			return err
		}
	}
	if h.HasControl {
		b.C = t.c
		if err := recv(fedmov1.VectorKind_VECTOR_KIND_CONTROL, t.c); err != nil {
			return err
		}
	}
	cis := make([][]float64, len(ids))
	for i, task := range h.Tasks {
		if !task.HasClientControl {
			continue
		}
		for len(t.cis) <= i {
			t.cis = append(t.cis, make([]float64, len(t.x)))
		}
		cis[i] = t.cis[i]
		if err := recv(fedmov1.VectorKind_VECTOR_KIND_CLIENT_CONTROL, cis[i]); err != nil {
			return err
		}
	}
	ups, err := t.pool.Run(stream.Context(), b, ids, cis)
	if err != nil {
		return status.FromContextError(err).Err()
	}
	send := func(c *fedmov1.VectorChunk) error {
		return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Chunk{Chunk: c}})
	}
	end := func(e *fedmov1.VectorEnd) error {
		return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_End{End: e}})
	}
	sendVector := func(kind fedmov1.VectorKind, v []float64) error {
		if !shared {
			return wire.SendVector(kind, v, 0, send, end)
		}
		ref, err := t.file.Put(kind, v)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		return stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Ref{Ref: ref}})
	}
	if shared {
		t.file.Reset()
	}
	for _, u := range ups {
		uh := &fedmov1.UpdateHeader{Client: int64(u.Client), Samples: int64(u.Samples), Loss: u.Loss, HasDeltaControl: u.DeltaC != nil}
		if err := stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: uh}}); err != nil {
			return err
		}
		if err := sendVector(fedmov1.VectorKind_VECTOR_KIND_DELTA, u.Delta); err != nil {
			return err
		}
		if u.DeltaC != nil {
			if err := sendVector(fedmov1.VectorKind_VECTOR_KIND_DELTA_CONTROL, u.DeltaC); err != nil {
				return err
			}
		}
	}
	t.log.Info("train", zap.Int64("round", h.Round), zap.Ints("clients", ids))
	return nil
}

// recvShared reads the next message, a reference to a vector in the shared
// directory, and the vector it points to.
func (t *Trainer) recvShared(kind fedmov1.VectorKind, dst []float64, stream fedmov1.ClientService_TrainServer) error {
	m, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s vector: the stream ended before its reference (truncated)", wire.ErrCorrupt, kind)
	} else if err != nil {
		return err
	}
	return t.shared.Read(kind, m.GetRef(), dst)
}

// check validates a header against this process's run.
func (t *Trainer) check(h *fedmov1.TrainHeader) ([]int, error) {
	s := t.setup.Server
	n := t.setup.Model.NumParams()
	switch {
	case h.ProtocolVersion != ProtocolVersion:
		return nil, status.Errorf(codes.FailedPrecondition, "train: protocol version %d, this process speaks %d", h.ProtocolVersion, ProtocolVersion)
	case h.ConfigSha256 != t.configSHA:
		return nil, status.Errorf(codes.FailedPrecondition, "train: config fingerprint %.12s, this process runs %.12s", h.ConfigSha256, t.configSHA)
	case h.NumParams != uint64(n):
		return nil, status.Errorf(codes.InvalidArgument, "train: %d parameters, the model has %d", h.NumParams, n)
	case h.Round < 0:
		return nil, status.Errorf(codes.InvalidArgument, "train: round %d", h.Round)
	case h.HasPreviousModel != s.Local.VR, h.HasMomentum != s.Local.Momentum(), h.HasControl != s.Scaffold:
		return nil, status.Errorf(codes.InvalidArgument, "train: the header's vectors (previous model %v, momentum %v, control %v) do not fit the algorithm (%v, %v, %v)",
			h.HasPreviousModel, h.HasMomentum, h.HasControl, s.Local.VR, s.Local.Momentum(), s.Scaffold)
	case len(h.Tasks) == 0:
		return nil, status.Error(codes.InvalidArgument, "train: no tasks")
	}
	ids := make([]int, len(h.Tasks))
	seen := map[int]bool{}
	for i, task := range h.Tasks {
		id := int(task.Client)
		switch {
		case task.Client < 0 || task.Client >= int64(t.rt.NumClients()):
			return nil, status.Errorf(codes.InvalidArgument, "train: client %d is not in [0, %d)", task.Client, t.rt.NumClients())
		case !t.rt.Hosts(id):
			return nil, status.Errorf(codes.InvalidArgument, "train: client %d's data is not on this process", id)
		case seen[id]:
			return nil, status.Errorf(codes.InvalidArgument, "train: client %d twice", id)
		case task.HasClientControl && !s.Scaffold:
			return nil, status.Errorf(codes.InvalidArgument, "train: client %d has a control variate but the algorithm is not scaffold", id)
		}
		seen[id] = true
		ids[i] = id
	}
	return ids, nil
}
