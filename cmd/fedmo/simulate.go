package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/fedmo/fedmo/runio"
	"github.com/fedmo/fedmo/simulate"
)

func init() {
	register("simulate", "run an experiment in-process (the deterministic simulator)", simulateCmd)
}

func simulateCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo simulate", flag.ContinueOnError)
	var c common
	c.register(fs)
	out := fs.String("out", "", "run directory to write (config.yaml, metrics.jsonl/.csv, manifest.json, model.npy)")
	ckpt := fs.Bool("checkpoint", false, "save a checkpoint after every round (OUT/checkpoints), for --resume")
	resume := fs.Bool("resume", false, "continue the interrupted run in --out from its checkpoint (its config.yaml unless --config is given)")
	replay := fs.String("replay", "", "manifest.json of a run to reproduce: its config.yaml and its realised participants per round")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out DIR is required", errUsage)
	}
	var participants [][]int
	switch {
	case *replay != "":
		man, err := runio.ReadManifest(*replay)
		if err != nil {
			return err
		}
		if c.config == "" {
			c.config = filepath.Join(filepath.Dir(*replay), "config.yaml")
		}
		for _, r := range man.Rounds {
			participants = append(participants, r.Participants)
		}
	case *resume && c.config == "":
		c.config = filepath.Join(*out, "config.yaml")
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if participants != nil && len(participants) < cfg.Rounds {
		return fmt.Errorf("%w: --replay: the manifest has %d rounds, the config %d", errUsage, len(participants), cfg.Rounds)
	}
	log := newLogger(c.quiet)
	defer log.Sync()
	disp := display(c.quiet, cfg.Algorithm.Name, cfg.Rounds, log)
	res, err := simulate.Run(ctx, cfg, simulate.Options{
		Workers: c.workers, Out: *out, Version: fedmoVersion(), Build: buildOptions(),
		Checkpoint: *ckpt || *resume, Resume: *resume, Replay: participants, Observer: disp, Logger: log,
	})
	disp.Close()
	if err != nil {
		return err
	}
	acc := "-"
	if n := len(res.Rounds); n > 0 && res.Rounds[n-1].Eval != nil {
		last := res.Rounds[n-1]
		acc = fmt.Sprintf("%.4f", last.Eval.TestAcc)
	}
	fmt.Printf("%d rounds in %.1fs; test accuracy %s; final model sha256 %s; wrote %s\n",
		len(res.Rounds), res.Seconds, acc, res.FinalSHA256, *out)
	return nil
}
