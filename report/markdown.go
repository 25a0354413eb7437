package report

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fedmo/fedmo/atomicfile"
	"github.com/fedmo/fedmo/config"
)

// Document is what WriteReport writes besides the points.
type Document struct {
	Title  string   // the level-1 heading
	Intro  []string // paragraphs (Markdown) under it, e.g. the command that made the runs
	Target float64  // the accuracy whose first round the tables report
	// Skipped are run directories that could not be read; the report
	// lists them.
	Skipped []error
}

// maxPointsPerFigure bounds the curves of one figure; more points are
// split into one figure per value of the first key.
const maxPointsPerFigure = 8

// WriteReport writes dir/report.md about ps: the summary table over seeds,
// the learning curves (PNG files next to it, linked relatively), a table of
// every run, and the configuration the runs share. It returns the files it
// wrote.
func WriteReport(dir string, ps Points, doc Document) ([]string, error) {
	var b bytes.Buffer
	title := doc.Title
	if title == "" {
		title = "fedmo report"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	for _, p := range doc.Intro {
		fmt.Fprintf(&b, "%s\n\n", p)
	}
	if ps.Common != "" {
		fmt.Fprintf(&b, "Every run: %s.\n\n", ps.Common)
	}
	if len(ps.Keys) > 0 {
		fmt.Fprintf(&b, "The runs differ in: %s.\n\n", code(ps.Keys))
	}

	b.WriteString("## Summary\n\n")
	if err := WriteMarkdown(&b, ps.Keys, doc.Target, ps.Summarize(doc.Target)); err != nil {
		return nil, err
	}
	every := ""
	if c := firstConfig(ps); c != nil && c.Eval.Every > 1 {
		every = fmt.Sprintf(" (the test set is evaluated every %d rounds, so rounds are multiples of %d)", c.Eval.Every, c.Eval.Every)
	}
	fmt.Fprintf(&b, "\nMean ± sample standard deviation over the seeds that completed. Rounds to %s is the first evaluated round at or above %s test accuracy%s, averaged over the seeds that reached it; (k/n) says how many did. Seconds are the run's own time (rounds and evaluations, not loading the data).\n\n",
		pct(doc.Target), pct(doc.Target), every)

	var written []string
	b.WriteString("## Learning curves\n\n")
	figs := splitFigures(ps)
	for i, f := range figs {
		name := "curves.png"
		if len(figs) > 1 {
			name = fmt.Sprintf("curves-%d.png", i+1)
		}
		path := filepath.Join(dir, name)
		if err := PlotPoints(path, f.points); err != nil {
			fmt.Fprintf(&b, "No figure%s: %v\n\n", f.caption, err)
			continue
		}
		written = append(written, path)
		fmt.Fprintf(&b, "![learning curves%s](%s)\n\n", f.caption, name)
	}
	fmt.Fprintf(&b, "Test accuracy, the clients' mean minibatch loss and (when measured) the global training loss against rounds. A line is the mean over a point's seeds at each round; the band is the %s.\n\n", Band)

	b.WriteString("## Runs\n\n")
	rows := [][]string{{"run", "seed", "status", "final acc", "best acc", "rounds to " + pct(doc.Target), "seconds", "final model sha256"}}
	for _, p := range ps.Points {
		for _, r := range p.Runs {
			s := Summarize(r, doc.Target)
			status := r.Status
			if status == "" {
				status = "unfinished (no manifest)"
			}
			seed, reach, final, best, sha := "-", "never", "-", "-", "-"
			if r.Config != nil {
				seed = strconv.FormatUint(r.Config.Seed, 10)
			}
			if s.RoundsToTarget > 0 {
				reach = strconv.Itoa(s.RoundsToTarget)
			}
			if s.BestAcc > 0 {
				final, best = strconv.FormatFloat(s.FinalAcc, 'f', 4, 64), strconv.FormatFloat(s.BestAcc, 'f', 4, 64)
			}
			if r.FinalSHA256 != "" {
				sha = "`" + r.FinalSHA256[:min(16, len(r.FinalSHA256))] + "…`"
			}
			rows = append(rows, []string{link(dir, r), seed, status, final, best, reach, strconv.FormatFloat(r.Seconds, 'f', 1, 64), sha})
		}
	}
	if err := markdownTable(&b, rows, 3); err != nil {
		return nil, err
	}
	if len(doc.Skipped) > 0 {
		b.WriteString("\nLeft out (could not be read):\n\n")
		for _, e := range doc.Skipped {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e.Error(), "\n", " "))
		}
	}
	if c := firstConfig(ps); c != nil {
		b.WriteString("\n## Configuration\n\n")
		if len(ps.Keys) > 0 {
			fmt.Fprintf(&b, "The resolved configuration of the first run; the others differ in %s and the seed.\n\n", code(ps.Keys))
		} else {
			b.WriteString("The resolved configuration of the first run; the others differ only in the seed.\n\n")
		}
		fmt.Fprintf(&b, "```yaml\n%s```\n", c.YAML())
	}
	path := filepath.Join(dir, "report.md")
	if err := atomicfile.Write(path, b.Bytes()); err != nil {
		return nil, err
	}
	return append(written, path), nil
}

type figure struct {
	caption string
	points  Points
}

// splitFigures puts up to maxPointsPerFigure points in one figure, and
// more into one figure per value of the first key.
func splitFigures(ps Points) []figure {
	if len(ps.Points) <= maxPointsPerFigure || len(ps.Keys) < 2 {
		return []figure{{points: ps}}
	}
	var figs []figure
	index := map[string]int{}
	for _, p := range ps.Points {
		v := p.Values[0]
		i, ok := index[v]
		if !ok {
			i = len(figs)
			index[v] = i
			sub := ps
			sub.Points = nil
			sub.Common = strings.TrimPrefix(ps.Common+", "+ps.Keys[0]+"="+v, ", ")
			figs = append(figs, figure{caption: ", " + ps.Keys[0] + "=" + v, points: sub})
		}
		// The figure's title has the first key; the legend need not.
		var parts []string
		for _, part := range strings.Split(p.Label, ", ") {
			if part != ps.Keys[0]+"="+v && part != v {
				parts = append(parts, part)
			}
		}
		if len(parts) > 0 {
			p.Label = strings.Join(parts, ", ")
		}
		figs[i].points.Points = append(figs[i].points.Points, p)
	}
	return figs
}

func firstConfig(ps Points) *config.Config {
	for _, p := range ps.Points {
		for _, r := range p.Runs {
			if r.Config != nil {
				return r.Config
			}
		}
	}
	return nil
}

// link is a run's directory relative to the report's, as a Markdown link.
func link(dir string, r Run) string {
	if r.Dir == "" {
		return r.Label
	}
	rel, err := filepath.Rel(dir, r.Dir)
	if err != nil {
		rel = r.Dir
	}
	rel = filepath.ToSlash(rel)
	return "[" + strings.ReplaceAll(rel, "|", `\|`) + "](" + strings.ReplaceAll(strings.ReplaceAll(rel, " ", "%20"), ")", "%29") + "/)"
}

func code(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "`" + k + "`"
	}
	return strings.Join(q, ", ")
}
