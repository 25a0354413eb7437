package plotting

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func panel() Panel {
	return Panel{Title: "t", XLabel: "round", YLabel: "acc", Series: []Series{
		{Label: "a", Rounds: []float64{1, 2, 3}, Values: []float64{0.1, 0.5, 0.7}},
		{Label: "b", Rounds: []float64{1, 2, 3}, Values: []float64{0.2, 0.4, 0.8}},
	}}
}

func banded() Panel {
	return Panel{Title: "two\nlines", XLabel: "round", YLabel: "loss", LogY: true, Series: []Series{
		{Label: "a", Rounds: []float64{1, 2, 3}, Values: []float64{2, 1, 0.5}, Lo: []float64{1.5, 0.8, 0.3}, Hi: []float64{2.5, 1.2, 0.6}},
		{Label: "b", Rounds: []float64{1, 2, 3}, Values: []float64{2.2, 0.9, 0.1}},
	}}
}

func TestSavePNGAndSVG(t *testing.T) {
	dir := t.TempDir()
	png, svg := filepath.Join(dir, "c.png"), filepath.Join(dir, "c.svg")
	if err := Save(png, panel(), banded()); err != nil {
		t.Fatal(err)
	}
	if err := Save(svg, panel(), banded()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(png)
	if !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("%s is not a PNG", png)
	}
	s, _ := os.ReadFile(svg)
	if !strings.Contains(string(s), "<svg") {
		t.Errorf("%s is not an SVG", svg)
	}
}

// TestBandIsDrawn compares an SVG with and without the band: the band adds
// a translucent filled path.
func TestBandIsDrawn(t *testing.T) {
	dir := t.TempDir()
	with, without := filepath.Join(dir, "with.svg"), filepath.Join(dir, "without.svg")
	p := banded()
	if err := Save(with, p); err != nil {
		t.Fatal(err)
	}
	p.Series[0].Lo, p.Series[0].Hi = nil, nil
	if err := Save(without, p); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(with)
	b, _ := os.ReadFile(without)
	if n, m := strings.Count(string(a), "fill-opacity"), strings.Count(string(b), "fill-opacity"); n <= m {
		t.Errorf("the banded SVG has %d fill-opacity attributes, the plain one %d: want more with the band", n, m)
	}
}

func TestSaveRejects(t *testing.T) {
	dir := t.TempDir()
	if err := Save(filepath.Join(dir, "c.jpg"), panel()); err == nil {
		t.Error("a .jpg name was accepted")
	}
	if err := Save(filepath.Join(dir, "c.png")); err == nil {
		t.Error("no panels was accepted")
	}
	for name, edit := range map[string]func(*Panel){
		"short values":    func(p *Panel) { p.Series[0].Values = p.Series[0].Values[:2] },
		"NaN":             func(p *Panel) { p.Series[1].Values[1] = math.NaN() },
		"Inf round":       func(p *Panel) { p.Series[1].Rounds[2] = math.Inf(1) },
		"half a band":     func(p *Panel) { p.Series[0].Hi = nil },
		"short band":      func(p *Panel) { p.Series[0].Lo = p.Series[0].Lo[:1] },
		"zero on log":     func(p *Panel) { p.Series[1].Values[2] = 0 },
		"negative on log": func(p *Panel) { p.Series[0].Lo[0] = -1 },
	} {
		p := banded()
		edit(&p)
		path := filepath.Join(dir, "bad.png")
		if err := Save(path, p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want it to name the file", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.png")); err == nil {
		t.Error("a rejected figure was written")
	}
}

func TestEdgeCasesDraw(t *testing.T) {
	dir := t.TempDir()
	for name, p := range map[string]Panel{
		"empty panel":  {Title: "nothing"},
		"empty series": {Series: []Series{{Label: "none"}}},
		"one point":    {Series: []Series{{Label: "x", Rounds: []float64{5}, Values: []float64{0.3}}}},
		"flat":         {LogY: true, Series: []Series{{Label: "x", Rounds: []float64{1, 2}, Values: []float64{2, 2}}}},
	} {
		if err := Save(filepath.Join(dir, "e.png"), p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAllPositive(t *testing.T) {
	p := banded()
	if !AllPositive(p.Series...) {
		t.Error("positive series reported non-positive")
	}
	p.Series[0].Lo[1] = 0
	if AllPositive(p.Series...) {
		t.Error("a zero band value was missed")
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (logTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	if got, want := strings.Join(labels(0.08, 2.4), " "), "0.1 0.2 0.5 1 2"; got != want {
		t.Errorf("labels over [0.08, 2.4] = %q, want %q", got, want)
	}
	if got, want := strings.Join(labels(1e-7, 1), " "), "1e-07 1e-06 1e-05 0.0001 0.001 0.01 0.1 1"; got != want {
		t.Errorf("labels over [1e-7, 1] = %q, want %q", got, want)
	}
	if got, want := strings.Join(labels(1e-20, 10), " "), "1e-18 1e-15 1e-12 1e-09 1e-06 0.001 1"; got != want {
		t.Errorf("labels over [1e-20, 10] = %q, want %q (every 3rd decade)", got, want)
	}
	if got, want := strings.Join(labels(1.1, 1.7), " "), ""; got == want {
		t.Errorf("labels over [1.1, 1.7]: none, want the linear fallback")
	}
	if got, want := strings.Join(labels(2.5, 4.5), " "), "3 4"; got != want {
		t.Errorf("labels over [2.5, 4.5] = %q, want %q", got, want)
	}
	for _, r := range [][2]float64{{0, 1}, {-1, 1}, {2, 1}, {1, math.Inf(1)}} {
		if got := (logTicks{}).Ticks(r[0], r[1]); got != nil {
			t.Errorf("Ticks(%v, %v) = %v, want none", r[0], r[1], got)
		}
	}
}

func TestSaveTitledAddsATitleBand(t *testing.T) {
	dir := t.TempDir()
	plain, titled := filepath.Join(dir, "plain.png"), filepath.Join(dir, "titled.png")
	if err := Save(plain, panel(), banded()); err != nil {
		t.Fatal(err)
	}
	if err := SaveTitled(titled, "line one\nline two", panel(), banded()); err != nil {
		t.Fatal(err)
	}
	size := func(path string) image.Config {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c, err := png.DecodeConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := size(plain), size(titled)
	if a.Width != b.Width || b.Height <= a.Height {
		t.Errorf("plain %dx%d, titled %dx%d: want the same width and a taller titled figure", a.Width, a.Height, b.Width, b.Height)
	}
	svg := filepath.Join(dir, "titled.svg")
	if err := SaveTitled(svg, "a figure title", panel()); err != nil {
		t.Fatal(err)
	}
	if s, _ := os.ReadFile(svg); !strings.Contains(string(s), "a figure title") {
		t.Error("the SVG does not contain the title")
	}
}

// TestExplicitColors: series with the same Color share the palette entry,
// whatever their position.
func TestExplicitColors(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "c.svg")
	p := Panel{LegendOffset: 0.3, Series: []Series{
		{Label: "a", Rounds: []float64{1, 2}, Values: []float64{1, 2}, Color: 3},
		{Label: "b", Rounds: []float64{1, 2}, Values: []float64{2, 1}, Color: 3, Dash: 1},
	}}
	if err := Save(svg, p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(svg)
	r, g, bl, _ := Palette[2].RGBA()
	want := fmt.Sprintf("stroke:#%02X%02X%02X", r>>8, g>>8, bl>>8)
	if n := strings.Count(string(b), want); n < 4 { // two lines and two legend samples
		t.Errorf("%s appears %d times in the SVG, want the lines and legend samples of both series", want, n)
	}
}

// TestPaletted: an image of few colours converts losslessly; with many
// colours each pixel maps to the nearest palette entry; PNG output is the same bytes twice.
func TestPaletted(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 30, 20))
	for y := range 20 {
		for x := range 30 {
			img.Set(x, y, color.RGBA{uint8(10 * (x % 3)), 0, uint8(y % 2), 255})
		}
	}
	p := paletted(img)
	for y := range 20 {
		for x := range 30 {
			if got, want := rgba(p.At(x, y)), img.RGBAAt(x, y); got != want {
				t.Fatalf("(%d, %d) = %v, want %v (6 colours convert losslessly)", x, y, got, want)
			}
		}
	}
	many := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			many.Set(x, y, color.RGBA{uint8(4 * x), uint8(4 * y), 0, 255})
		}
	}
	mp := paletted(many)
	if len(mp.Palette) != 256 {
		t.Errorf("%d palette entries, want 256", len(mp.Palette))
	}
	dist := func(a, b color.RGBA) int {
		dr, dg, db, da := int(a.R)-int(b.R), int(a.G)-int(b.G), int(a.B)-int(b.B), int(a.A)-int(b.A)
		return dr*dr + dg*dg + db*db + da*da
	}
	for _, pt := range []image.Point{{0, 0}, {20, 0}, {63, 63}, {31, 7}} {
		got, want := rgba(mp.At(pt.X, pt.Y)), many.RGBAAt(pt.X, pt.Y)
		for _, c := range mp.Palette {
			if dist(rgba(c), want) < dist(got, want) {
				t.Errorf("%v: %v maps to %v, but the palette has the closer %v", pt, want, got, c)
				break
			}
		}
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	if err := Save(a, banded()); err != nil {
		t.Fatal(err)
	}
	if err := Save(b, banded()); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if !bytes.Equal(x, y) {
		t.Error("the same figure saved twice gave different PNG bytes")
	}
}
