package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/progress"
	"github.com/fedmo/fedmo/sweep"
)

func init() {
	register("sweep", "run a grid of experiments over seeds, several at a time, and summarise it", sweepCmd)
}

const sweepUsage = `fedmo sweep runs the cartesian product of the --grid axes, once per seed,
each run in OUT/<axis=value,...,seed=N>, --parallel at a time, then writes
OUT/summary.md and OUT/summary.csv (mean ± std over seeds) and prints the
table. Run it again to resume: complete runs are skipped, interrupted ones
re-run.

  fedmo sweep --config base.yaml --grid algorithm.name=fedavg,scaffold --grid local.lr=0.01,0.05 --seeds 1-5 --out runs/sweep1
  fedmo sweep --spec examples/sweeps/demo.yaml

A sweep file (--spec) holds the same and more: named axes whose values set
several keys at once; see examples/README.md and docs/reproductions.md.
Flags given with --spec add to it (--grid, --set) or replace its values
(--config, --seeds, --target, --out).

`

func sweepCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo sweep", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sweepUsage)
		fs.PrintDefaults()
	}
	var grids, sets setFlags
	specPath := fs.String("spec", "", "sweep file (YAML): base config, set, grid, seeds, target, out")
	base := fs.String("config", "", "base experiment YAML file (empty: the defaults, or the sweep file's)")
	fs.Var(&grids, "grid", "an axis: key=value1,value2,... (each value in YAML syntax; repeatable, the first varies slowest)")
	fs.Var(&sets, "set", "override one key in every run, e.g. --set rounds=50 (repeatable)")
	seeds := fs.String("seeds", "", "seeds: a range and/or a list, e.g. 1-5 or 1,3,7 (default: the sweep file's, else the base config's seed)")
	target := fs.Float64("target", 0, "test accuracy whose first round the summary reports (default: the sweep file's, else 0.85)")
	out := fs.String("out", "", "sweep directory (default: the sweep file's out)")
	parallel := fs.Int("parallel", 0, "runs at a time (0 = the number of CPUs)")
	workers := fs.Int("workers", 1, "goroutines per run for local updates and evaluation; the results do not depend on it")
	mnistDir := fs.String("mnist-dir", "", "directory of the MNIST IDX files (sets data.dir in every run)")
	quiet := fs.Bool("quiet", false, "print nothing but errors and the summary")
	if err := parse(fs, args); err != nil {
		return err
	}
	spec, err := sweepSpec(*specPath, *base, grids, sets, *seeds, *target, *mnistDir)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = spec.Out
	}
	if *out == "" {
		return fmt.Errorf("%w: --out DIR is required (or out: in the sweep file)", errUsage)
	}
	if *parallel < 0 || *workers < 1 {
		return fmt.Errorf("%w: --parallel %d, --workers %d: want --parallel >= 0 (0 = the CPUs) and --workers >= 1", errUsage, *parallel, *workers)
	}
	if _, err := spec.Plan(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log := newLogger(*quiet)
	defer log.Sync()
	mode := progress.Log
	switch {
	case *quiet:
		mode = progress.Quiet
	case term.IsTerminal(int(os.Stderr.Fd())):
		mode = progress.Bar
	}
	res, runErr := sweep.Run(ctx, spec, sweep.Options{Out: *out, Parallel: *parallel, Workers: *workers, Version: fedmoVersion(),
		Build: buildOptions(), Display: sweep.NewDisplay(mode, os.Stderr, log), Logger: log,
		Command: "fedmo " + strings.Join(append([]string{"sweep"}, args...), " ")})
	if res == nil {
		return runErr
	}
	fmt.Println()
	if _, err := sweep.Summary(*out, os.Stdout); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Printf("\n%d runs: %d ran now, %d complete before", len(res.Outcomes), res.Count(sweep.Ran), res.Count(sweep.Skipped))
	if n := res.Count(sweep.Diverged); n > 0 {
		fmt.Printf(", %d diverged (a result: counted in the table, not averaged)", n)
	}
	fmt.Printf(".\nsummary in %s and %s; fedmo plot %s -o fig.png, fedmo report %s\n",
		filepath.Join(*out, "summary.md"), filepath.Join(*out, "summary.csv"), *out, *out)
	if runErr != nil {
		return runErr
	}
	var failed []string
	for _, o := range res.Outcomes {
		if o.State == sweep.Failed {
			failed = append(failed, fmt.Sprintf("%s: %v", o.Name, o.Err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d runs failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

// sweepSpec combines the sweep file (if any) and the flags.
func sweepSpec(specPath, base string, grids, sets []string, seeds string, target float64, mnistDir string) (sweep.Spec, error) {
	spec := sweep.Spec{Target: sweep.DefaultTarget}
	if specPath != "" {
		var err error
		if spec, err = sweep.LoadSpec(specPath); err != nil {
			return spec, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if base != "" {
		b, err := os.ReadFile(base)
		if err != nil {
			return spec, fmt.Errorf("%w: --config: %v", errUsage, err)
		}
		spec.Base, spec.BasePath = string(b), base
	}
	for _, g := range grids {
		a, err := sweep.ParseGrid(g)
		if err != nil {
			return spec, fmt.Errorf("%w: %v", errUsage, err)
		}
		spec.Axes = append(spec.Axes, a)
	}
	spec.Sets = append(spec.Sets, sets...)
	if mnistDir != "" {
		spec.Sets = append(spec.Sets, "data.dir="+mnistDir)
	}
	if seeds != "" {
		s, err := sweep.ParseSeeds(seeds)
		if err != nil {
			return spec, fmt.Errorf("%w: --seeds: %v", errUsage, err)
		}
		spec.Seeds = s
	}
	if target != 0 {
		spec.Target = target
	}
	if len(spec.Seeds) == 0 { // the base config's own seed
		cfg, err := config.Parse([]byte(spec.Base), spec.Sets)
		if err != nil {
			return spec, fmt.Errorf("%w: %v", errUsage, err)
		}
		spec.Seeds = []uint64{cfg.Seed}
	}
	return spec, nil
}
