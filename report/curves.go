package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/plotting"
)

// Band says what the shaded band around a point's mean curve shows.
const Band = "min-max over seeds"

// metric reads one number of a round; ok is false when the round does not
// have it.
type metric func(m engine.Metrics) (v float64, ok bool)

func testAcc(m engine.Metrics) (float64, bool) {
	if m.Eval == nil {
		return 0, false
	}
	return m.Eval.TestAcc, true
}

func localLoss(m engine.Metrics) (float64, bool) { return m.LocalLoss, true }

func trainLoss(m engine.Metrics) (float64, bool) {
	if m.Eval == nil || m.Eval.TrainLoss == nil {
		return 0, false
	}
	return *m.Eval.TrainLoss, true
}

// curve is the mean over runs at every round that at least one run has,
// with the minimum and maximum as a band when there are several runs.
func curve(label string, runs []Run, f metric) plotting.Series {
	type acc struct {
		sum, lo, hi float64
		n           int
	}
	at := map[int]*acc{}
	var rounds []int
	for _, r := range runs {
		for _, m := range r.Rounds {
			v, ok := f(m)
			if !ok {
				continue
			}
			a, seen := at[m.Round]
			if !seen {
				a = &acc{lo: v, hi: v}
				at[m.Round] = a
				rounds = append(rounds, m.Round)
			}
			a.sum += v
			a.n++
			a.lo, a.hi = min(a.lo, v), max(a.hi, v)
		}
	}
	slices.Sort(rounds)
	s := plotting.Series{Label: label}
	for _, rd := range rounds {
		a := at[rd]
		s.Rounds = append(s.Rounds, float64(rd))
		s.Values = append(s.Values, a.sum/float64(a.n))
		if len(runs) > 1 {
			s.Lo = append(s.Lo, a.lo)
			s.Hi = append(s.Hi, a.hi)
		}
	}
	return s
}

// PlotPoints draws the learning curves of ps into path (.png or .svg): test
// accuracy, the mean local training loss (the clients' minibatch loss,
// every round) and, when a run measured it (eval.train_loss), the global
// model's training loss, against rounds. A point with several runs is drawn
// as the mean over its runs at each round (over the runs that reached it)
// with a band from the minimum to the maximum; the legend, in the accuracy
// panel, names the points, which keep their colours in every panel. Loss axes are logarithmic
// when every value is positive and they span a factor of 3 or more. The figure's title is ps.Common and what
// the lines show; it is an error if no run has any round.
func PlotPoints(path string, ps Points) error {
	acc := plotting.Panel{Title: "test accuracy", XLabel: "round", YLabel: "accuracy", LegendBottom: true}
	loss := plotting.Panel{Title: "mean local training loss", XLabel: "round", YLabel: "loss"}
	train := plotting.Panel{Title: "global training loss", XLabel: "round", YLabel: "loss"}
	rounds, seeds := 0, []int{}
	hasTrain := false
	for _, p := range ps.Points {
		// The legend is in the accuracy panel only; every panel keeps
		// every point (empty if it has no data) so a point has one colour.
		acc.Series = append(acc.Series, curve(p.Label, p.Runs, testAcc))
		loss.Series = append(loss.Series, curve("", p.Runs, localLoss))
		t := curve("", p.Runs, trainLoss)
		train.Series = append(train.Series, t)
		hasTrain = hasTrain || len(t.Rounds) > 0
		for _, r := range p.Runs {
			rounds += len(r.Rounds)
		}
		if !slices.Contains(seeds, len(p.Runs)) {
			seeds = append(seeds, len(p.Runs))
		}
	}
	if rounds == 0 {
		return fmt.Errorf("report: %s: no run has a finished round to draw", path)
	}
	panels := []plotting.Panel{acc, loss}
	if hasTrain {
		panels = append(panels, train)
	}
	for i := 1; i < len(panels); i++ {
		panels[i].LogY = wideRange(panels[i].Series)
	}
	return plotting.SaveTitled(path, figureTitle(ps.Common, seeds), panels...)
}

// wideRange reports whether a logarithmic axis suits the series: every
// value is positive and they span a factor of 3 or more.
func wideRange(series []plotting.Series) bool {
	if !plotting.AllPositive(series...) {
		return false
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, v := range [][]float64{s.Values, s.Lo, s.Hi} {
			for _, x := range v {
				lo, hi = min(lo, x), max(hi, x)
			}
		}
	}
	return hi >= 3*lo
}

// figureTitle wraps the common description and says what a line shows.
func figureTitle(common string, seeds []int) string {
	var lines []string
	if common != "" {
		lines = append(lines, wrap(common, 110)...)
	}
	slices.Sort(seeds)
	switch {
	case len(seeds) == 1 && seeds[0] == 1:
		lines = append(lines, "one run per line")
	case len(seeds) == 1:
		lines = append(lines, fmt.Sprintf("line: mean of %d seeds; band: %s", seeds[0], Band))
	case len(seeds) > 1:
		lines = append(lines, fmt.Sprintf("line: mean of %d-%d seeds; band: %s", seeds[0], seeds[len(seeds)-1], Band))
	}
	return strings.Join(lines, "\n")
}

// wrap breaks a ", "-separated description into lines of at most width
// characters where it can.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, item := range strings.Split(s, ", ") {
		switch {
		case cur == "":
			cur = item
		case len(cur)+2+len(item) <= width:
			cur += ", " + item
		default:
			lines = append(lines, cur+",")
			cur = item
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
