package checkpoint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
)

func server(t *testing.T) *algorithms.Server {
	t.Helper()
	s, err := algorithms.NewServer(algorithms.ServerConfig{
		Optimizer: algorithms.SGD, LR: 1, Momentum: 0.9, Scaffold: true, Clients: 4,
		Local: algorithms.Local{Steps: 2, LR: 0.1, Beta: 0.5},
	}, []float64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func round(s *algorithms.Server, ids ...int) {
	var ups []*algorithms.Update
	for _, id := range ids {
		d := []float64{0.1 * float64(id+1), -0.2, 0.3}
		ups = append(ups, &algorithms.Update{Client: id, Delta: d, DeltaC: d, Samples: 1})
	}
	s.Apply(ups)
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := server(t)
	w, err := NewWriter(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	round(s, 0, 2)
	if err := w.Save("cfg", s, []int{0, 2}, []byte("r1")); err != nil {
		t.Fatal(err)
	}
	round(s, 2, 3)
	if err := w.Save("cfg", s, []int{2, 3}, []byte("r2")); err != nil {
		t.Fatal(err)
	}
	st, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := st.Server
	if got.Round != 2 || st.ConfigSHA256 != "cfg" || string(st.Extra) != "r2" || got.Config != s.Config {
		t.Fatalf("loaded round %d config %q extra %q", got.Round, st.ConfigSHA256, st.Extra)
	}
	for name, pair := range map[string][2][]float64{"x": {got.X, s.X}, "g": {got.G, s.G}, "c": {got.C, s.C}, "m": {got.M, s.M}} {
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("%s = %v, want %v", name, pair[0], pair[1])
		}
	}
	if got.XPrev != nil || got.V != nil {
		t.Error("absent vectors came back non-nil")
	}
	for id := range 4 {
		if !slices.Equal(got.CI[id], s.CI[id]) {
			t.Errorf("c_%d = %v, want %v", id, got.CI[id], s.CI[id])
		}
	}
	// Round 1's file still holds client 0's c_i; a third round moving 0
	// makes it unneeded.
	if _, err := os.Stat(filepath.Join(dir, ledgerName(1))); err != nil {
		t.Errorf("round 1's ledger file, still needed for client 0, is gone: %v", err)
	}
	cp, err := Load(dir) // an independent copy to move on
	if err != nil {
		t.Fatal(err)
	}
	round(cp.Server, 0)
	if err := w.Save("cfg", cp.Server, []int{0}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ledgerName(1))); !os.IsNotExist(err) {
		t.Errorf("round 1's ledger file, needed by no client, is still there: %v", err)
	}
	if again, err := Load(dir); err != nil || !slices.Equal(again.Server.CI[2], s.CI[2]) || !slices.Equal(again.Server.CI[0], cp.Server.CI[0]) {
		t.Fatalf("after the third save: %v", err)
	}
	// The loaded state continues exactly like the original.
	round(s, 1)
	round(got, 1)
	if !slices.Equal(s.X, got.X) || !slices.Equal(s.CI[1], got.CI[1]) {
		t.Error("the restored server does not continue like the original")
	}
}

func TestLoadDetectsCorruption(t *testing.T) {
	for _, target := range []string{"state.bin", ledgerName(1)} {
		dir := t.TempDir()
		s := server(t)
		w, _ := NewWriter(dir, nil)
		round(s, 0)
		if err := w.Save("cfg", s, []int{0}, nil); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, target)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o644)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "corrupted") {
			t.Errorf("flipped a bit of %s: err = %v, want a checksum error", target, err)
		}
	}
	if _, err := Load(t.TempDir()); !IsNotExist(err) {
		t.Errorf("empty dir: err = %v, want not-exist", err)
	}
}
