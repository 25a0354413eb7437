package plotting

import (
	"bytes"
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

func TestSavePNGAndSVG(t *testing.T) {
	dir := t.TempDir()
	png, svg := filepath.Join(dir, "c.png"), filepath.Join(dir, "c.svg")
	if err := Save(png, panel(), panel()); err != nil {
		t.Fatal(err)
	}
	if err := Save(svg, panel()); err != nil {
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

func TestSaveRejects(t *testing.T) {
	if err := Save(filepath.Join(t.TempDir(), "c.jpg"), panel()); err == nil {
		t.Error("a .jpg name was accepted")
	}
	if err := Save(filepath.Join(t.TempDir(), "c.png")); err == nil {
		t.Error("no panels was accepted")
	}
}
