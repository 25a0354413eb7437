// Package report summarises runs: final and best test accuracy, the first
// round that reaches a target accuracy, and time, as numbers, tables,
// learning curves and a Markdown report.
//
// Runs come from memory (a finished simulate.Run) or from run directories
// (Find, Load). ByConfig groups runs that differ only in their seed into
// points, names each point by what sets it apart from the others
// (AlgorithmName and key=value) and describes what they share (Describe).
// A point's summary (Points.Summarize) is the mean and sample standard
// deviation over its complete seeds; runs that diverged or did not finish
// are counted, not averaged. PlotPoints draws a point as the mean curve over
// its seeds with a min-max band; WriteReport writes report.md with the
// tables and figures.
//
// Nothing here panics on a damaged run directory: a file that cannot be
// read is an error that names it, and LoadAll sets such runs aside.
package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/plotting"
)

// Run is one run to report on: finished, stopped, or (read from disk)
// still going.
type Run struct {
	Label   string
	Rounds  []engine.Metrics
	Seconds float64

	// Set by Load for runs read from a run directory.
	Dir         string
	Config      *config.Config
	Status      string // the manifest's: StatusComplete, why the run stopped, or "" (no manifest yet)
	FinalSHA256 string
}

// Summary is what a table shows of a run.
type Summary struct {
	Label          string
	FinalAcc       float64 // test accuracy at the last evaluation
	BestAcc        float64
	RoundsToTarget int // first evaluated round with accuracy >= the target; 0 = never
	Seconds        float64
}

// Summarize reads the evaluated rounds of r.
func Summarize(r Run, target float64) Summary {
	s := Summary{Label: r.Label, Seconds: r.Seconds}
	for _, m := range r.Rounds {
		if m.Eval == nil {
			continue
		}
		acc := m.Eval.TestAcc
		s.FinalAcc = acc
		s.BestAcc = max(s.BestAcc, acc)
		if s.RoundsToTarget == 0 && acc >= target {
			s.RoundsToTarget = m.Round
		}
	}
	return s
}

// Table writes the summaries as an aligned text table.
func Table(w io.Writer, target float64, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "algorithm\tfinal acc\tbest acc\trounds to %.0f%%\tseconds\t\n", 100*target)
	for _, s := range sums {
		reach := "never"
		if s.RoundsToTarget > 0 {
			reach = fmt.Sprint(s.RoundsToTarget)
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%s\t%.1f\t\n", s.Label, s.FinalAcc, s.BestAcc, reach, s.Seconds)
	}
	return tw.Flush()
}

// Curves draws test accuracy and mean local training loss against rounds,
// one line per run, into path (.png or .svg).
func Curves(path, title string, runs []Run) error {
	acc := plotting.Panel{Title: "test accuracy" + suffix(title), XLabel: "round", YLabel: "accuracy", LegendBottom: true}
	loss := plotting.Panel{Title: "local training loss" + suffix(title), XLabel: "round", YLabel: "mean minibatch loss"}
	for _, r := range runs {
		var a, l plotting.Series
		a.Label, l.Label = r.Label, r.Label
		for _, m := range r.Rounds {
			l.Rounds = append(l.Rounds, float64(m.Round))
			l.Values = append(l.Values, m.LocalLoss)
			if m.Eval != nil {
				a.Rounds = append(a.Rounds, float64(m.Round))
				a.Values = append(a.Values, m.Eval.TestAcc)
			}
		}
		acc.Series = append(acc.Series, a)
		loss.Series = append(loss.Series, l)
	}
	return plotting.Save(path, acc, loss)
}

func suffix(title string) string {
	if strings.TrimSpace(title) == "" {
		return ""
	}
	return " (" + title + ")"
}
