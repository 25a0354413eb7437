// Package plotting draws learning curves with gonum/plot: test accuracy and
// training loss against rounds, one line per run, written as PNG or SVG.
package plotting

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/fedmo/fedmo/atomicfile"
)

// Series is one run's curve.
type Series struct {
	Label  string
	Rounds []float64
	Values []float64
}

// Panel is one chart of several series.
type Panel struct {
	Title, XLabel, YLabel string
	Series                []Series
	LegendBottom          bool // legend in the lower right corner (rising curves) instead of the upper right
}

// Save draws the panels side by side into path (.png or .svg).
func Save(path string, panels ...Panel) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("plotting: %s: want a .png or .svg file name", path)
	}
	if len(panels) == 0 {
		return fmt.Errorf("plotting: nothing to draw")
	}
	const w, h = 6 * vg.Inch, 4 * vg.Inch
	plots := make([][]*plot.Plot, 1)
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.Title
		p.X.Label.Text = pn.XLabel
		p.Y.Label.Text = pn.YLabel
		p.Add(plotter.NewGrid())
		p.Legend.Top = !pn.LegendBottom
		for i, s := range pn.Series {
			pts := make(plotter.XYs, len(s.Rounds))
			for j := range s.Rounds {
				pts[j].X, pts[j].Y = s.Rounds[j], s.Values[j]
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return fmt.Errorf("plotting: %s: %w", s.Label, err)
			}
			l.Color = plotutil.Color(i)
			l.Dashes = plotutil.Dashes(i / 7)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.Label, l)
		}
		plots[0] = append(plots[0], p)
	}
	cols := len(plots[0])
	var c vg.CanvasWriterTo
	if ext == ".svg" {
		c = vgsvg.New(w*vg.Length(cols), h)
	} else {
		c = vgimg.PngCanvas{Canvas: vgimg.New(w*vg.Length(cols), h)}
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: cols, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(plots, tiles, dc)
	for j := range cols {
		plots[0][j].Draw(canvases[0][j])
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return fmt.Errorf("plotting: %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}
