package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/report"
	"github.com/fedmo/fedmo/simulate"
)

//go:embed demo.yaml
var demoYAML []byte

// demoRuns are the four algorithms the demo compares, as overrides of demo.yaml.
var demoRuns = []struct {
	label string
	sets  []string
}{
	{"FedAvg", []string{"algorithm.name=fedavg"}},
	{"FedAvg-M", []string{"algorithm.name=fedavg", "algorithm.momentum.beta=0.1"}},
	{"SCAFFOLD", []string{"algorithm.name=scaffold"}},
	{"SCAFFOLD-M", []string{"algorithm.name=scaffold", "algorithm.momentum.beta=0.1"}},
}

func init() {
	register("demo", "run the default experiment for FedAvg, FedAvg-M, SCAFFOLD and SCAFFOLD-M", demoCmd)
}

func demoCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo demo", flag.ContinueOnError)
	var c common
	c.register(fs)
	out := fs.String("out", "runs/demo", "directory for the four runs, the table and the plot")
	target := fs.Float64("target", 0.85, "the accuracy whose first round the table reports")
	if err := parse(fs, args); err != nil {
		return err
	}
	if c.config != "" {
		return fmt.Errorf("%w: demo runs its embedded experiment; use fedmo simulate --config", errUsage)
	}
	log := newLogger(c.quiet)
	defer log.Sync()
	var runs []report.Run
	var sums []report.Summary
	for _, d := range demoRuns {
		sets := append(append([]string{}, d.sets...), c.sets...)
		if c.mnistDir != "" {
			sets = append(sets, "data.dir="+c.mnistDir)
		}
		cfg, err := config.Parse(demoYAML, sets)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		dir := filepath.Join(*out, d.label)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		disp := display(c.quiet, d.label, cfg.Rounds, log)
		res, err := simulate.Run(ctx, cfg, simulate.Options{Workers: c.workers, Out: dir,
			Version: fedmoVersion(), Build: buildOptions(), Observer: disp, Logger: log})
		disp.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", d.label, err)
		}
		r := report.Run{Label: d.label, Rounds: res.Rounds, Seconds: res.Seconds}
		runs = append(runs, r)
		sums = append(sums, report.Summarize(r, *target))
	}
	fmt.Println()
	report.Table(os.Stdout, *target, sums)
	png := filepath.Join(*out, "curves.png")
	if err := report.Curves(png, "MNIST, Dirichlet 0.1, 10 of 100 clients", runs); err != nil {
		return err
	}
	fmt.Printf("\nruns in %s; learning curves in %s\n", *out, png)
	return nil
}
