// Package process is a fedmo client process: a gossip member that serves
// ClientService.Train for whichever virtual clients a coordinator sends it,
// or for one real client with its own data.
//
// A process is started with nothing but the gossip address of a member of
// the cluster. It finds the coordinator in the membership, asks it for the
// run's configuration (GetConfig), builds the same data, model and
// algorithm as every other process from it, starts serving, and then
// advertises the config fingerprint in its gossip metadata, which is when
// the coordinator starts sending it work. It exits when the coordinator
// leaves after the run, and waits for a new one (a coordinator resumed from
// its checkpoint) when the coordinator fails.
package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/membership"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/security"
	"github.com/fedmo/fedmo/wire/shm"
)

// Options configure a client process.
type Options struct {
	Listen   string            // gRPC address to serve on; port 0 picks one
	Gossip   membership.Config // Seeds (required), Bind, Profile, KeyFile, Label, Name
	Security security.Options
	Workers  int // worker goroutines; 0 = GOMAXPROCS
	// Expect, if set, is the config fingerprint this process was started
	// for: it joins advertising it, and a coordinator of another config
	// refuses it.
	Expect string
	// RealID >= 0 makes this process real client RealID, with its own data
	// in RealDir (train_x.npy, train_y.npy, test_x.npy, test_y.npy).
	RealID  int
	RealDir string
	Build   experiment.Options
	// CoordinatorWait bounds the wait for a coordinator, at start and after
	// one failed (0 = 1 minute).
	CoordinatorWait time.Duration
	Logger          *zap.Logger
	// SharedDir, if set, is a directory on this host (package wire/shm):
	// a coordinator that opened it too sends vectors through it instead of
	// through gRPC.
	SharedDir string
	// Ready, if set, is called once the process serves.
	Ready func(grpcAddr, gossipAddr string)
}

// Run runs the process until the coordinator finishes the run, ctx ends,
// or no coordinator is seen for CoordinatorWait.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opts.CoordinatorWait <= 0 {
		opts.CoordinatorWait = time.Minute
	}
	if len(opts.Gossip.Seeds) == 0 {
		return errors.New("process: no gossip address to join (--join)")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	srvOpts, err := security.ServerOptions(opts.Security)
	if err != nil {
		return err
	}
	dialOpts, err := security.DialOptions(opts.Security)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	defer lis.Close()
	real := int64(-1)
	if opts.RealID >= 0 {
		real = int64(opts.RealID)
	}
	meta := membership.Meta{Role: membership.Client, GRPC: lis.Addr().String(), Protocol: membership.ProtocolVersion,
		Config: opts.Expect, Capacity: opts.Workers, Real: real}
	var shared *shm.Dir
	if opts.SharedDir != "" {
		if shared, err = shm.Open(opts.SharedDir); err != nil {
			return err
		}
		defer shared.Close()
		meta.Shared = shared.ID()
	}
	gcfg := opts.Gossip
	gcfg.Meta = meta
	if gcfg.Logger == nil {
		gcfg.Logger = log
	}
	g, err := startGossip(ctx, gcfg, opts.CoordinatorWait, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		g.Close(cctx)
	}()

	coord, err := waitCoordinator(ctx, g, opts.CoordinatorWait)
	if err != nil {
		return err
	}
	setup, err := fetchSetup(ctx, coord, dialOpts, opts)
	if err != nil {
		return err
	}
	rt, err := setup.Runtime()
	if err != nil {
		return err
	}
	trainer := NewTrainer(setup, rt, opts.Workers, log)
	if shared != nil {
		if err := trainer.Share(shared); err != nil {
			return err
		}
	}
	srv := grpc.NewServer(srvOpts...)
	fedmov1.RegisterClientServiceServer(srv, trainer)
	go srv.Serve(lis)
	defer trainer.Close()
	defer srv.Stop()
	meta.Config = setup.Config.Hash()
	if err := g.SetMeta(ctx, meta); err != nil {
		return err
	}
	log.Info("client process serving", zap.String("grpc", lis.Addr().String()), zap.String("gossip", g.Addr()),
		zap.String("coordinator", coord.Name), zap.String("config", meta.Config[:12]), zap.Int64("real", real))
	if opts.Ready != nil {
		opts.Ready(lis.Addr().String(), g.Addr())
	}
	return follow(ctx, g, coord.Name, opts, log)
}

// follow returns when the coordinator left after its run (nil), or when no
// coordinator came back within the wait after one failed.
func follow(ctx context.Context, g *membership.Gossip, name string, opts Options, log *zap.Logger) error {
	var lostAt time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-g.Events():
			if !ok {
				return errors.New("process: gossip stopped")
			}
			if ev.Member.Meta.Role != membership.Coordinator {
				continue
			}
			switch ev.Kind {
			case membership.Leave:
				log.Info("the coordinator left: the run is over", zap.String("coordinator", ev.Member.Name))
				return nil
			case membership.Fail:
				log.Warn("the coordinator failed; waiting for it to come back", zap.String("coordinator", ev.Member.Name))
				lostAt = time.Now()
			case membership.Join:
				log.Info("coordinator joined", zap.String("coordinator", ev.Member.Name))
				lostAt = time.Time{}
				name = ev.Member.Name
			}
		case <-time.After(500 * time.Millisecond):
			if lostAt.IsZero() {
				continue
			}
			if time.Since(lostAt) > opts.CoordinatorWait {
				return fmt.Errorf("process: no coordinator for %v after %s failed", opts.CoordinatorWait, name)
			}
			// A restarted coordinator may start a new cluster: join it again.
			if err := g.Join(ctx, opts.Gossip.Seeds); err != nil {
				log.Debug("rejoin", zap.Error(err))
			}
		}
	}
}

// startGossip joins the cluster, trying again while no seed answers (the
// coordinator may start after its clients) for up to wait. A refusal is
// final.
func startGossip(ctx context.Context, cfg membership.Config, wait time.Duration, log *zap.Logger) (*membership.Gossip, error) {
	deadline := time.Now().Add(wait)
	for {
		g, err := membership.Start(ctx, cfg)
		if err == nil || errors.Is(err, membership.ErrRefused) || time.Now().After(deadline) {
			return g, err
		}
		log.Debug("join: no seed answered yet", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitCoordinator(ctx context.Context, g membership.Membership, wait time.Duration) (membership.Member, error) {
	deadline := time.Now().Add(wait)
	for {
		for _, m := range g.Members() {
			if m.Meta.Role == membership.Coordinator {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			return membership.Member{}, fmt.Errorf("process: no coordinator in the cluster after %v", wait)
		}
		select {
		case <-ctx.Done():
			return membership.Member{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fetchSetup asks the coordinator for the run's config and builds this
// process's parts of it.
func fetchSetup(ctx context.Context, coord membership.Member, dialOpts []grpc.DialOption, opts Options) (*experiment.Setup, error) {
	conn, err := grpc.NewClient(coord.Meta.GRPC, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("process: dial coordinator %s: %w", coord.Name, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := fedmov1.NewCoordinatorServiceClient(conn).GetConfig(cctx, &fedmov1.GetConfigRequest{ProtocolVersion: membership.ProtocolVersion})
	if err != nil {
		return nil, fmt.Errorf("process: get the config from coordinator %s: %w", coord.Name, err)
	}
	cfg, err := config.Parse(resp.ConfigYaml, nil)
	if err != nil {
		return nil, fmt.Errorf("process: the coordinator's config: %w", err)
	}
	if h := cfg.Hash(); h != resp.ConfigSha256 || (opts.Expect != "" && h != opts.Expect) {
		return nil, fmt.Errorf("process: the coordinator runs config %.12s, this process was started for %.12s", resp.ConfigSha256, opts.Expect)
	}
	if opts.RealID < 0 {
		return experiment.Build(cfg, opts.Build)
	}
	train, test, err := data.LoadNPY(opts.RealDir)
	if err != nil {
		return nil, err
	}
	if train.D != int(resp.Features) || train.Classes > int(resp.Classes) || test.Classes > int(resp.Classes) {
		return nil, fmt.Errorf("process: real client data in %s has %d features and %d classes; the run has %d features and %d classes",
			opts.RealDir, train.D, max(train.Classes, test.Classes), resp.Features, resp.Classes)
	}
	train.Classes, test.Classes = int(resp.Classes), int(resp.Classes)
	fd, err := experiment.RealClient(cfg, opts.RealID, train, test)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	return experiment.WithData(cfg, fd)
}
