package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/client/process"
	"github.com/fedmo/fedmo/engine"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/wire"
	"github.com/fedmo/fedmo/wire/shm"
)

// Host is a live client process as the coordinator sees it.
type Host struct {
	Name string // unique node name (a new one per process incarnation)
	Addr string // its gRPC address
	Real int64  // the real client it serves with its own data; -1 for a host of virtual clients
	// Capacity is the number of tasks it runs at once (its workers); 0
	// counts as 1.
	Capacity int
	// Shared is the id of the shared directory it opened (package
	// wire/shm); "" for none.
	Shared string
}

// Directory lists the live client processes. The gossip membership is
// one; tests use a fixed list.
type Directory interface {
	Hosts() []Host
}

// RemoteConfig configures a Remote executor.
type RemoteConfig struct {
	ConfigSHA256 string        // the run's config fingerprint, checked by every process
	NumParams    int           // the model's length
	RoundTimeout time.Duration // a round's deadline
	// Quorum is the fraction of a round's sampled clients that must report
	// for the round to close at its deadline without the missing real
	// clients. Virtual clients are re-hosted until they report.
	Quorum   float64
	Attempts int               // tries of a task on one process whose stream arrived corrupted
	Dial     []grpc.DialOption // transport security, token, keepalive
	// MaxInFlight bounds the tasks running at once over all processes; 0
	// means the sum of their capacities. Processes that share one machine's
	// cores gain nothing from running more tasks than it has cores: the
	// tasks only time-share them (fedmo local sets it to the core count).
	MaxInFlight int
	// Queue is how many tasks a process may hold beyond its workers, waiting
	// for the next free one, so that a worker never waits for the round trip
	// to the coordinator. They are handed out for good: a process that is
	// slow to start them holds the round back, so a cluster with processes
	// of unequal speed is better off without (0). fedmo local sets it to
	// the workers.
	Queue int
	// Shared, if set, is a shared directory on this host: vectors to and
	// from the processes that opened the same one (same id) go through
	// files in it instead of the gRPC stream. Nil streams every vector.
	Shared *shm.Dir
	Logger *zap.Logger
	// Poll is how often an executor waiting for processes looks again.
	Poll time.Duration
}

// Stats describes the last round's traffic.
type Stats struct {
	// Longest over the round's calls: sending the broadcast, from then to
	// the first update, and receiving updates' vectors.
	Dispatch, Compute, Upload time.Duration
	BytesOut, BytesIn         int64
	Calls, Failed, Rehosted   int
}

// Remote is the coordinator's engine.Executor: it runs each round's tasks
// on the live client processes over gRPC and collects their updates.
//
// # Scheduling
//
// A round is a work queue. Every live process that can run a waiting task
// gets one Train call: the broadcast with its first task, then tasks one
// by one, as many at a time as its capacity (its workers, from its gossip
// metadata) plus RemoteConfig.Queue waiting for a worker, the next one
// each time an update's header arrives; so a process that is faster, or
// less loaded, runs more of the round. A real client's task goes only to
// the process that serves it, other tasks to any process of virtual
// clients, in the engine's order. RemoteConfig.MaxInFlight bounds the
// tasks running over all processes; with it, only as many processes are
// called (in name order) as their capacities need to reach it. A process
// that fails (an RPC error, or a stream still corrupt after Attempts
// tries) is dropped for the rest of the run and its tasks go back to the
// queue; the result does not depend on where, or in which order, tasks
// run: the engine aggregates the updates in client-id order.
//
// # Transport
//
// Vectors stream through the Train call in chunks (package wire), except
// with the processes that share RemoteConfig.Shared: the round's
// broadcast vectors and c_i are then written once into the coordinator's
// file there, and each call carries references to them (package
// wire/shm).
type Remote struct {
	cfg RemoteConfig
	dir Directory
	log *zap.Logger

	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	dead    map[string]bool
	realIDs map[int64]bool
	free    [][]float64
	used    [][]float64
	stats   Stats
	cancels map[string]context.CancelFunc // in-flight calls by host
	file    *shm.File                     // the coordinator's file in cfg.Shared
}

// NewRemote returns an executor over the processes dir lists.
func NewRemote(cfg RemoteConfig, dir Directory) *Remote {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Attempts < 1 {
		cfg.Attempts = 3
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.RoundTimeout <= 0 {
		cfg.RoundTimeout = 10 * time.Minute
	}
	return &Remote{cfg: cfg, dir: dir, log: cfg.Logger, conns: map[string]*grpc.ClientConn{},
		dead: map[string]bool{}, realIDs: map[int64]bool{}, cancels: map[string]context.CancelFunc{}}
}

// Gone tells the executor that gossip declared a process failed or gone:
// its call in flight, if any, is cancelled and its tasks re-hosted, without
// waiting for the RPC to time out (a hung process never answers).
func (r *Remote) Gone(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel, ok := r.cancels[name]; ok {
		cancel()
	}
	if !r.dead[name] {
		r.log.Info("gossip: client process gone", zap.String("process", name))
	}
	r.dead[name] = true
}

// Stats returns the last round's traffic.
func (r *Remote) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close closes the connections.
func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for name, c := range r.conns {
		errs = append(errs, c.Close())
		delete(r.conns, name)
	}
	if r.file != nil {
		errs = append(errs, r.file.Close())
		r.file = nil
	}
	return errors.Join(errs...)
}

// live returns the hosts that have not failed, sorted by name.
func (r *Remote) live() []Host {
	all := r.dir.Hosts()
	r.mu.Lock()
	defer r.mu.Unlock()
	var hs []Host
	for _, h := range all {
		if h.Real >= 0 {
			r.realIDs[h.Real] = true
		}
		if !r.dead[h.Name] {
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	return hs
}

// ended is a finished Train call.
type ended struct {
	host  Host
	stats Stats
	lost  int // tasks it had in flight when it failed
	err   error
}

// Execute implements engine.Executor.
func (r *Remote) Execute(ctx context.Context, b *algorithms.Broadcast, tasks []engine.Task) ([]*algorithms.Update, error) {
	r.live() // learn the real clients
	if r.cfg.Shared != nil {
		// The engine has aggregated the last round: its views can go.
		if err := r.cfg.Shared.Release(); err != nil {
			r.log.Warn("shared directory: release", zap.Error(err))
		}
	}
	r.mu.Lock()
	r.free = append(r.free, r.used...)
	r.used = nil
	r.stats = Stats{}
	q := newQueue(tasks, r.cfg.MaxInFlight, maps.Clone(r.realIDs))
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RoundTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, q.close)
	defer stop()
	var shared func() (*roundRefs, error)
	if r.cfg.Shared != nil {
		shared = sync.OnceValues(func() (*roundRefs, error) { return r.putRound(b, tasks) })
	}

	calls := map[string]int{} // hosts with a call running: their capacity for virtual clients
	results := make(chan ended)
	tries := map[string]int{}
	for q.left() > 0 && ctx.Err() == nil {
		for _, h := range r.live() {
			if _, ok := calls[h.Name]; ok || !q.hasWork(h) || r.enough(h, calls) {
				continue
			}
			calls[h.Name] = 0 // a real client's process runs only its own task
			if h.Real < 0 {
				calls[h.Name] = max(h.Capacity, 1)
			}
			cctx, ccancel := context.WithCancel(ctx)
			r.mu.Lock()
			r.cancels[h.Name] = ccancel
			r.mu.Unlock()
			go func() {
				res := r.call(cctx, h, b, q, shared)
				r.mu.Lock()
				delete(r.cancels, h.Name)
				r.mu.Unlock()
				ccancel()
				results <- res
			}()
		}
		select {
		case res := <-results:
			delete(calls, res.host.Name)
			r.finished(res, tries)
		case <-ctx.Done():
		case <-time.After(r.cfg.Poll): // processes that joined, or work for one whose call ended
		}
	}
	q.close() // calls end: nothing is left to take (or the deadline cancelled them)
	for len(calls) > 0 {
		res := <-results
		delete(calls, res.host.Name)
		r.finished(res, tries)
	}
	got, missing := q.result(tasks)
	if len(missing) > 0 {
		need := int(math.Ceil(r.cfg.Quorum * float64(len(tasks))))
		reported := len(tasks) - len(missing)
		if reported < need || reported == 0 {
			return nil, fmt.Errorf("coordinator: %d of %d clients reported by the deadline (%v), the quorum is %d; missing %v",
				reported, len(tasks), r.cfg.RoundTimeout, need, missing)
		}
		r.log.Warn("round closed without clients", zap.Ints("missing", missing), zap.Int("reported", reported))
	}
	return got, nil
}

// enough reports whether the calls running can already run as many tasks
// as the in-flight limit allows, so that virtual-client process h need
// not be called: the round's tasks then run on as few processes as
// possible (hosts in name order, the same every round), which keeps their
// caches warm. A real client's process is always called.
func (r *Remote) enough(h Host, calls map[string]int) bool {
	if r.cfg.MaxInFlight <= 0 || h.Real >= 0 {
		return false
	}
	slots := 0
	for _, c := range calls {
		slots += c
	}
	return slots >= r.cfg.MaxInFlight
}

// finished accounts for a Train call that ended; one that failed drops
// its process, unless its stream was corrupt and it has tries left.
func (r *Remote) finished(res ended, tries map[string]int) {
	name := res.host.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	s := res.stats
	r.stats.Dispatch = max(r.stats.Dispatch, s.Dispatch)
	r.stats.Compute = max(r.stats.Compute, s.Compute)
	r.stats.Upload = max(r.stats.Upload, s.Upload)
	r.stats.BytesIn += s.BytesIn
	r.stats.BytesOut += s.BytesOut
	r.stats.Calls++
	if res.err == nil {
		return
	}
	if (errors.Is(res.err, context.Canceled) || status.Code(res.err) == codes.Canceled) && !r.dead[name] {
		return // the round ended first (a process gossip declared gone is dead already)
	}
	r.stats.Failed++
	tries[name]++
	corrupt := errors.Is(res.err, wire.ErrCorrupt) || status.Code(res.err) == codes.DataLoss
	if corrupt && tries[name] < r.cfg.Attempts {
		r.log.Warn("corrupt stream, retrying", zap.String("process", name), zap.Int("try", tries[name]), zap.Error(res.err))
		return
	}
	r.log.Warn("client process failed; re-hosting its clients", zap.String("process", name),
		zap.Int("tasks", res.lost), zap.Error(res.err))
	r.dead[name] = true
	r.stats.Rehosted += res.lost
	if c, ok := r.conns[name]; ok {
		c.Close()
		delete(r.conns, name)
	}
}

func (r *Remote) conn(h Host) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[h.Name]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(h.Addr, r.cfg.Dial...)
	if err != nil {
		return nil, fmt.Errorf("coordinator: dial %s (%s): %w", h.Name, h.Addr, err)
	}
	r.conns[h.Name] = c
	return c, nil
}

// vector returns a buffer of the model's length, reused across rounds.
func (r *Remote) vector() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v []float64
	if n := len(r.free); n > 0 {
		v, r.free = r.free[n-1], r.free[:n-1]
	} else {
		v = make([]float64, r.cfg.NumParams)
	}
	r.used = append(r.used, v)
	return v
}

// roundRefs are a round's vectors in the coordinator's shared file.
type roundRefs struct {
	broadcast map[fedmov1.VectorKind]*fedmov1.VectorRef
	ci        map[int]*fedmov1.VectorRef // by client
}

// putRound writes the round's broadcast vectors and every task's c_i into
// the coordinator's shared file, once per round.
func (r *Remote) putRound(b *algorithms.Broadcast, tasks []engine.Task) (*roundRefs, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == nil {
		f, err := r.cfg.Shared.Create(fmt.Sprintf("coordinator-%d-%s.vec", os.Getpid(), rand.Text()[:8]))
		if err != nil {
			return nil, err
		}
		r.file = f
	}
	if err := r.file.Reset(); err != nil {
		return nil, err
	}
	refs := &roundRefs{broadcast: map[fedmov1.VectorKind]*fedmov1.VectorRef{}, ci: map[int]*fedmov1.VectorRef{}}
	for _, v := range broadcastVectors(b) {
		if v.v == nil {
			continue
		}
		ref, err := r.file.Put(v.kind, v.v)
		if err != nil {
			return nil, err
		}
		refs.broadcast[v.kind] = ref
	}
	for _, t := range tasks {
		if t.CI == nil {
			continue
		}
		ref, err := r.file.Put(fedmov1.VectorKind_VECTOR_KIND_CLIENT_CONTROL, t.CI)
		if err != nil {
			return nil, err
		}
		refs.ci[t.Client] = ref
	}
	return refs, nil
}

// kindVector is a vector and the kind it travels as.
type kindVector struct {
	kind fedmov1.VectorKind
	v    []float64
}

// broadcastVectors lists b's vectors in the order a Train call sends them
// (nil for those the algorithm does not use).
func broadcastVectors(b *algorithms.Broadcast) []kindVector {
	return []kindVector{{fedmov1.VectorKind_VECTOR_KIND_MODEL, b.X}, {fedmov1.VectorKind_VECTOR_KIND_PREVIOUS_MODEL, b.XPrev},
		{fedmov1.VectorKind_VECTOR_KIND_MOMENTUM, b.G}, {fedmov1.VectorKind_VECTOR_KIND_CONTROL, b.C}}
}

// call runs one Train call with host h: the broadcast, then tasks from q
// as h has room, until q has none left for it. When an update's header
// arrives (the task is computed), the next task is sent before the
// update's vectors are received, so the process's worker does not wait
// for the transfer. The tasks it still had when it failed go back to q.
// shared, if not nil, gives the round's vectors in the shared directory,
// used if h opened it too.
func (r *Remote) call(ctx context.Context, h Host, b *algorithms.Broadcast, q *queue, shared func() (*roundRefs, error)) (res ended) {
	res.host = h
	st := &res.stats
	var (
		flight    []engine.Task // sent, not computed yet: the first capacity run, the others wait
		receiving *engine.Task  // computed, update being received
		capacity  = max(h.Capacity, 1)
	)
	defer func() {
		if res.err != nil {
			res.lost = len(flight)
			if receiving != nil {
				res.lost++
			}
			q.requeue(flight, min(len(flight), capacity), receiving)
		}
	}()
	first, ok := q.take(h, true) // a process that gets no task gets no broadcast either
	if !ok {
		return res
	}
	flight = append(flight, first)
	conn, err := r.conn(h)
	if err != nil {
		res.err = err
		return res
	}
	start := time.Now()
	var refs *roundRefs
	if shared != nil && h.Shared == r.cfg.Shared.ID() {
		if refs, err = shared(); err != nil {
			res.err = fmt.Errorf("coordinator: shared directory: %w", err)
			return res
		}
	}
	stream, err := fedmov1.NewClientServiceClient(conn).Train(ctx)
	if err != nil {
		res.err = err
		return res
	}
	s := &callStream{r: r, h: h, stream: stream, refs: refs, st: st}
	if res.err = s.sendBroadcast(b); res.err != nil {
		return res
	}
	if res.err = s.sendTask(first); res.err != nil {
		return res
	}
	st.Dispatch = time.Since(start)
	// fill sends tasks while h has room; wait: if it has none in flight,
	// wait for a slot of the in-flight limit.
	fill := func(wait bool) error {
		for len(flight) < capacity+r.cfg.Queue {
			var (
				t  engine.Task
				ok bool
			)
			if len(flight) < capacity {
				t, ok = q.take(h, wait && len(flight) == 0)
			} else {
				t, ok = q.takeQueued(h)
			}
			if !ok {
				return nil
			}
			flight = append(flight, t)
			if err := s.sendTask(t); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if res.err = fill(true); res.err != nil {
			return res
		}
		if len(flight) == 0 {
			break
		}
		uh, err := s.receiveHeader()
		if err != nil {
			res.err = err
			return res
		}
		if st.Compute == 0 {
			st.Compute = time.Since(start) - st.Dispatch
		}
		i := slices.IndexFunc(flight, func(t engine.Task) bool { return t.Client == int(uh.Client) })
		if i >= 0 {
			t := flight[i]
			receiving = &t
			q.computed(len(flight) > capacity) // a queued task takes the free worker
			flight = slices.Delete(flight, i, i+1)
			if res.err = fill(false); res.err != nil {
				return res
			}
		}
		u, err := s.receiveVectors(uh)
		if err != nil {
			res.err = err
			return res
		}
		q.done(u, i >= 0) // an update for another client goes to the engine, which rejects it
		receiving = nil
		if i < 0 {
			res.err = fmt.Errorf("process %s answered for client %d, which it was not given", h.Name, u.Client)
			return res
		}
	}
	if err := stream.CloseSend(); err != nil {
		res.err = err
		return res
	}
	if _, err := stream.Recv(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%w: process %s sent an update it was not asked for", wire.ErrCorrupt, h.Name)
		}
		res.err = err
	}
	return res
}

// callStream sends and receives the messages of one Train call.
type callStream struct {
	r      *Remote
	h      Host
	stream fedmov1.ClientService_TrainClient
	refs   *roundRefs // the round's vectors in the shared directory; nil: stream them
	st     *Stats
}

func (s *callStream) sendBroadcast(b *algorithms.Broadcast) error {
	hdr := &fedmov1.TrainHeader{
		ProtocolVersion: process.ProtocolVersion, ConfigSha256: s.r.cfg.ConfigSHA256, Round: int64(b.Round),
		NumParams: uint64(len(b.X)), HasPreviousModel: b.XPrev != nil, HasMomentum: b.G != nil, HasControl: b.C != nil,
	}
	if s.refs != nil {
		hdr.SharedDir = s.r.cfg.Shared.ID()
	}
	if err := s.stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: hdr}}); err != nil {
		return recvStatus(s.stream, err)
	}
	for _, v := range broadcastVectors(b) {
		if v.v == nil {
			continue
		}
		var ref *fedmov1.VectorRef
		if s.refs != nil {
			ref = s.refs.broadcast[v.kind]
		}
		if err := s.sendVector(v.kind, v.v, ref); err != nil {
			return err
		}
	}
	return nil
}

func (s *callStream) sendTask(t engine.Task) error {
	m := &fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Task{Task: &fedmov1.Task{Client: int64(t.Client), HasClientControl: t.CI != nil}}}
	if err := s.stream.Send(m); err != nil {
		return recvStatus(s.stream, err)
	}
	if t.CI == nil {
		return nil
	}
	var ref *fedmov1.VectorRef
	if s.refs != nil {
		ref = s.refs.ci[t.Client]
	}
	return s.sendVector(fedmov1.VectorKind_VECTOR_KIND_CLIENT_CONTROL, t.CI, ref)
}

// sendVector sends v as chunks, or as ref when the vectors go through the
// shared directory.
func (s *callStream) sendVector(kind fedmov1.VectorKind, v []float64, ref *fedmov1.VectorRef) error {
	var err error
	if s.refs == nil {
		err = wire.SendVector(kind, v, 0,
			func(c *fedmov1.VectorChunk) error {
				s.st.BytesOut += int64(len(c.Data))
				return s.stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: c}})
			},
			func(e *fedmov1.VectorEnd) error {
				return s.stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_End{End: e}})
			})
	} else {
		s.st.BytesOut += int64(8 * len(v))
		err = s.stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Ref{Ref: ref}})
	}
	if err != nil {
		return recvStatus(s.stream, err)
	}
	return nil
}

// receiveHeader reads the header of the next update.
func (s *callStream) receiveHeader() (*fedmov1.UpdateHeader, error) {
	m, err := s.stream.Recv()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: process %s ended its stream with tasks unanswered", wire.ErrCorrupt, s.h.Name)
	} else if err != nil {
		return nil, err
	}
	uh := m.GetUpdate()
	if uh == nil {
		return nil, fmt.Errorf("%w: process %s: an update must start with its header", wire.ErrCorrupt, s.h.Name)
	}
	return uh, nil
}

// receiveVectors reads the vectors of the update uh heads.
func (s *callStream) receiveVectors(uh *fedmov1.UpdateHeader) (*algorithms.Update, error) {
	start := time.Now()
	defer func() { s.st.Upload = max(s.st.Upload, time.Since(start)) }()
	u := &algorithms.Update{Client: int(uh.Client), Samples: int(uh.Samples), Loss: uh.Loss}
	var err error
	if u.Delta, err = s.receiveVector(fedmov1.VectorKind_VECTOR_KIND_DELTA); err != nil {
		return nil, fmt.Errorf("process %s: client %d: %w", s.h.Name, u.Client, err)
	}
	if uh.HasDeltaControl {
		if u.DeltaC, err = s.receiveVector(fedmov1.VectorKind_VECTOR_KIND_DELTA_CONTROL); err != nil {
			return nil, fmt.Errorf("process %s: client %d: %w", s.h.Name, u.Client, err)
		}
	}
	return u, nil
}

// receiveVector receives a vector of the model's length: streamed, into a
// buffer of the executor's; or through the shared directory, as a view of
// the client's file (valid until the next round's Release).
func (s *callStream) receiveVector(kind fedmov1.VectorKind) ([]float64, error) {
	n := s.r.cfg.NumParams
	if s.refs == nil {
		dst := s.r.vector()
		return dst, wire.ReceiveVector(kind, dst, func() (*fedmov1.TrainResponse, error) {
			m, err := s.stream.Recv()
			if c := m.GetChunk(); c != nil {
				s.st.BytesIn += int64(len(c.Data))
			}
			return m, err
		})
	}
	m, err := s.stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s vector: the stream ended before its reference (truncated)", wire.ErrCorrupt, kind)
	} else if err != nil {
		return nil, err
	}
	s.st.BytesIn += int64(8 * n)
	return s.r.cfg.Shared.View(kind, m.GetRef(), n)
}

// recvStatus turns a failed Send (io.EOF: the server ended the stream)
// into the server's status.
func recvStatus(stream fedmov1.ClientService_TrainClient, err error) error {
	if errors.Is(err, io.EOF) {
		for {
			if _, rerr := stream.Recv(); rerr != nil {
				return rerr
			}
		}
	}
	return err
}
