package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
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
	Dispatch, Compute, Upload time.Duration // longest over the round's calls
	BytesOut, BytesIn         int64
	Calls, Failed, Rehosted   int
}

// Remote is the coordinator's engine.Executor: it sends each round's tasks
// to the live client processes over gRPC and collects their updates.
//
// # Hosting policy
//
// A real client's task goes to the process that serves it. Virtual
// clients are spread over the processes that host virtual clients by
// bounded-load rendezvous hashing: client i goes to the process with the
// highest SHA-256(name, i) score among those not yet holding
// ceil(tasks/processes) of the round's tasks. A process that fails (an RPC
// error, or a stream still corrupt after Attempts tries) is dropped for the
// rest of the run and its tasks go to the others; the result does not
// depend on where a task runs.
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
	var hs []Host
	for _, h := range r.dir.Hosts() {
		if h.Real >= 0 {
			r.realIDs[h.Real] = true
		}
		if !r.dead[h.Name] {
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b Host) int { return cmpString(a.Name, b.Name) })
	return hs
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func score(name string, id int) uint64 {
	h := sha256.New()
	h.Write([]byte(name))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(id))
	h.Write(b[:])
	return binary.LittleEndian.Uint64(h.Sum(nil))
}

// assign maps the pending tasks to live hosts; tasks without a host stay out.
func (r *Remote) assign(pending []engine.Task, hosts []Host) map[string][]engine.Task {
	out := map[string][]engine.Task{}
	var virtual []Host
	for _, h := range hosts {
		if h.Real < 0 {
			virtual = append(virtual, h)
		}
	}
	load := map[string]int{}
	limit := 0
	if len(virtual) > 0 {
		limit = (len(pending) + len(virtual) - 1) / len(virtual)
	}
	for _, t := range pending {
		if r.realIDs[int64(t.Client)] {
			for _, h := range hosts {
				if h.Real == int64(t.Client) {
					out[h.Name] = append(out[h.Name], t)
					break
				}
			}
			continue
		}
		if len(virtual) == 0 {
			continue
		}
		order := slices.Clone(virtual)
		slices.SortStableFunc(order, func(a, b Host) int {
			sa, sb := score(a.Name, t.Client), score(b.Name, t.Client)
			switch {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
		for _, h := range order {
			if load[h.Name] < limit {
				load[h.Name]++
				out[h.Name] = append(out[h.Name], t)
				break
			}
		}
	}
	return out
}

type callResult struct {
	host    Host
	tasks   []engine.Task
	updates []*algorithms.Update
	err     error
	stats   Stats
}

// Execute implements engine.Executor.
func (r *Remote) Execute(ctx context.Context, b *algorithms.Broadcast, tasks []engine.Task) ([]*algorithms.Update, error) {
	r.mu.Lock()
	r.free = append(r.free, r.used...)
	r.used = nil
	r.stats = Stats{}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RoundTimeout)
	defer cancel()

	var shared func() (*roundRefs, error)
	if r.cfg.Shared != nil {
		shared = sync.OnceValues(func() (*roundRefs, error) { return r.putRound(b, tasks) })
	}
	pending := slices.Clone(tasks)
	var got []*algorithms.Update
	reported := map[int]bool{}
	tries := map[string]int{}
	for len(pending) > 0 {
		hosts := r.live()
		plan := r.assign(pending, hosts)
		if len(plan) == 0 {
			if ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(r.cfg.Poll):
			}
			continue
		}
		results := make(chan callResult, len(plan))
		var wg sync.WaitGroup
		for _, h := range hosts {
			ts, ok := plan[h.Name]
			if !ok {
				continue
			}
			wg.Add(1)
			cctx, ccancel := context.WithCancel(ctx)
			r.mu.Lock()
			r.cancels[h.Name] = ccancel
			r.mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					r.mu.Lock()
					delete(r.cancels, h.Name)
					r.mu.Unlock()
					ccancel()
				}()
				res := callResult{host: h, tasks: ts}
				res.updates, res.stats, res.err = r.call(cctx, h, b, ts, shared)
				results <- res
			}()
		}
		wg.Wait()
		close(results)
		var all []callResult
		for res := range results {
			all = append(all, res)
		}
		slices.SortFunc(all, func(a, b callResult) int { return cmpString(a.host.Name, b.host.Name) })
		for _, res := range all {
			r.addStats(res.stats)
			if res.err != nil {
				r.failed(res, tries)
				continue
			}
			complete := true
			for _, t := range res.tasks {
				if !slices.ContainsFunc(res.updates, func(u *algorithms.Update) bool { return u.Client == t.Client }) {
					complete = false
				}
			}
			for _, u := range res.updates {
				got = append(got, u) // unknown or repeated clients are rejected by the engine
				if slices.ContainsFunc(res.tasks, func(t engine.Task) bool { return t.Client == u.Client }) {
					reported[u.Client] = true
				}
			}
			if !complete { // it answered for clients it was not asked about: do not trust it again
				res.err = fmt.Errorf("process %s did not return every task it was given", res.host.Name)
				r.failed(res, map[string]int{})
			}
		}
		pending = slices.DeleteFunc(pending, func(t engine.Task) bool { return reported[t.Client] })
		if ctx.Err() != nil {
			break
		}
	}
	if len(pending) > 0 {
		need := int(math.Ceil(r.cfg.Quorum * float64(len(tasks))))
		missing := make([]int, len(pending))
		for i, t := range pending {
			missing[i] = t.Client
		}
		if len(reported) < need || len(reported) == 0 {
			return nil, fmt.Errorf("coordinator: %d of %d clients reported by the deadline (%v), the quorum is %d; missing %v",
				len(reported), len(tasks), r.cfg.RoundTimeout, need, missing)
		}
		r.log.Warn("round closed without clients", zap.Ints("missing", missing), zap.Int("reported", len(reported)))
	}
	return got, nil
}

func (r *Remote) addStats(s Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Dispatch = max(r.stats.Dispatch, s.Dispatch)
	r.stats.Compute = max(r.stats.Compute, s.Compute)
	r.stats.Upload = max(r.stats.Upload, s.Upload)
	r.stats.BytesIn += s.BytesIn
	r.stats.BytesOut += s.BytesOut
	r.stats.Calls++
}

// failed handles a call that did not return its updates.
func (r *Remote) failed(res callResult, tries map[string]int) {
	name := res.host.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Failed++
	tries[name]++
	corrupt := errors.Is(res.err, wire.ErrCorrupt) || status.Code(res.err) == codes.DataLoss
	if corrupt && tries[name] < r.cfg.Attempts {
		r.log.Warn("corrupt stream, retrying", zap.String("process", name), zap.Int("try", tries[name]), zap.Error(res.err))
		return
	}
	r.log.Warn("client process failed; re-hosting its clients", zap.String("process", name),
		zap.Int("tasks", len(res.tasks)), zap.Error(res.err))
	r.dead[name] = true
	r.stats.Rehosted += len(res.tasks)
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
		f, err := r.cfg.Shared.Create(fmt.Sprintf("coordinator-%d.vec", os.Getpid()))
		if err != nil {
			return nil, err
		}
		r.file = f
	}
	r.file.Reset()
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

// call runs tasks on host h: one Train stream. shared, if not nil, gives
// the round's vectors in the shared directory, used if h opened it too.
func (r *Remote) call(ctx context.Context, h Host, b *algorithms.Broadcast, tasks []engine.Task, shared func() (*roundRefs, error)) ([]*algorithms.Update, Stats, error) {
	var st Stats
	conn, err := r.conn(h)
	if err != nil {
		return nil, st, err
	}
	start := time.Now()
	var refs *roundRefs
	if shared != nil && h.Shared == r.cfg.Shared.ID() {
		if refs, err = shared(); err != nil {
			return nil, st, fmt.Errorf("coordinator: shared directory: %w", err)
		}
	}
	stream, err := fedmov1.NewClientServiceClient(conn).Train(ctx)
	if err != nil {
		return nil, st, err
	}
	hdr := &fedmov1.TrainHeader{
		ProtocolVersion: process.ProtocolVersion, ConfigSha256: r.cfg.ConfigSHA256, Round: int64(b.Round),
		NumParams: uint64(len(b.X)), HasPreviousModel: b.XPrev != nil, HasMomentum: b.G != nil, HasControl: b.C != nil,
	}
	if refs != nil {
		hdr.SharedDir = r.cfg.Shared.ID()
	}
	for _, t := range tasks {
		hdr.Tasks = append(hdr.Tasks, &fedmov1.Task{Client: int64(t.Client), HasClientControl: t.CI != nil})
	}
	if err := stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Header{Header: hdr}}); err != nil {
		return nil, st, recvStatus(stream, err)
	}
	send := func(c *fedmov1.VectorChunk) error {
		st.BytesOut += int64(len(c.Data))
		return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Chunk{Chunk: c}})
	}
	end := func(e *fedmov1.VectorEnd) error {
		return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_End{End: e}})
	}
	sendVector := func(kind fedmov1.VectorKind, v []float64, ref *fedmov1.VectorRef) error {
		if refs == nil {
			return wire.SendVector(kind, v, 0, send, end)
		}
		st.BytesOut += int64(8 * len(v))
		return stream.Send(&fedmov1.TrainRequest{Msg: &fedmov1.TrainRequest_Ref{Ref: ref}})
	}
	for _, v := range broadcastVectors(b) {
		if v.v == nil {
			continue
		}
		var ref *fedmov1.VectorRef
		if refs != nil {
			ref = refs.broadcast[v.kind]
		}
		if err := sendVector(v.kind, v.v, ref); err != nil {
			return nil, st, recvStatus(stream, err)
		}
	}
	for _, t := range tasks {
		if t.CI == nil {
			continue
		}
		var ref *fedmov1.VectorRef
		if refs != nil {
			ref = refs.ci[t.Client]
		}
		if err := sendVector(fedmov1.VectorKind_VECTOR_KIND_CLIENT_CONTROL, t.CI, ref); err != nil {
			return nil, st, recvStatus(stream, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, st, err
	}
	st.Dispatch = time.Since(start)
	next := func() (*fedmov1.TrainResponse, error) {
		m, err := stream.Recv()
		if c := m.GetChunk(); c != nil {
			st.BytesIn += int64(len(c.Data))
		}
		return m, err
	}
	receiveVector := func(kind fedmov1.VectorKind, dst []float64) error {
		if refs == nil {
			return wire.ReceiveVector(kind, dst, next)
		}
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s vector: the stream ended before its reference (truncated)", wire.ErrCorrupt, kind)
		} else if err != nil {
			return err
		}
		st.BytesIn += int64(8 * len(dst))
		return r.cfg.Shared.Read(kind, m.GetRef(), dst)
	}
	var ups []*algorithms.Update
	for range tasks {
		m, err := stream.Recv()
		if err != nil {
			return nil, st, err
		}
		if len(ups) == 0 {
			st.Compute = time.Since(start) - st.Dispatch
		}
		uh := m.GetUpdate()
		if uh == nil {
			return nil, st, fmt.Errorf("%w: process %s: an update must start with its header", wire.ErrCorrupt, h.Name)
		}
		u := &algorithms.Update{Client: int(uh.Client), Samples: int(uh.Samples), Loss: uh.Loss, Delta: r.vector()}
		if err := receiveVector(fedmov1.VectorKind_VECTOR_KIND_DELTA, u.Delta); err != nil {
			return nil, st, fmt.Errorf("process %s: client %d: %w", h.Name, u.Client, err)
		}
		if uh.HasDeltaControl {
			u.DeltaC = r.vector()
			if err := receiveVector(fedmov1.VectorKind_VECTOR_KIND_DELTA_CONTROL, u.DeltaC); err != nil {
				return nil, st, fmt.Errorf("process %s: client %d: %w", h.Name, u.Client, err)
			}
		}
		ups = append(ups, u)
	}
	if _, err := stream.Recv(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%w: process %s sent more than %d updates", wire.ErrCorrupt, h.Name, len(tasks))
		}
		return nil, st, err
	}
	st.Upload = time.Since(start) - st.Dispatch - st.Compute
	return ups, st, nil
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
