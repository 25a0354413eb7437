package process

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

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
//
// One call at a time trains (the broadcast buffers are reused). Within a
// call, tasks run as they arrive, up to the pool's size at once, and each
// update is sent back as soon as it is done: the coordinator hands the
// next task to whichever process frees a worker first.
type Trainer struct {
	fedmov1.UnimplementedClientServiceServer

	setup     *experiment.Setup
	rt        *client.Runtime
	configSHA string
	log       *zap.Logger

	mu   sync.Mutex // one call at a time: the broadcast buffers are reused
	pool *client.Pool
	// x, xprev, g, c receive a streamed broadcast; each is made the first
	// time it is needed (a call through the shared directory reads the
	// broadcast in place and needs none).
	x, xprev, g, c []float64
	// slots hold a task's c_i and update until the update is sent: up to
	// three times the workers, for the tasks running, as many waiting for
	// a worker (RemoteConfig.Queue), and updates still being sent. They
	// are made when first needed (a large model's buffers are large).
	slots chan *slot
	made  atomic.Int64 // slots made

	shared *shm.Dir  // the shared directory this process opened; nil for none
	file   *shm.File // this process's file in it, for its updates
	// fileRound is the round whose updates the file holds: they are kept
	// until a later round, as the coordinator aggregates from the file.
	fileRound int64
}

// slot is the memory of one task in flight.
type slot struct {
	ci  []float64          // a streamed c_i (made when first needed)
	out *algorithms.Update // the task's update, computed into own or the shared file
	own *algorithms.Update // buffers of the slot's own, made when first needed
	// refs are the places reserved in the shared file for out.Delta and
	// out.DeltaC (nil: not reserved, the vectors are sent as they are).
	refs [2]*fedmov1.VectorRef
	// pooled says the slot came from Trainer.slots and goes back there; a
	// call through the shared directory needs no buffers (its vectors are
	// views and reserved places), so its slots are made per task and not
	// counted: as many tasks as the coordinator sends may wait for a worker.
	pooled bool
}

// giveBack returns a pooled slot for another task.
func (t *Trainer) giveBack(s *slot) {
	if s.pooled {
		t.slots <- s
	}
}

// NewTrainer returns the Train service for setup's run with the given
// number of worker goroutines. rt decides which clients this process can
// serve (all virtual clients, or one real client's own data).
func NewTrainer(setup *experiment.Setup, rt *client.Runtime, workers int, log *zap.Logger) *Trainer {
	if log == nil {
		log = zap.NewNop()
	}
	t := &Trainer{
		setup: setup, rt: rt, configSHA: setup.Config.Hash(), log: log,
		pool: rt.NewPool(workers, setup.Server.Scaffold),
	}
	t.slots = make(chan *slot, 3*t.pool.Size())
	return t
}

// takeSlot returns a free slot: a new one while fewer than cap(t.slots)
// exist, else the next one given back, waiting for it until ctx ends.
func (t *Trainer) takeSlot(ctx context.Context) (*slot, error) {
	select {
	case s := <-t.slots:
		return s, nil
	default:
	}
	if t.made.Add(1) <= int64(cap(t.slots)) {
		return &slot{out: &algorithms.Update{}, pooled: true}, nil
	}
	t.made.Add(-1)
	select {
	case s := <-t.slots:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Share makes the trainer accept vectors through the shared directory d
// and send its updates through a file of its own there.
func (t *Trainer) Share(d *shm.Dir) error {
	f, err := d.Create(fmt.Sprintf("client-%d-%s.vec", os.Getpid(), rand.Text()[:8]))
	if err != nil {
		return err
	}
	t.shared, t.file, t.fileRound = d, f, -1
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
	if err := t.check(h); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &call{t: t, stream: stream, round: h.Round, shared: h.SharedDir != "", seen: map[int]bool{}}
	if c.shared && (t.file == nil || h.SharedDir != t.shared.ID()) {
		return status.Errorf(codes.FailedPrecondition, "train: the coordinator's shared directory %q is not one this process opened (start it with --shm DIR on the coordinator's host)", h.SharedDir)
	}
	if c.shared { // the last call's tasks are done: so are its views
		if err := t.shared.Release(); err != nil {
			t.log.Warn("shared directory: release", zap.Error(err))
		}
	}
	c.b = &algorithms.Broadcast{Round: int(h.Round)}
	for _, v := range []struct {
		want bool
		kind fedmov1.VectorKind
		buf  *[]float64
		dst  *[]float64
	}{
		{true, fedmov1.VectorKind_VECTOR_KIND_MODEL, &t.x, &c.b.X},
		{h.HasPreviousModel, fedmov1.VectorKind_VECTOR_KIND_PREVIOUS_MODEL, &t.xprev, &c.b.XPrev},
		{h.HasMomentum, fedmov1.VectorKind_VECTOR_KIND_MOMENTUM, &t.g, &c.b.G},
		{h.HasControl, fedmov1.VectorKind_VECTOR_KIND_CONTROL, &t.c, &c.b.C},
	} {
		if !v.want {
			continue
		}
		if *v.dst, err = c.recv(v.kind, v.buf); err != nil {
			return err
		}
	}
	if c.shared && h.Round != t.fileRound {
		if err := t.file.Reset(); err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		t.fileRound = h.Round
	}
	return c.run()
}

// call is one Train call: a receiving goroutine reads tasks and starts
// each on a goroutine of its own, which sends the task's update as soon as
// it is done (one at a time: sendMu). Sending from the goroutine that just
// finished the task, rather than handing the update to another, gets it
// out while that goroutine still holds a thread: the pool's next task
// would otherwise keep the thread, and the update would wait for it.
type call struct {
	t      *Trainer
	stream fedmov1.ClientService_TrainServer
	round  int64
	shared bool
	b      *algorithms.Broadcast
	seen   map[int]bool // clients of this call

	mu      sync.Mutex
	stopped bool           // the handler is returning: start no task
	running sync.WaitGroup // tasks started

	sendMu  sync.Mutex
	sendErr error         // the first failed send: the others are skipped
	failed  chan struct{} // closed at the first failed send
	ids     []int         // clients answered, for the log
}

// run trains the call's tasks, whose goroutines send their updates.
func (c *call) run() error {
	c.failed = make(chan struct{})
	recvErr := make(chan error, 1)
	go func() { recvErr <- c.receiveTasks() }()
	var err error
	select {
	case err = <-recvErr:
	case <-c.failed:
	}
	if err == nil && c.firstSendErr() == nil { // the coordinator sent its last task
		c.running.Wait()
		if err = c.firstSendErr(); err == nil {
			c.t.log.Info("train", zap.Int64("round", c.round), zap.Ints("clients", c.ids))
		}
		return err
	}
	// Stop: no task starts any more, and those running finish (sending
	// nothing more) before the buffers are released. The receiving
	// goroutine may still be blocked in Recv; it ends when the stream
	// does, and starts nothing.
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.running.Wait()
	if err == nil {
		err = c.firstSendErr()
	}
	return err
}

// finished sends the update of a task that is done, unless a send failed
// before, and gives its slot back.
func (c *call) finished(s *slot) {
	c.sendMu.Lock()
	if c.sendErr == nil {
		if c.sendErr = c.send(s); c.sendErr != nil {
			close(c.failed)
		}
	}
	c.sendMu.Unlock()
	c.t.giveBack(s)
}

func (c *call) firstSendErr() error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.sendErr
}

// receiveTasks reads Tasks (and their c_i) until the coordinator closes
// its side, and starts each on the pool.
func (c *call) receiveTasks() error {
	for {
		m, err := c.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		task := m.GetTask()
		if task == nil {
			return status.Errorf(codes.InvalidArgument, "train: expected a Task after the broadcast, got %T", m.GetMsg())
		}
		id, err := c.t.checkTask(task, c.seen)
		if err != nil {
			return err
		}
		s := &slot{out: &algorithms.Update{}}
		if !c.shared {
			if s, err = c.t.takeSlot(c.stream.Context()); err != nil { // waits while all are in use
				return status.FromContextError(err).Err()
			}
		}
		var ci []float64
		if task.HasClientControl {
			if ci, err = c.recv(fedmov1.VectorKind_VECTOR_KIND_CLIENT_CONTROL, &s.ci); err != nil {
				c.t.giveBack(s)
				return err
			}
		}
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			c.t.giveBack(s)
			return nil
		}
		if err := c.prepare(s); err != nil {
			c.mu.Unlock()
			c.t.giveBack(s)
			return err
		}
		c.running.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.running.Done()
			c.t.pool.Do(id, c.b, ci, s.out) // gives the worker back to the next task
			c.finished(s)
		}()
	}
}

// prepare points the slot's update at its memory: places reserved in the
// shared file, so that the update is computed where the coordinator reads
// it, or the slot's own buffers.
func (c *call) prepare(s *slot) error {
	n := c.t.setup.Model.NumParams()
	s.refs = [2]*fedmov1.VectorRef{}
	if c.shared {
		d, ref, ok, err := c.t.file.Reserve(fedmov1.VectorKind_VECTOR_KIND_DELTA, n)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		if ok {
			s.out.Delta, s.out.DeltaC, s.refs[0] = d, nil, ref
			if c.t.setup.Server.Scaffold {
				dc, ref, _, err := c.t.file.Reserve(fedmov1.VectorKind_VECTOR_KIND_DELTA_CONTROL, n)
				if err != nil {
					return status.Error(codes.Internal, err.Error())
				}
				s.out.DeltaC, s.refs[1] = dc, ref
			}
			return nil
		}
	}
	if s.own == nil {
		s.own = c.t.pool.NewUpdate(n)
	}
	s.out.Delta, s.out.DeltaC = s.own.Delta, s.own.DeltaC
	return nil
}

// recv reads the next vector, of the model's length: streamed, into *buf
// (made if nil); or as a view of the coordinator's file (buf unused).
func (c *call) recv(kind fedmov1.VectorKind, buf *[]float64) ([]float64, error) {
	n := c.t.setup.Model.NumParams()
	var (
		v   []float64
		err error
	)
	if c.shared {
		v, err = c.recvShared(kind, n)
	} else {
		if *buf == nil {
			*buf = make([]float64, n)
		}
		v = *buf
		err = wire.ReceiveVector(kind, v, c.stream.Recv)
	}
	if errors.Is(err, wire.ErrCorrupt) {
		return nil, status.Error(codes.DataLoss, err.Error())
	}
	return v, err
}

// recvShared reads the next message, a reference to a vector of n
// elements in the shared directory, and returns a view of the vector
// (valid until the next call's Release: the coordinator rewrites it only
// in a later round).
func (c *call) recvShared(kind fedmov1.VectorKind, n int) ([]float64, error) {
	m, err := c.stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s vector: the stream ended before its reference (truncated)", wire.ErrCorrupt, kind)
	} else if err != nil {
		return nil, err
	}
	return c.t.shared.View(kind, m.GetRef(), n)
}

// send sends one task's update: its header, then its vectors.
func (c *call) send(s *slot) error {
	u := s.out
	uh := &fedmov1.UpdateHeader{Client: int64(u.Client), Samples: int64(u.Samples), Loss: u.Loss, HasDeltaControl: u.DeltaC != nil}
	if err := c.stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Update{Update: uh}}); err != nil {
		return err
	}
	if err := c.sendVector(fedmov1.VectorKind_VECTOR_KIND_DELTA, u.Delta, s.refs[0]); err != nil {
		return err
	}
	if u.DeltaC != nil {
		if err := c.sendVector(fedmov1.VectorKind_VECTOR_KIND_DELTA_CONTROL, u.DeltaC, s.refs[1]); err != nil {
			return err
		}
	}
	c.ids = append(c.ids, u.Client)
	return nil
}

// sendVector sends v: streamed, or through the shared file, where it
// already is if ref is not nil.
func (c *call) sendVector(kind fedmov1.VectorKind, v []float64, ref *fedmov1.VectorRef) error {
	if ref != nil {
		return c.stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Ref{Ref: ref}})
	}
	if !c.shared {
		return wire.SendVector(kind, v, 0,
			func(ch *fedmov1.VectorChunk) error {
				return c.stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Chunk{Chunk: ch}})
			},
			func(e *fedmov1.VectorEnd) error {
				return c.stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_End{End: e}})
			})
	}
	ref, err := c.t.file.Put(kind, v)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return c.stream.Send(&fedmov1.TrainResponse{Msg: &fedmov1.TrainResponse_Ref{Ref: ref}})
}

// check validates a header against this process's run.
func (t *Trainer) check(h *fedmov1.TrainHeader) error {
	s := t.setup.Server
	n := t.setup.Model.NumParams()
	switch {
	case h.ProtocolVersion != ProtocolVersion:
		return status.Errorf(codes.FailedPrecondition, "train: protocol version %d, this process speaks %d", h.ProtocolVersion, ProtocolVersion)
	case h.ConfigSha256 != t.configSHA:
		return status.Errorf(codes.FailedPrecondition, "train: config fingerprint %.12s, this process runs %.12s", h.ConfigSha256, t.configSHA)
	case h.NumParams != uint64(n):
		return status.Errorf(codes.InvalidArgument, "train: %d parameters, the model has %d", h.NumParams, n)
	case h.Round < 0:
		return status.Errorf(codes.InvalidArgument, "train: round %d", h.Round)
	case h.HasPreviousModel != s.Local.VR, h.HasMomentum != s.Local.Momentum(), h.HasControl != s.Scaffold:
		return status.Errorf(codes.InvalidArgument, "train: the header's vectors (previous model %v, momentum %v, control %v) do not fit the algorithm (%v, %v, %v)",
			h.HasPreviousModel, h.HasMomentum, h.HasControl, s.Local.VR, s.Local.Momentum(), s.Scaffold)
	}
	return nil
}

// checkTask validates a task; seen holds the call's clients so far.
func (t *Trainer) checkTask(task *fedmov1.Task, seen map[int]bool) (int, error) {
	id := int(task.Client)
	switch {
	case task.Client < 0 || task.Client >= int64(t.rt.NumClients()):
		return 0, status.Errorf(codes.InvalidArgument, "train: client %d is not in [0, %d)", task.Client, t.rt.NumClients())
	case !t.rt.Hosts(id):
		return 0, status.Errorf(codes.InvalidArgument, "train: client %d's data is not on this process", id)
	case seen[id]:
		return 0, status.Errorf(codes.InvalidArgument, "train: client %d twice", id)
	case task.HasClientControl && !t.setup.Server.Scaffold:
		return 0, status.Errorf(codes.InvalidArgument, "train: client %d has a control variate but the algorithm is not scaffold", id)
	}
	seen[id] = true
	return id, nil
}
