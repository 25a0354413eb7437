package checkpoint

import (
	"crypto/sha256"
	"math"
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
	if err := w.Flush(); err != nil {
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
	if err := w.Flush(); err != nil {
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
		if err := w.Flush(); err != nil {
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

// clone is a deep copy of s: what a checkpoint of s must restore.
func clone(s *algorithms.Server) *algorithms.Server {
	c := &algorithms.Server{Config: s.Config, Round: s.Round}
	cv, sv := vectors(c), vectors(s)
	for i := range cv {
		*cv[i] = slices.Clone(*sv[i])
	}
	if s.CI != nil {
		c.CI = make([][]float64, len(s.CI))
		for i, v := range s.CI {
			c.CI[i] = slices.Clone(v)
		}
	}
	return c
}

// sameBits reports whether a and b hold the same float64 bits, and are
// both nil or both not.
func sameBits(a, b []float64) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, func(x, y float64) bool {
		return math.Float64bits(x) == math.Float64bits(y)
	})
}

// checkLoad loads dir and fails t unless it holds want, bit for bit.
func checkLoad(t *testing.T, dir string, want *algorithms.Server, extra string) {
	t.Helper()
	st, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := st.Server
	if got.Config != want.Config || got.Round != want.Round || string(st.Extra) != extra {
		t.Fatalf("loaded config %+v round %d extra %q, want %+v round %d extra %q", got.Config, got.Round, st.Extra, want.Config, want.Round, extra)
	}
	gv, wv := vectors(got), vectors(want)
	for i, name := range []string{"x", "x_prev", "g", "c", "m", "v"} {
		if !sameBits(*gv[i], *wv[i]) {
			t.Errorf("%s = %v, want %v", name, *gv[i], *wv[i])
		}
	}
	if len(got.CI) != len(want.CI) {
		t.Fatalf("%d control variates, want %d", len(got.CI), len(want.CI))
	}
	for id := range want.CI {
		if !sameBits(got.CI[id], want.CI[id]) {
			t.Errorf("c_%d = %v, want %v", id, got.CI[id], want.CI[id])
		}
	}
}

// TestAsyncSaveLoad saves five rounds without waiting, moving the server
// on while each checkpoint is written, and loads the last one.
func TestAsyncSaveLoad(t *testing.T) {
	fedavg, err := algorithms.NewServer(algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: 1, Clients: 4,
		Local: algorithms.Local{Steps: 2, LR: 0.1, Beta: 1}}, []float64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	participants := [][]int{{0, 2}, {2, 3}, {0, 1}, {1, 3}, {2}}
	for name, tc := range map[string]struct {
		s       *algorithms.Server
		ledgers []string // the ledger files the last checkpoint needs
	}{
		"fedavg":   {fedavg, nil},
		"scaffold": {server(t), []string{ledgerName(3), ledgerName(4), ledgerName(5)}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := NewWriter(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := tc.s
			var want *algorithms.Server
			for r, ids := range participants {
				round(s, ids...)
				want = clone(s)
				if err := w.Save("cfg", s, ids, []byte{byte(r)}); err != nil {
					t.Fatal(err)
				}
			}
			round(s, 0, 1, 2, 3) // while the last checkpoint is written
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			checkLoad(t, dir, want, string([]byte{byte(len(participants) - 1)}))
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, e := range entries {
				files = append(files, e.Name())
			}
			if wantFiles := append(tc.ledgers, "state.bin"); !slices.Equal(files, wantFiles) {
				t.Errorf("checkpoint files %v, want %v (superseded ledger files removed)", files, wantFiles)
			}
		})
	}
}

// TestSaveCopiesTheState overwrites everything Save was given as soon as it
// returns: the checkpoint must hold the state as it was.
func TestSaveCopiesTheState(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := server(t)
	round(s, 0, 2)
	want := clone(s)
	changed, extra := []int{0, 2}, []byte("r1")
	if err := w.Save("cfg", s, changed, extra); err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]float64{s.X, s.C, s.M, s.CI[0], s.CI[2]} {
		for i := range v {
			v[i] = -7
		}
	}
	changed[0], extra[0] = 1, 'x'
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	checkLoad(t, dir, want, "r1")
}

// TestWriteErrorSurfaces breaks the directory under a write in flight: the
// error comes back from the next Save, or from Flush, and every call after.
func TestWriteErrorSurfaces(t *testing.T) {
	breakers := map[string]func(dir string) error{
		"removed": os.RemoveAll,
		"a file": func(dir string) error {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			return os.WriteFile(dir, nil, 0o644)
		},
	}
	for name, breakDir := range breakers {
		for _, via := range []string{"Save", "Flush"} {
			t.Run(name+"/"+via, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "checkpoints")
				w, err := NewWriter(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := breakDir(dir); err != nil {
					t.Fatal(err)
				}
				s := server(t)
				round(s, 0)
				if err := w.Save("cfg", s, []int{0}, nil); err != nil {
					t.Fatalf("Save before any write: %v", err)
				}
				round(s, 1)
				if via == "Save" {
					err = w.Save("cfg", s, []int{1}, nil)
				} else {
					err = w.Flush()
				}
				if err == nil || !strings.Contains(err.Error(), dir) {
					t.Fatalf("%s after a failed write: err = %v, want an error naming %s", via, err, dir)
				}
				if again := w.Flush(); again != err {
					t.Errorf("Flush after the failure: %v, want %v", again, err)
				}
				if again := w.Save("cfg", s, []int{1}, nil); again != err {
					t.Errorf("Save after the failure: %v, want %v", again, err)
				}
			})
		}
	}
}

func TestFlushWithNothingInFlight(t *testing.T) {
	w, err := NewWriter(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush before any Save: %v", err)
	}
	s := server(t)
	round(s, 0)
	if err := w.Save("cfg", s, []int{0}, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOldFormatNamed: a file of checkpoint format 2 (SHA-256 trailer) is
// named as such, not reported as corrupted.
func TestOldFormatNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.bin")
	body := []byte("a format 2 checkpoint body")
	sum := sha256.Sum256(body)
	if err := os.WriteFile(path, append(body, sum[:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readSummed(path); err == nil || !strings.Contains(err.Error(), "checkpoint format 2") {
		t.Fatalf("got %v, want the old format named", err)
	}
}
