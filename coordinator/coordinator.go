package coordinator

import (
	"context"
	"fmt"
	"net"
	"sort"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/membership"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/runner"
	"github.com/fedmo/fedmo/security"
	"github.com/fedmo/fedmo/wire/shm"
)

// Options configure a coordinator process.
type Options struct {
	Listen   string            // gRPC address to serve on; port 0 picks one
	Gossip   membership.Config // Bind, Seeds, Profile, KeyFile, Label, Name (Meta is filled in)
	Security security.Options
	Run      runner.Options // Out, Resume, Version, Workers, Observer, Logger (checkpoints are always on)
	// RoundTimeout is a round's deadline; Quorum the fraction of its
	// clients that must have reported to close it without the missing ones.
	RoundTimeout time.Duration
	Quorum       float64
	// WaitProcs client processes must have joined before the first round,
	// within WaitTimeout.
	WaitProcs   int
	WaitTimeout time.Duration
	// MaxInFlight bounds the tasks running at once over all client
	// processes (0: the sum of their capacities), and Queue the tasks a
	// process holds beyond its workers; see RemoteConfig.
	MaxInFlight, Queue int
	// SharedDir, if set, is a directory on this host (package wire/shm)
	// through which vectors go to and from the client processes that
	// opened it too, instead of through gRPC.
	SharedDir string
	// Ready, if set, is called once the coordinator serves, with its gRPC
	// and gossip addresses.
	Ready func(grpcAddr, gossipAddr string)
}

// configService serves the run's configuration to client processes.
type configService struct {
	fedmov1.UnimplementedCoordinatorServiceServer
	resp *fedmov1.GetConfigResponse
}

func (s *configService) GetConfig(context.Context, *fedmov1.GetConfigRequest) (*fedmov1.GetConfigResponse, error) {
	return s.resp, nil
}

// gossipDir lists the client processes that gossip says are alive and that
// run this config.
type gossipDir struct {
	g         membership.Membership
	configSHA string
}

func (d gossipDir) Hosts() []Host {
	var hs []Host
	for _, m := range d.g.Members() {
		if m.Meta.Role == membership.Client && m.Meta.Config == d.configSHA {
			hs = append(hs, Host{Name: m.Name, Addr: m.Meta.GRPC, Real: m.Meta.Real, Capacity: m.Meta.Capacity, Shared: m.Meta.Shared})
		}
	}
	return hs
}

// Run serves cfg's run to the client processes that join, to the end.
func Run(ctx context.Context, cfg config.Config, build experiment.Options, opts Options) (*runner.Result, error) {
	log := opts.Run.Logger
	if log == nil {
		log = zap.NewNop()
	}
	setup, err := experiment.Build(cfg, build)
	if err != nil {
		return nil, err
	}
	srvOpts, err := security.ServerOptions(opts.Security)
	if err != nil {
		return nil, err
	}
	dialOpts, err := security.DialOptions(opts.Security)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	srv := grpc.NewServer(srvOpts...)
	hash := cfg.Hash()
	fedmov1.RegisterCoordinatorServiceServer(srv, &configService{resp: &fedmov1.GetConfigResponse{
		ProtocolVersion: membership.ProtocolVersion, ConfigYaml: cfg.YAML(), ConfigSha256: hash,
		Features: uint32(setup.Data.Train.D), Classes: uint32(setup.Data.Train.Classes),
	}})
	go srv.Serve(lis)
	defer stopServer(srv)

	gcfg := opts.Gossip
	gcfg.Meta = membership.Meta{Role: membership.Coordinator, GRPC: lis.Addr().String(),
		Protocol: membership.ProtocolVersion, Config: hash, Capacity: 1, Real: -1}
	if gcfg.Logger == nil {
		gcfg.Logger = log
	}
	g, err := membership.Start(ctx, gcfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		g.Close(cctx)
	}()
	log.Info("coordinator serving", zap.String("grpc", lis.Addr().String()), zap.String("gossip", g.Addr()),
		zap.String("config", hash[:12]))
	if opts.Ready != nil {
		opts.Ready(lis.Addr().String(), g.Addr())
	}
	dir := gossipDir{g: g, configSHA: hash}
	if err := waitProcs(ctx, dir, opts.WaitProcs, opts.WaitTimeout); err != nil {
		return nil, err
	}
	rcfg := RemoteConfig{
		ConfigSHA256: hash, NumParams: setup.Model.NumParams(), RoundTimeout: opts.RoundTimeout,
		Quorum: opts.Quorum, Dial: dialOpts, Logger: log, MaxInFlight: opts.MaxInFlight, Queue: opts.Queue,
	}
	if opts.SharedDir != "" {
		if rcfg.Shared, err = shm.Open(opts.SharedDir); err != nil {
			return nil, err
		}
		defer rcfg.Shared.Close()
	}
	remote := NewRemote(rcfg, dir)
	defer remote.Close()
	go watch(g, remote, log)

	ropts := opts.Run
	ropts.Checkpoint = true
	ropts.Observer = engine.Observers{roundLog(log, remote, dir), opts.Run.Observer}
	return runner.Run(ctx, setup, remote, ropts)
}

// watch logs membership changes and tells the executor of client
// processes that gossip declares failed or gone. It ends when the
// membership closes its event channel.
func watch(g membership.Membership, r *Remote, log *zap.Logger) {
	for ev := range g.Events() {
		if ev.Member.Meta.Role != membership.Client {
			continue
		}
		log.Info("membership", zap.Stringer("event", ev.Kind), zap.String("process", ev.Member.Name),
			zap.String("grpc", ev.Member.Meta.GRPC), zap.Int64("real", ev.Member.Meta.Real))
		if ev.Kind == membership.Fail || ev.Kind == membership.Leave {
			r.Gone(ev.Member.Name)
		}
	}
}

// roundLog writes the coordinator's structured line per round.
func roundLog(log *zap.Logger, r *Remote, dir Directory) engine.Observer {
	return engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		st := r.Stats()
		f := []zap.Field{zap.Int("round", m.Round), zap.Ints("participants", m.Participants),
			zap.Int("processes", len(dir.Hosts())),
			zap.Float64("dispatch_s", st.Dispatch.Seconds()), zap.Float64("compute_s", st.Compute.Seconds()),
			zap.Float64("upload_s", st.Upload.Seconds()), zap.Float64("execute_s", m.ExecuteSeconds),
			zap.Float64("aggregate_s", m.AggregateSeconds),
			zap.Int64("bytes_out", st.BytesOut), zap.Int64("bytes_in", st.BytesIn),
			zap.Float64("local_loss", m.LocalLoss)}
		if m.Eval != nil {
			f = append(f, zap.Float64("test_acc", m.Eval.TestAcc))
		}
		if st.Failed > 0 {
			f = append(f, zap.Int("failed_calls", st.Failed), zap.Int("rehosted", st.Rehosted))
		}
		if len(m.Rejected) > 0 {
			f = append(f, zap.Any("rejected", m.Rejected))
		}
		log.Info("round", f...)
		return nil
	})
}

func waitProcs(ctx context.Context, dir Directory, n int, timeout time.Duration) error {
	if n <= 0 {
		return nil
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		hs := dir.Hosts()
		if len(hs) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			names := make([]string, len(hs))
			for i, h := range hs {
				names[i] = h.Name
			}
			sort.Strings(names)
			return fmt.Errorf("coordinator: %d client processes joined within %v (%v), want %d", len(hs), timeout, names, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopServer stops gracefully, or hard after 5 s.
func stopServer(s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.Stop()
	}
}
