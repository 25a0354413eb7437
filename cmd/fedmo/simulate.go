package main

import (
	"context"
	"flag"
	"fmt"

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
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out DIR is required", errUsage)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	log := newLogger(c.quiet)
	defer log.Sync()
	disp := display(c.quiet, cfg.Algorithm.Name, cfg.Rounds, log)
	res, err := simulate.Run(ctx, cfg, simulate.Options{
		Workers: c.workers, Out: *out, Version: fedmoVersion(), Build: buildOptions(),
		Observer: disp, Logger: log,
	})
	disp.Close()
	if err != nil {
		return err
	}
	last := res.Rounds[len(res.Rounds)-1]
	acc := "-"
	if last.Eval != nil {
		acc = fmt.Sprintf("%.4f", last.Eval.TestAcc)
	}
	fmt.Printf("%d rounds in %.1fs; test accuracy %s; final model sha256 %s; wrote %s\n",
		len(res.Rounds), res.Seconds, acc, res.FinalSHA256, *out)
	return nil
}
