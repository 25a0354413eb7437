package runio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/engine"
)

// finishedRun writes a two-round run directory and returns its manifest path.
func finishedRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, []byte("seed: 1\n"), Manifest{FedmoVersion: "test", Seed: 1, ConfigSHA256: "c0ffee", NumParams: 3, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{0.5, -1, 2}
	for r := 1; r <= 2; r++ {
		acc := 0.25 * float64(r)
		m := &engine.Metrics{Round: r, Participants: []int{0, 2}, LocalLoss: 1 / float64(r), ModelSHA256: engine.Hash(x),
			Eval: &engine.Evaluation{TestLoss: 0.3, TestAcc: acc}, Seconds: 0.01}
		if err := w.Round(m, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(x, 0.123456789, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "manifest.json")
}

func TestSealWrittenAndChecked(t *testing.T) {
	path := finishedRun(t)
	m, err := CheckManifest(path)
	if err != nil {
		t.Fatalf("CheckManifest of a fresh manifest: %v", err)
	}
	if m.Status != "complete" || len(m.Rounds) != 2 || len(m.ManifestSHA256) != 64 {
		t.Errorf("manifest %+v, want a complete 2-round run with a 64-hex manifest_sha256", m)
	}
	if got := Seal(*m); got != m.ManifestSHA256 {
		t.Errorf("Seal = %s, want the stored %s", got, m.ManifestSHA256)
	}
	// The seal covers every field: changing any one changes it.
	for name, edit := range map[string]func(*Manifest){
		"seed":    func(m *Manifest) { m.Seed++ },
		"seconds": func(m *Manifest) { m.Seconds += 1e-9 },
		"round":   func(m *Manifest) { m.Rounds[1].ModelSHA256 = "0" + m.Rounds[1].ModelSHA256[1:] },
		"status":  func(m *Manifest) { m.Status = "diverged" },
	} {
		c := *m
		c.Rounds = append([]RoundEntry(nil), m.Rounds...)
		edit(&c)
		if Seal(c) == m.ManifestSHA256 {
			t.Errorf("editing %s left the seal unchanged", name)
		}
	}
}

func TestCheckManifestCatchesEdits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(string) string
		tampered bool // want ErrTampered rather than another error
	}{
		{"a round hash", func(s string) string { return strings.Replace(s, `"model_sha256": "`, `"model_sha256": "f`, 1) }, true},
		{"the final hash", func(s string) string {
			return strings.Replace(s, `"final_model_sha256": "`, `"final_model_sha256": "0`, 1)
		}, true},
		{"the seed", func(s string) string { return strings.Replace(s, `"seed": 1`, `"seed": 2`, 1) }, true},
		{"the self-check itself", func(s string) string { return strings.Replace(s, `"manifest_sha256": "`, `"manifest_sha256": "a`, 1) }, true},
		{"an added key", func(s string) string { return strings.Replace(s, "{", `{"note": "hi",`, 1) }, false},
		{"the self-check removed", func(s string) string {
			i := strings.Index(s, `,
  "manifest_sha256"`)
			return s[:i] + "\n}\n"
		}, false},
		{"truncated JSON", func(s string) string { return s[:len(s)/2] }, false},
		{"two objects", func(s string) string { return s + "{}" }, false},
		{"empty file", func(string) string { return "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := finishedRun(t)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edited := tc.edit(string(b))
			if edited == string(b) {
				t.Fatal("the edit changed nothing")
			}
			if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = CheckManifest(path)
			if err == nil {
				t.Fatal("the edited manifest passed the check")
			}
			if errors.Is(err, ErrTampered) != tc.tampered {
				t.Errorf("err = %v; errors.Is(err, ErrTampered) = %v, want %v", err, !tc.tampered, tc.tampered)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want it to name %s", err, path)
			}
		})
	}
}

func TestCheckManifestMissing(t *testing.T) {
	if _, err := CheckManifest(filepath.Join(t.TempDir(), "manifest.json")); err == nil {
		t.Error("a missing manifest passed the check")
	}
}

func TestStoppedRunIsSealedToo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, []byte("seed: 1\n"), Manifest{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish([]float64{1}, 1, errors.New("engine: round 1: the global model diverged")); err != nil {
		t.Fatal(err)
	}
	m, err := CheckManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Status == "complete" || m.FinalModelSHA256 != "" {
		t.Errorf("stopped run's manifest %+v, want its reason and no final hash", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.npy")); err == nil {
		t.Error("a stopped run wrote model.npy")
	}
}
