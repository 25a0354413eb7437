// Package runner drives one run from start (or from its checkpoint) to the
// end, whatever executes the local updates: the simulator passes an
// in-process executor, the coordinator a remote one. Everything else is the
// same code: the server state, the round engine, the run directory, the
// checkpoints and the result.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/checkpoint"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/runio"
)

// Options are how a run is driven, not what it computes.
type Options struct {
	Out     string // run directory; "" writes no files
	Version string // fedmo version for the manifest
	Workers int    // goroutines for evaluation (and recorded in the manifest)
	// Checkpoint saves the state into Out/checkpoints after every round.
	Checkpoint bool
	// Resume continues the run in Out from its checkpoint.
	Resume bool
	// Strict stops the run at the first rejected update (the simulator:
	// its updates are its own, so a bad one means divergence).
	Strict bool
	// Replay fixes each round's participants (a manifest's realised
	// participants) instead of sampling them.
	Replay   [][]int
	Observer engine.Observer // e.g. a progress display; may be nil
	Logger   *zap.Logger     // nil = no logging
}

// Result is a finished (or stopped) run.
type Result struct {
	Setup       *experiment.Setup
	Model       []float64 // the final global model
	FinalSHA256 string
	Rounds      []engine.Metrics // the rounds run by this process (after a resume: from the checkpoint on)
	Seconds     float64
}

// Run runs setup with exec to the configured number of rounds. On an error
// after the run started (divergence, cancellation) the result holds the
// rounds finished so far and the run directory stays valid: its metrics
// rows, its last checkpoint and a manifest that says why the run stopped.
func Run(ctx context.Context, setup *experiment.Setup, exec engine.Executor, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	cfg := setup.Config
	if opts.Resume && opts.Out == "" {
		return nil, errors.New("runner: resume needs the run directory")
	}
	man := runio.Manifest{
		FedmoVersion: opts.Version, Seed: cfg.Seed, ConfigSHA256: cfg.Hash(),
		DatasetFingerprint: setup.Fingerprint, NumParams: setup.Model.NumParams(), Workers: opts.Workers,
	}
	ckptDir := filepath.Join(opts.Out, "checkpoints")
	var (
		server *algorithms.Server
		out    *runio.Writer
		ckpt   *checkpoint.Writer
		err    error
	)
	if opts.Resume {
		if old, err := runio.ReadManifest(filepath.Join(opts.Out, "manifest.json")); err == nil && old.Status == "complete" {
			return nil, fmt.Errorf("runner: resume %s: the run is already complete", opts.Out)
		}
		st, err := checkpoint.Load(ckptDir)
		if err != nil {
			return nil, fmt.Errorf("runner: resume %s: %w", opts.Out, err)
		}
		if st.ConfigSHA256 != man.ConfigSHA256 {
			return nil, fmt.Errorf("runner: resume %s: the checkpoint is of config %.12s, this config is %.12s", opts.Out, st.ConfigSHA256, man.ConfigSHA256)
		}
		if st.Server.Config != setup.Server {
			return nil, fmt.Errorf("runner: resume %s: the checkpoint's algorithm settings differ from the config's", opts.Out)
		}
		if err := json.Unmarshal(st.Extra, &man.Rounds); err != nil {
			return nil, fmt.Errorf("runner: resume %s: manifest rounds: %w", opts.Out, err)
		}
		server = st.Server
		if out, err = runio.Resume(opts.Out, server.Round, man); err != nil {
			return nil, err
		}
		if ckpt, err = checkpoint.NewWriter(ckptDir, st); err != nil {
			return nil, err
		}
		log.Info("resume", zap.String("dir", opts.Out), zap.Int("round", server.Round))
	} else {
		if server, err = algorithms.NewServer(setup.Server, setup.InitialModel()); err != nil {
			return nil, err
		}
		if opts.Out != "" {
			if out, err = runio.Create(opts.Out, cfg.YAML(), man); err != nil {
				return nil, err
			}
		}
		if opts.Checkpoint && opts.Out != "" {
			if ckpt, err = checkpoint.NewWriter(ckptDir, nil); err != nil {
				return nil, err
			}
		}
	}

	res := &Result{Setup: setup}
	obs := engine.Observers{engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		res.Rounds = append(res.Rounds, *m)
		return nil
	})}
	if out != nil {
		obs = append(obs, out)
	}
	if ckpt != nil { // Save copies the state and writes it while the next round runs
		obs = append(obs, engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
			rounds, err := json.Marshal(out.Manifest.Rounds)
			if err != nil {
				return err
			}
			return ckpt.Save(man.ConfigSHA256, server, m.Participants, rounds)
		}))
	}
	obs = append(obs, opts.Observer)
	ecfg := setup.EngineConfig()
	ecfg.Strict = opts.Strict
	ecfg.Replay = opts.Replay
	eng, err := engine.New(ecfg, server, exec, setup.Evaluator(opts.Workers), obs)
	if err != nil {
		return nil, err
	}
	log.Info("start", zap.Int("clients", cfg.Clients), zap.Int("participation", cfg.Participation),
		zap.Int("rounds", cfg.Rounds), zap.Int("params", setup.Model.NumParams()), zap.Int("workers", opts.Workers),
		zap.String("algorithm", cfg.Algorithm.Name), zap.String("dataset", setup.Fingerprint[:12]))
	start := time.Now()
	runErr := eng.Run(ctx)
	if ckpt != nil { // the last round's checkpoint is still being written
		if err := ckpt.Flush(); err != nil && runErr == nil {
			runErr = err
		}
	}
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
