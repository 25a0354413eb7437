// Package plotting draws learning curves with gonum/plot: test accuracy and
// training loss against rounds, one line per run or per group of runs, with
// an optional shaded band around each line (for example the range over
// seeds), written as PNG or SVG.
package plotting

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"strconv"
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

// Series is one curve: Values[i] at Rounds[i]. Lo and Hi, if set, have the
// same length and are drawn as a shaded band behind the line, in the line's
// colour (for example the minimum and maximum over seeds).
type Series struct {
	Label  string
	Rounds []float64
	Values []float64
	Lo, Hi []float64 // optional band; both or neither
	// Color is a 1-based index into Palette; 0 picks the series' position
	// in its panel. Dash is 0 for a solid line, 1, 2, ... for plotutil's
	// dash patterns; with Color 0 it also follows the position (a new
	// pattern every len(Palette) series).
	Color, Dash int
}

// Panel is one chart of several series.
type Panel struct {
	Title, XLabel, YLabel string // a title may have several lines ("\n")
	Series                []Series
	LegendBottom          bool // legend in the lower right corner (rising curves) instead of the upper right
	LogY                  bool // logarithmic y axis; every value (and band) must then be above 0
	// LegendOffset moves the legend from its corner towards the middle by
	// this fraction of the panel's height.
	LegendOffset float64
}

// PanelWidth and PanelHeight are the size of one panel; panels are drawn
// side by side.
const (
	PanelWidth  = 6 * vg.Inch
	PanelHeight = 4 * vg.Inch
)

// Palette is the line colours, in order: ten colours that stay distinct
// for colour-blind readers and in print (Tableau 10, matplotlib's default).
var Palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // blue
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, // orange
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // green
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, // red
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, // purple
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, // brown
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, // pink
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, // grey
	color.RGBA{0xbc, 0xbd, 0x22, 0xff}, // olive
	color.RGBA{0x17, 0xbe, 0xcf, 0xff}, // cyan
}

// bandAlpha is the opacity of a band (of 255).
const bandAlpha = 0x30

// Save draws the panels side by side into path (.png or .svg). It returns an
// error, never panics, on data it cannot draw: series of unequal lengths,
// NaN or infinite values, or values <= 0 on a logarithmic axis.
func Save(path string, panels ...Panel) error {
	return SaveTitled(path, "", panels...)
}

// SaveTitled is Save with a title over the whole figure (several lines if
// it has "\n"); "" draws none.
func SaveTitled(path, title string, panels ...Panel) (err error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("plotting: %s: want a .png or .svg file name", path)
	}
	if len(panels) == 0 {
		return fmt.Errorf("plotting: nothing to draw")
	}
	plots := make([][]*plot.Plot, 1)
	for _, pn := range panels {
		p, err := build(pn)
		if err != nil {
			return fmt.Errorf("plotting: %s: %w", path, err)
		}
		plots[0] = append(plots[0], p)
	}
	// gonum/plot panics on a few inputs that the checks above should have
	// caught; a figure is never worth a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plotting: %s: %v", path, r)
		}
	}()
	cols := len(plots[0])
	sty := plots[0][0].Title.TextStyle
	sty.Font.Size = vg.Points(13)
	var titleH vg.Length
	if title != "" {
		titleH = sty.Rectangle(title).Size().Y + 3*vg.Millimeter
	}
	width, height := PanelWidth*vg.Length(cols), PanelHeight+titleH
	var (
		c   vg.CanvasSizer
		svg *vgsvg.Canvas
		img *vgimg.Canvas
	)
	if ext == ".svg" {
		svg = vgsvg.New(width, height)
		c = svg
	} else {
		img = vgimg.New(width, height)
		c = img
	}
	dc := draw.New(c)
	if title != "" {
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y - vg.Millimeter + sty.FontExtents().Descent}, title)
		dc = draw.Crop(dc, 0, 0, 0, -titleH)
	}
	tiles := draw.Tiles{Rows: 1, Cols: cols, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	// Each panel in its own tile: plot.Align would line up the data areas
	// but drops panels with a shorter data area down from the top.
	for j := range cols {
		plots[0][j].Draw(tiles.At(dc, j, 0))
	}
	var buf bytes.Buffer
	if img != nil { // PNG, compressed harder than vgimg.PngCanvas does (figures get committed)
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		must := append([]color.Color{color.White, color.Black}, Palette...)
		if err := enc.Encode(&buf, paletted(img.Image(), must...)); err != nil {
			return fmt.Errorf("plotting: %s: %w", path, err)
		}
	} else if _, err := svg.WriteTo(&buf); err != nil {
		return fmt.Errorf("plotting: %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

// build makes one panel's plot after checking its data.
func build(pn Panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.Title
	p.X.Label.Text = pn.XLabel
	p.Y.Label.Text = pn.YLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = !pn.LegendBottom
	if pn.LegendBottom {
		p.Legend.YOffs = vg.Length(pn.LegendOffset) * PanelHeight
	} else {
		p.Legend.YOffs = -vg.Length(pn.LegendOffset) * PanelHeight
	}
	if pn.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	for i, s := range pn.Series {
		if err := check(s, pn.LogY); err != nil {
			return nil, fmt.Errorf("panel %q: series %q: %w", firstLine(pn.Title), s.Label, err)
		}
		if len(s.Rounds) == 0 {
			continue
		}
		col, _ := style(s, i)
		if s.Lo != nil {
			ring := make(plotter.XYs, 0, 2*len(s.Rounds))
			for j := range s.Rounds {
				ring = append(ring, plotter.XY{X: s.Rounds[j], Y: s.Lo[j]})
			}
			for j := len(s.Rounds) - 1; j >= 0; j-- {
				ring = append(ring, plotter.XY{X: s.Rounds[j], Y: s.Hi[j]})
			}
			band, err := plotter.NewPolygon(ring)
			if err != nil {
				return nil, fmt.Errorf("series %q: band: %w", s.Label, err)
			}
			r, g, b, _ := col.RGBA()
			band.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: bandAlpha}
			band.LineStyle.Width = 0
			p.Add(band)
		}
	}
	// The lines go over every band, so a later series' band never tints
	// an earlier series' line.
	for i, s := range pn.Series {
		if len(s.Rounds) == 0 {
			continue
		}
		col, dash := style(s, i)
		pts := make(plotter.XYs, len(s.Rounds))
		for j := range s.Rounds {
			pts[j].X, pts[j].Y = s.Rounds[j], s.Values[j]
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Label, err)
		}
		l.Color = col
		l.Dashes = dash
		l.Width = vg.Points(1.5)
		p.Add(l)
		if s.Label != "" {
			p.Legend.Add(s.Label, l)
		}
	}
	return p, nil
}

// style is the colour and dash pattern of series s at position i.
func style(s Series, i int) (color.Color, []vg.Length) {
	if s.Color > 0 {
		return Palette[(s.Color-1)%len(Palette)], plotutil.Dashes(s.Dash)
	}
	if s.Dash > 0 {
		return Palette[i%len(Palette)], plotutil.Dashes(s.Dash)
	}
	return Palette[i%len(Palette)], plotutil.Dashes(i / len(Palette))
}

// check validates one series for drawing.
func check(s Series, logY bool) error {
	n := len(s.Rounds)
	if len(s.Values) != n {
		return fmt.Errorf("%d rounds and %d values", n, len(s.Values))
	}
	if (s.Lo == nil) != (s.Hi == nil) || (s.Lo != nil && (len(s.Lo) != n || len(s.Hi) != n)) {
		return fmt.Errorf("band of %d low and %d high values for %d rounds, want both or neither, of the same length", len(s.Lo), len(s.Hi), n)
	}
	for _, x := range s.Rounds {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("round %v, want finite numbers", x)
		}
	}
	for _, v := range [][]float64{s.Values, s.Lo, s.Hi} {
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("value %v, want finite numbers", x)
			}
			if logY && x <= 0 {
				return fmt.Errorf("value %v on a logarithmic axis, want every value above 0", x)
			}
		}
	}
	return nil
}

// AllPositive reports whether every value and band value of the series is
// above 0, so that a logarithmic y axis can show them.
func AllPositive(series ...Series) bool {
	for _, s := range series {
		for _, v := range [][]float64{s.Values, s.Lo, s.Hi} {
			for _, x := range v {
				if !(x > 0) {
					return false
				}
			}
		}
	}
	return true
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// logTicks labels 1, 2 and 5 times each power of ten when the axis spans
// fewer than three decades (plot.LogTicks labels only the powers of ten,
// often a single label on a loss curve), and the powers of ten otherwise,
// with unlabelled minor ticks at 1..9 times each power. When that labels
// fewer than two ticks (a narrow range) it labels every 1..9 multiple, and
// failing that falls back to plot.DefaultTicks.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 0) {
		return nil
	}
	if decades := math.Log10(hi / lo); decades >= 3 {
		ticks := multiples(lo, hi, 1)
		// Label every step-th power of ten, at most about 8 labels.
		step := max(1, int(math.Ceil(decades/8)))
		for i := range ticks {
			if ticks[i].Label != "" && int(math.Round(math.Log10(ticks[i].Value)))%step != 0 {
				ticks[i].Label = ""
			}
		}
		return ticks
	}
	for _, labelled := range [][]float64{{1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}} {
		ticks := multiples(lo, hi, labelled...)
		n := 0
		for _, t := range ticks {
			if t.Label != "" {
				n++
			}
		}
		if n >= 2 {
			return ticks
		}
	}
	return plot.DefaultTicks{}.Ticks(lo, hi)
}

// multiples returns a tick at every m*10^e (m = 1..9) in [lo, hi],
// labelled when m is one of labelled.
func multiples(lo, hi float64, labelled ...float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		pow := math.Pow(10, e)
		for m := 1.0; m <= 9; m++ {
			v := m * pow
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			for _, l := range labelled {
				if m == l {
					t.Label = strconv.FormatFloat(v, 'g', 4, 64)
				}
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
