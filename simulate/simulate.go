// Package simulate is fedmo's deterministic in-process simulator.
//
// Run builds a run from its config (package experiment), drives the same
// round engine as the coordinator, and executes every client's local update
// as a function call on a bounded pool of goroutines (Executor). The global
// model after every round depends on the config and seed alone: not on the
// number of workers, not on which finishes first. Tests assert equal
// SHA-256 hashes across worker counts.
package simulate

import (
	"context"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/runio"
)

// Options are how a run is executed, not what it computes.
type Options struct {
	Workers  int    // goroutines for local updates and evaluation; 0 = GOMAXPROCS
	Out      string // run directory; "" writes no files
	Version  string // fedmo version for the manifest
	Build    experiment.Options
	Observer engine.Observer // e.g. a progress display; may be nil
	Logger   *zap.Logger     // nil = no logging
}

// Result is a finished (or stopped) run.
type Result struct {
	Setup       *experiment.Setup
	Model       []float64 // the final global model
	FinalSHA256 string
	Rounds      []engine.Metrics
	Seconds     float64
}

// Run runs cfg to the end. On an error after the run started (divergence,
// cancellation) the result holds the rounds finished so far and the run
// directory stays valid: its metrics rows and a manifest that says why the
// run stopped.
func Run(ctx context.Context, cfg config.Config, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	setup, err := experiment.Build(cfg, opts.Build)
	if err != nil {
		return nil, err
	}
	rt, err := setup.Runtime()
	if err != nil {
		return nil, err
	}
	server, err := algorithms.NewServer(setup.Server, setup.InitialModel())
	if err != nil {
		return nil, err
	}
	res := &Result{Setup: setup}
	obs := engine.Observers{engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		res.Rounds = append(res.Rounds, *m)
		return nil
	})}
	var out *runio.Writer
	if opts.Out != "" {
		out, err = runio.Create(opts.Out, cfg.YAML(), runio.Manifest{
			FedmoVersion: opts.Version, Seed: cfg.Seed, ConfigSHA256: cfg.Hash(),
			DatasetFingerprint: setup.Fingerprint, NumParams: setup.Model.NumParams(), Workers: workers,
		})
		if err != nil {
			return nil, err
		}
		obs = append(obs, out)
	}
	obs = append(obs, opts.Observer)
	ecfg := setup.EngineConfig()
	ecfg.Strict = true
	eng, err := engine.New(ecfg, server, NewExecutor(rt, workers, setup.Server.Scaffold), setup.Evaluator(workers), obs)
	if err != nil {
		return nil, err
	}
	log.Info("simulate: start", zap.Int("clients", cfg.Clients), zap.Int("participation", cfg.Participation),
		zap.Int("rounds", cfg.Rounds), zap.Int("params", setup.Model.NumParams()), zap.Int("workers", workers),
		zap.String("algorithm", cfg.Algorithm.Name), zap.String("dataset", setup.Fingerprint[:12]))
	start := time.Now()
	runErr := eng.Run(ctx)
	res.Seconds = time.Since(start).Seconds()
	res.Model = server.X
	if runErr == nil {
		res.FinalSHA256 = engine.Hash(server.X)
	}
	if out != nil {
		if err := out.Finish(server.X, res.Seconds, runErr); err != nil && runErr == nil {
			runErr = err
		}
	}
	return res, runErr
}
