package sweep

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/fedmo/fedmo/atomicfile"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/report"
)

// Points reads the sweep in dir (its sweep.json and the run directories it
// lists) as report points, in grid order: the table keys are the axis
// names, a point's values its labels, and its legend label "key=value" for
// a plain axis and the label alone for a named one. Runs not yet started
// are left out; runs whose directories cannot be read are left out and
// returned in skipped.
func Points(dir string) (ps report.Points, f *File, skipped []error, err error) {
	if f, err = ReadFile(dir); err != nil {
		return ps, nil, nil, err
	}
	spec := f.Spec
	for _, a := range spec.Axes {
		ps.Keys = append(ps.Keys, a.Name)
	}
	pts := spec.Points()
	ps.Points = make([]report.Point, len(pts))
	for i, p := range pts {
		var labels, parts []string
		for ai, vi := range p.Index {
			a := spec.Axes[ai]
			l := a.Values[vi].Label
			labels = append(labels, l)
			if a.plain() {
				parts = append(parts, a.Name+"="+l)
			} else {
				parts = append(parts, l)
			}
		}
		ps.Points[i] = report.Point{Label: strings.Join(parts, ", "), Values: labels}
	}
	for _, r := range f.Runs {
		rd := filepath.Join(dir, r.Dir)
		if !report.IsRunDir(rd) {
			continue // not started yet
		}
		run, err := report.Load(rd)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		run.Label = r.Dir
		ps.Points[r.Point].Runs = append(ps.Points[r.Point].Runs, run)
	}
	if len(pts) == 1 && len(spec.Axes) == 0 {
		if c := firstConfig(ps); c != nil {
			ps.Points[0].Label = report.AlgorithmName(*c)
		}
	}
	if c := firstConfig(ps); c != nil {
		skip := map[string]bool{}
		for _, a := range spec.Axes {
			for _, k := range a.Keys() {
				skip[k] = true
			}
		}
		ps.Common = report.Describe(*c, skip)
	}
	return ps, f, skipped, nil
}

func firstConfig(ps report.Points) *config.Config {
	for _, p := range ps.Points {
		for _, r := range p.Runs {
			if r.Config != nil {
				return r.Config
			}
		}
	}
	return nil
}

// Summary writes the sweep's summary table: dir/summary.md (a heading, the
// table and what its numbers are), dir/summary.csv, and the table to w
// (nil: nowhere). It returns the points it summarised.
func Summary(dir string, w io.Writer) (report.Points, error) {
	ps, f, skipped, err := Points(dir)
	if err != nil {
		return ps, err
	}
	sums := ps.Summarize(f.Spec.Target)
	var table bytes.Buffer
	if err := report.WriteMarkdown(&table, ps.Keys, f.Spec.Target, sums); err != nil {
		return ps, err
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Sweep summary\n\n")
	if ps.Common != "" {
		fmt.Fprintf(&md, "Every run: %s.\n\n", ps.Common)
	}
	md.Write(table.Bytes())
	fmt.Fprintf(&md, "\nMean ± sample standard deviation over the seeds that completed (seeds %s). Rounds to %s: the first evaluated round at or above that test accuracy, over the seeds that reached it; (k/n) says how many did. Seconds: each run's own time (its rounds and evaluations), measured while the sweep's parallel runs shared the machine.\n",
		seedList(f.Spec.Seeds), pct(f.Spec.Target))
	for _, e := range skipped {
		fmt.Fprintf(&md, "\nLeft out: %v\n", e)
	}
	if err := atomicfile.Write(filepath.Join(dir, "summary.md"), md.Bytes()); err != nil {
		return ps, err
	}
	var csv bytes.Buffer
	if err := report.WriteCSV(&csv, ps.Keys, f.Spec.Target, sums); err != nil {
		return ps, err
	}
	if err := atomicfile.Write(filepath.Join(dir, "summary.csv"), csv.Bytes()); err != nil {
		return ps, err
	}
	if w != nil {
		if _, err := w.Write(table.Bytes()); err != nil {
			return ps, err
		}
	}
	return ps, nil
}

func pct(t float64) string { return fmt.Sprintf("%g%%", 100*t) }

func seedList(seeds []uint64) string {
	s := make([]string, len(seeds))
	for i, x := range seeds {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
