package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Stat is the mean and the sample standard deviation (n-1 in the
// denominator) of n values; Std is NaN for fewer than two.
type Stat struct {
	Mean, Std float64
	N         int
}

// NewStat summarises xs.
func NewStat(xs []float64) Stat {
	s := Stat{N: len(xs), Mean: math.NaN(), Std: math.NaN()}
	if s.N == 0 {
		return s
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	s.Mean = sum / float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// PointSummary is a point's results over its seeds. The statistics are
// over its complete runs; runs that stopped (diverged, or interrupted) or
// are still going are only counted.
type PointSummary struct {
	Label          string
	Values         []string // as Points.Values
	Runs           int      // runs of this point (seeds)
	Complete       int      // runs that finished every round
	Failed         []string // why each stopped run stopped
	Running        int      // runs without a manifest (still going, or killed)
	FinalAcc       Stat
	BestAcc        Stat
	RoundsToTarget Stat // over the complete runs that reached the target
	Reached        int  // complete runs that reached the target
	Seconds        Stat
}

// Summarize summarises every point at the target accuracy.
func (ps Points) Summarize(target float64) []PointSummary {
	out := make([]PointSummary, len(ps.Points))
	for i, p := range ps.Points {
		s := PointSummary{Label: p.Label, Values: p.Values, Runs: len(p.Runs)}
		var final, best, reach, secs []float64
		for _, r := range p.Runs {
			switch r.Status {
			case StatusComplete:
			case "":
				s.Running++
				continue
			default:
				s.Failed = append(s.Failed, r.Status)
				continue
			}
			s.Complete++
			one := Summarize(r, target)
			final = append(final, one.FinalAcc)
			best = append(best, one.BestAcc)
			secs = append(secs, r.Seconds)
			if one.RoundsToTarget > 0 {
				reach = append(reach, float64(one.RoundsToTarget))
			}
		}
		s.FinalAcc, s.BestAcc, s.RoundsToTarget, s.Seconds = NewStat(final), NewStat(best), NewStat(reach), NewStat(secs)
		s.Reached = len(reach)
		out[i] = s
	}
	return out
}

// pm formats a statistic as "mean ± std" ("mean" for one value, "-" for none).
func pm(s Stat, prec int) string {
	switch {
	case s.N == 0:
		return "-"
	case s.N == 1:
		return strconv.FormatFloat(s.Mean, 'f', prec, 64)
	}
	return strconv.FormatFloat(s.Mean, 'f', prec, 64) + " ± " + strconv.FormatFloat(s.Std, 'f', prec, 64)
}

// Header of the summary tables.
func summaryHeader(keys []string, target float64) []string {
	h := append([]string(nil), keys...)
	if len(keys) == 0 {
		h = append(h, "runs of")
	}
	return append(h, "seeds", "final acc", "best acc", fmt.Sprintf("rounds to %s", pct(target)), "seconds")
}

func pct(target float64) string {
	return strconv.FormatFloat(100*target, 'f', -1, 64) + "%"
}

// summaryRow is one table row of s.
func summaryRow(s PointSummary, keys []string, target float64) []string {
	row := append([]string(nil), s.Values...)
	if len(keys) == 0 {
		row = append(row, s.Label)
	}
	seeds := strconv.Itoa(s.Complete)
	var notes []string
	if n := len(s.Failed); n > 0 {
		notes = append(notes, fmt.Sprintf("%d %s", n, failureWord(s.Failed)))
	}
	if s.Running > 0 {
		notes = append(notes, fmt.Sprintf("%d unfinished", s.Running))
	}
	if len(notes) > 0 {
		seeds += " (+" + strings.Join(notes, ", ") + ")"
	}
	reach := "never (0/" + strconv.Itoa(s.Complete) + ")"
	if s.Complete == 0 {
		reach = "-"
	} else if s.Reached > 0 {
		reach = pm(s.RoundsToTarget, 1) + fmt.Sprintf(" (%d/%d)", s.Reached, s.Complete)
	}
	secPrec := 1
	if s.Seconds.Mean < 10 {
		secPrec = 2
	}
	return append(row, seeds, pm(s.FinalAcc, 4), pm(s.BestAcc, 4), reach, pm(s.Seconds, secPrec))
}

// failureWord says "diverged" when every failure is a divergence, "failed"
// otherwise.
func failureWord(failed []string) string {
	for _, f := range failed {
		if !Diverged(f) {
			return "failed"
		}
	}
	return "diverged"
}

// Diverged reports whether a manifest status says the training diverged
// (the round engine's messages: "... diverged ..."), as opposed to a run
// that was interrupted or failed for another reason. A diverged run is a
// result: running it again diverges again.
func Diverged(status string) bool {
	return strings.Contains(status, "diverged")
}

// WriteMarkdown writes the summaries as a Markdown table whose columns are
// padded, so that it also reads as plain text: the point's keys, the seeds
// that completed (and those that did not), then mean ± standard deviation
// over the complete seeds of the final and best test accuracy, the rounds
// to the target accuracy (over the seeds that reached it, and how many
// did) and the seconds.
func WriteMarkdown(w io.Writer, keys []string, target float64, sums []PointSummary) error {
	rows := [][]string{summaryHeader(keys, target)}
	for _, s := range sums {
		rows = append(rows, summaryRow(s, keys, target))
	}
	return markdownTable(w, rows, len(keys))
}

// markdownTable writes rows (the first is the header) as a padded Markdown
// table; the first left columns are left-aligned, the rest right-aligned.
func markdownTable(w io.Writer, rows [][]string, left int) error {
	if len(rows) == 0 {
		return nil
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for j, c := range r {
			width[j] = max(width[j], utf8.RuneCountInString(c), 3)
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for j, c := range cells {
			pad := strings.Repeat(" ", width[j]-utf8.RuneCountInString(c))
			if j < left {
				b.WriteString(" " + c + pad + " |")
			} else {
				b.WriteString(" " + pad + c + " |")
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	sep := make([]string, len(width))
	for j := range sep {
		if j < left {
			sep[j] = strings.Repeat("-", width[j])
		} else {
			sep[j] = strings.Repeat("-", width[j]-1) + ":"
		}
	}
	line(sep)
	for _, r := range rows[1:] {
		line(escapeCells(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func escapeCells(r []string) []string {
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = strings.ReplaceAll(c, "|", `\|`)
	}
	return out
}

// WriteCSV writes the summaries as CSV, one row per point: the keys, then
// label, target, runs, complete, failed, unfinished, and for the final and
// best accuracy, the rounds to the target and the seconds their mean and
// standard deviation (empty when undefined), and reached.
func WriteCSV(w io.Writer, keys []string, target float64, sums []PointSummary) error {
	cw := csv.NewWriter(w)
	head := append(append([]string(nil), keys...), "label", "target", "runs", "complete", "failed", "unfinished",
		"final_acc_mean", "final_acc_std", "best_acc_mean", "best_acc_std",
		"rounds_to_target_mean", "rounds_to_target_std", "reached", "seconds_mean", "seconds_std")
	cw.Write(head)
	f := func(x float64) string {
		if math.IsNaN(x) {
			return ""
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	for _, s := range sums {
		row := append(append([]string(nil), s.Values...), s.Label, f(target), strconv.Itoa(s.Runs), strconv.Itoa(s.Complete),
			strconv.Itoa(len(s.Failed)), strconv.Itoa(s.Running),
			f(s.FinalAcc.Mean), f(s.FinalAcc.Std), f(s.BestAcc.Mean), f(s.BestAcc.Std),
			f(s.RoundsToTarget.Mean), f(s.RoundsToTarget.Std), strconv.Itoa(s.Reached), f(s.Seconds.Mean), f(s.Seconds.Std))
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}
