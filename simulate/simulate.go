// Package simulate is fedmo's deterministic in-process simulator.
//
// Run builds a run from its config (package experiment) and drives it with
// package runner, the same code the coordinator uses, executing every
// client's local update as a function call on a bounded pool of goroutines
// (Executor). The global model after every round depends on the config and
// seed alone: not on the number of workers, not on which finishes first.
// Tests assert equal SHA-256 hashes across worker counts.
package simulate

import (
	"context"
	"runtime"

	"go.uber.org/zap"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/runner"
)

// Options are how a run is executed, not what it computes.
type Options struct {
	Workers    int    // goroutines for local updates and evaluation; 0 = GOMAXPROCS
	Out        string // run directory; "" writes no files
	Version    string // fedmo version for the manifest
	Checkpoint bool   // save a checkpoint after every round (Out/checkpoints)
	Resume     bool   // continue the run in Out from its checkpoint
	Replay     [][]int
	Build      experiment.Options
	Observer   engine.Observer // e.g. a progress display; may be nil
	Logger     *zap.Logger     // nil = no logging
}

// Result is a finished (or stopped) run.
type Result = runner.Result

// Run runs cfg to the end (see runner.Run).
func Run(ctx context.Context, cfg config.Config, opts Options) (*Result, error) {
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
	return runner.Run(ctx, setup, NewExecutor(rt, workers, setup.Server.Scaffold), runner.Options{
		Out: opts.Out, Version: opts.Version, Workers: workers, Checkpoint: opts.Checkpoint, Resume: opts.Resume,
		Strict: true, Replay: opts.Replay, Observer: opts.Observer, Logger: opts.Logger,
	})
}
