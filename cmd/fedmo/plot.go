package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/fedmo/fedmo/report"
	"github.com/fedmo/fedmo/sweep"
)

func init() {
	register("plot", "draw learning curves of runs or sweeps (mean and min-max band over seeds)", plotCmd)
	register("report", "write report.md (tables and figures) for a sweep or a directory of runs", reportCmd)
}

const plotUsage = `fedmo plot RUN_OR_SWEEP_DIR... -o fig.png|fig.svg

Draws test accuracy, the clients' mean local training loss and (if the runs
measured it, eval.train_loss) the global training loss against rounds. Runs
that differ only in their seed are one line: the mean over the seeds, with a
band from the minimum to the maximum. Legends name what differs between the
lines; the title says what they share.

`

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(os.Stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// loadPoints reads runs as points: one sweep directory as its grid, any
// other paths as the run directories under them, grouped by config. Runs
// that cannot be read are reported on stderr and left out.
func loadPoints(paths []string) (report.Points, *sweep.File, []error, error) {
	var (
		ps      report.Points
		f       *sweep.File
		skipped []error
		err     error
	)
	if len(paths) == 1 && sweep.IsSweepDir(paths[0]) {
		ps, f, skipped, err = sweep.Points(paths[0])
		if err != nil {
			return ps, nil, nil, err
		}
	} else {
		dirs, err := report.Find(paths...)
		if err != nil {
			return ps, nil, nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		var runs []report.Run
		runs, skipped = report.LoadAll(dirs)
		ps = report.ByConfig(runs)
	}
	for _, e := range skipped {
		fmt.Fprintf(os.Stderr, "fedmo: left out: %v\n", e)
	}
	n := 0
	for _, p := range ps.Points {
		n += len(p.Runs)
	}
	if n == 0 {
		return ps, f, skipped, fmt.Errorf("no readable runs in %s", strings.Join(paths, ", "))
	}
	return ps, f, skipped, nil
}

func plotCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo plot", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), plotUsage)
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "the figure to write: a .png or .svg file")
	fs.StringVar(out, "out", "", "same as -o")
	title := fs.String("title", "", "a first title line (the second says what the runs share)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: fedmo plot RUN_OR_SWEEP_DIR... -o fig.png: no directories given", errUsage)
	}
	if *out == "" {
		return fmt.Errorf("%w: -o FILE (.png or .svg) is required", errUsage)
	}
	if ext := strings.ToLower(*out); !strings.HasSuffix(ext, ".png") && !strings.HasSuffix(ext, ".svg") {
		return fmt.Errorf("%w: -o %s: want a .png or .svg file name", errUsage, *out)
	}
	ps, _, _, err := loadPoints(paths)
	if err != nil {
		return err
	}
	if *title != "" {
		ps.Common = strings.TrimSuffix(*title+"\n"+ps.Common, "\n")
	}
	if err := report.PlotPoints(*out, ps); err != nil {
		return err
	}
	runs := 0
	for _, p := range ps.Points {
		runs += len(p.Runs)
	}
	fmt.Printf("wrote %s: %d curves from %d runs\n", *out, len(ps.Points), runs)
	return nil
}

func reportCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo report", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "fedmo report SWEEP_DIR\n\nWrites SWEEP_DIR/report.md: the summary over seeds, the learning curves (PNG files next to it), every run, and the configuration. SWEEP_DIR is a sweep's directory or any directory of runs.\n\n")
		fs.PrintDefaults()
	}
	target := fs.Float64("target", 0, "test accuracy whose first round the tables report (default: the sweep's, else 0.85)")
	title := fs.String("title", "", "the report's title (default: the directory's name)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(paths) != 1 {
		return fmt.Errorf("%w: fedmo report SWEEP_DIR: want one directory, got %d arguments", errUsage, len(paths))
	}
	dir := paths[0]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", errUsage, dir)
	}
	ps, f, skipped, err := loadPoints(paths)
	if err != nil {
		return err
	}
	doc := report.Document{Title: *title, Target: sweep.DefaultTarget, Skipped: skipped}
	if doc.Title == "" {
		doc.Title = "Report: " + dir
	}
	if f != nil {
		doc.Target = f.Spec.Target
		doc.Intro = sweepIntro(f)
	}
	if *target != 0 {
		if !(*target > 0 && *target <= 1) {
			return fmt.Errorf("%w: --target %v: want an accuracy 0 < target <= 1", errUsage, *target)
		}
		doc.Target = *target
	}
	files, err := report.WriteReport(dir, ps, doc)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", strings.Join(files, ", "))
	return nil
}

// sweepIntro describes how a sweep was made.
func sweepIntro(f *sweep.File) []string {
	var lines []string
	if f.Command != "" {
		lines = append(lines, "Made (and resumed) with:\n\n    "+f.Command)
	}
	var grid []string
	for _, a := range f.Spec.Axes {
		var vals []string
		for _, v := range a.Values {
			if len(v.Sets) == 1 && v.Sets[0] == a.Name+"="+v.Label {
				vals = append(vals, "`"+v.Label+"`")
			} else {
				vals = append(vals, fmt.Sprintf("%s (`%s`)", v.Label, strings.Join(v.Sets, "`, `")))
			}
		}
		grid = append(grid, fmt.Sprintf("- `%s`: %s", a.Name, strings.Join(vals, ", ")))
	}
	seeds := make([]string, len(f.Spec.Seeds))
	for i, s := range f.Spec.Seeds {
		seeds[i] = fmt.Sprint(s)
	}
	g := "Grid (every combination, each with seeds " + strings.Join(seeds, ", ") + "):"
	if len(grid) == 0 {
		g = "One setting, with seeds " + strings.Join(seeds, ", ") + "."
	}
	lines = append(lines, strings.TrimSpace(g+"\n\n"+strings.Join(grid, "\n")))
	if len(f.Spec.Sets) > 0 {
		lines = append(lines, "Set in every run: `"+strings.Join(f.Spec.Sets, "`, `")+"`.")
	}
	return lines
}
