package sweep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/report"
	"github.com/fedmo/fedmo/runio"
	"github.com/fedmo/fedmo/simulate"
)

// base is a fast experiment on FedProx Synthetic(1, 1).
const base = `
rounds: 4
clients: 12
participation: 5
data: {name: synthetic, partition: natural}
model: {name: softmax, init: zeros}
local: {steps: 5, batch: 10, lr: 0.02}
eval: {every: 2}
`

func spec(t *testing.T, grids ...string) Spec {
	t.Helper()
	s := Spec{Base: base, Seeds: []uint64{1, 2}, Target: 0.3}
	for _, g := range grids {
		a, err := ParseGrid(g)
		if err != nil {
			t.Fatal(err)
		}
		s.Axes = append(s.Axes, a)
	}
	return s
}

func states(r *Result) string {
	var s []string
	for _, o := range r.Outcomes {
		s = append(s, o.State.String())
	}
	return strings.Join(s, ", ")
}

func manifest(t *testing.T, dir string) *runio.Manifest {
	t.Helper()
	m, err := runio.CheckManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSweepRunEqualsSimulate: a sweep's run is simulate.Run of the same
// config, bit for bit, whatever the sweep's parallelism and the run's
// workers.
func TestSweepRunEqualsSimulate(t *testing.T) {
	out := t.TempDir()
	s := spec(t, "algorithm.name=fedavg,scaffold", "local.lr=0.02,0.05")
	res, err := Run(context.Background(), s, Options{Out: out, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outcomes) != 8 || res.Count(Ran) != 8 {
		t.Fatalf("states %s, want 8 runs that ran", states(res))
	}
	for _, o := range res.Outcomes {
		want, err := simulate.Run(context.Background(), o.Config, simulate.Options{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		m := manifest(t, filepath.Join(out, o.Name))
		if m.FinalModelSHA256 != want.FinalSHA256 || len(m.Rounds) != len(want.Rounds) {
			t.Fatalf("%s: final hash %s, simulate gives %s", o.Name, m.FinalModelSHA256, want.FinalSHA256)
		}
		for i, r := range m.Rounds {
			if r.ModelSHA256 != want.Rounds[i].ModelSHA256 {
				t.Fatalf("%s: round %d hash differs from simulate's", o.Name, i+1)
			}
		}
	}
	f, err := ReadFile(out)
	if err != nil || len(f.Runs) != 8 || f.Runs[0].Dir != "algorithm.name=fedavg,local.lr=0.02,seed=1" {
		t.Fatalf("sweep.json: %+v, %v", f, err)
	}

	var printed strings.Builder
	ps, err := Summary(out, &printed)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Points) != 4 || len(ps.Points[3].Runs) != 2 || ps.Points[3].Label != "algorithm.name=scaffold, local.lr=0.05" {
		t.Fatalf("points %+v", ps.Points)
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	csv, _ := os.ReadFile(filepath.Join(out, "summary.csv"))
	for _, want := range []string{"| algorithm.name | local.lr |", "| fedavg         | 0.02     |", "rounds to 30%", "Synthetic(1, 1)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(printed.String(), "| scaffold") || !strings.HasPrefix(string(csv), "algorithm.name,local.lr,label,target,runs") || strings.Count(string(csv), "\n") != 5 {
		t.Errorf("printed %q\ncsv %q", printed.String(), csv)
	}
}

// TestSweepResumes: a second sweep skips complete runs, re-runs
// interrupted ones (no manifest, a stopped manifest, a corrupt or edited
// one), and ends on the same models.
func TestSweepResumes(t *testing.T) {
	out := t.TempDir()
	s := spec(t, "local.lr=0.02,0.05")
	if _, err := Run(context.Background(), s, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	names := []string{"local.lr=0.02,seed=1", "local.lr=0.05,seed=1", "local.lr=0.02,seed=2", "local.lr=0.05,seed=2"}
	want := map[string]string{}
	for _, n := range names {
		want[n] = manifest(t, filepath.Join(out, n)).FinalModelSHA256
	}
	again, err := Run(context.Background(), s, Options{Out: out})
	if err != nil || again.Count(Skipped) != 4 {
		t.Fatalf("second sweep: %s, %v; want 4 skipped", states(again), err)
	}

	os.Remove(filepath.Join(out, names[0], "manifest.json"))                                       // killed mid-run
	os.WriteFile(filepath.Join(out, names[1], "manifest.json"), []byte(`{"status": "comp`), 0o644) // corrupt
	b, _ := os.ReadFile(filepath.Join(out, names[2], "manifest.json"))                             // edited
	os.WriteFile(filepath.Join(out, names[2], "manifest.json"), []byte(strings.Replace(string(b), `"seed": 2`, `"seed": 3`, 1)), 0o644)
	os.WriteFile(filepath.Join(out, names[2], ".model.npy.tmp123"), nil, 0o644) // a temporary file of a crash
	res, err := Run(context.Background(), s, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if got := states(res); got != "ran, ran, ran, skipped (already complete)" {
		t.Errorf("states after damage: %s, want the three damaged runs re-run", got)
	}
	for _, n := range names {
		if got := manifest(t, filepath.Join(out, n)).FinalModelSHA256; got != want[n] {
			t.Errorf("%s: re-run ended on %s, want %s", n, got, want[n])
		}
	}

	// More seeds: only the new runs run.
	s.Seeds = append(s.Seeds, 3)
	res, err = Run(context.Background(), s, Options{Out: out})
	if err != nil || res.Count(Ran) != 2 || res.Count(Skipped) != 4 {
		t.Errorf("adding seed 3: %s, %v; want 2 ran and 4 skipped", states(res), err)
	}
}

func TestSweepRefusesForeignDirectories(t *testing.T) {
	out := t.TempDir()
	s := spec(t, "local.lr=0.02")
	s.Seeds = []uint64{1}
	if _, err := Run(context.Background(), s, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, FileName))

	// The same run name with another base config: refuse, touch nothing.
	other := s
	other.Base = strings.Replace(base, "rounds: 4", "rounds: 3", 1)
	if _, err := Run(context.Background(), other, Options{Out: out}); err == nil || !strings.Contains(err.Error(), "another config") {
		t.Errorf("a changed base config: err = %v, want a refusal naming another config", err)
	}
	if after, _ := os.ReadFile(filepath.Join(out, FileName)); string(after) != string(before) {
		t.Error("the refused sweep rewrote sweep.json")
	}

	// An unfinished run next to a file a run does not write: refuse.
	run := filepath.Join(out, "local.lr=0.02,seed=1")
	os.Remove(filepath.Join(run, "manifest.json"))
	os.WriteFile(filepath.Join(run, "notes.txt"), []byte("mine"), 0o644)
	if _, err := Run(context.Background(), s, Options{Out: out}); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a foreign file: err = %v, want a refusal naming notes.txt", err)
	}
	if _, err := os.Stat(filepath.Join(run, "notes.txt")); err != nil {
		t.Error("the sweep removed a file it did not write")
	}

	// A file where a run directory goes.
	os.RemoveAll(run)
	os.WriteFile(run, nil, 0o644)
	if _, err := Run(context.Background(), s, Options{Out: out}); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("a file in the way: err = %v", err)
	}
}

// TestSweepDivergence: a diverging point is a result: the other runs go
// on, the summary counts it, and a second sweep does not run it again.
func TestSweepDivergence(t *testing.T) {
	out := t.TempDir()
	s := spec(t, "local.lr=0.02,1e308")
	s.Seeds = []uint64{1}
	res, err := Run(context.Background(), s, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if got := states(res); got != "ran, diverged" {
		t.Fatalf("states %s, want ran, diverged", got)
	}
	if o := res.Outcomes[1]; o.Err == nil || !report.Diverged(o.Err.Error()) {
		t.Errorf("diverged run's error %v", o.Err)
	}
	again, err := Run(context.Background(), s, Options{Out: out})
	if err != nil || states(again) != "skipped (already complete), diverged" {
		t.Errorf("second sweep: %s, %v; want the diverged run kept, not re-run", states(again), err)
	}
	var printed strings.Builder
	if _, err := Summary(out, &printed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(printed.String(), "0 (+1 diverged)") {
		t.Errorf("summary does not count the diverged run:\n%s", printed.String())
	}
}

// cancelAfter is a Display that cancels the sweep after some rounds.
type cancelAfter struct {
	nopDisplay
	mu     sync.Mutex
	rounds int
	cancel context.CancelFunc
}

func (c *cancelAfter) Round(string, *engine.Metrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rounds--; c.rounds == 0 {
		c.cancel()
	}
}

// TestSweepInterruptedResumes: a sweep cancelled in the middle of its runs
// says so, and the same sweep run again finishes on the models of an
// uninterrupted one.
func TestSweepInterruptedResumes(t *testing.T) {
	s := spec(t, "local.lr=0.02,0.05")
	clean := t.TempDir()
	if _, err := Run(context.Background(), s, Options{Out: clean, Parallel: 2}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Run(ctx, s, Options{Out: out, Parallel: 2, Display: &cancelAfter{rounds: 5, cancel: cancel}})
	if err == nil || !strings.Contains(err.Error(), "run the same command again") || res.Count(Cancelled) == 0 {
		t.Fatalf("cancelled sweep: %v, states %v; want an interruption error and cancelled runs", err, states(res))
	}
	res, err = Run(context.Background(), s, Options{Out: out, Parallel: 2})
	if err != nil || res.Count(Ran) == 0 || res.Count(Ran)+res.Count(Skipped) != 4 {
		t.Fatalf("resumed sweep: %s, %v", states(res), err)
	}
	for _, o := range res.Outcomes {
		if got, want := manifest(t, filepath.Join(out, o.Name)).FinalModelSHA256, manifest(t, filepath.Join(clean, o.Name)).FinalModelSHA256; got != want {
			t.Errorf("%s: resumed sweep ended on %s, an uninterrupted one on %s", o.Name, got, want)
		}
	}
}

func TestSweepBadInput(t *testing.T) {
	if _, err := Run(context.Background(), spec(t), Options{}); err == nil {
		t.Error("no output directory was accepted")
	}
	if _, _, _, err := Points(t.TempDir()); err == nil || !strings.Contains(err.Error(), FileName) {
		t.Errorf("Points of a directory without sweep.json: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"spec": {"axes": [], "seeds": [1]}, "runs": [{"dir": "../x", "point": 0, "labels": []}]}`), 0o644)
	if _, err := ReadFile(dir); err == nil {
		t.Error("a sweep.json with a run outside the sweep was accepted")
	}
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"spec": `), 0o644)
	if _, err := ReadFile(dir); err == nil {
		t.Error("a truncated sweep.json was accepted")
	}
	if err := errors.New("x"); report.Diverged(err.Error()) {
		t.Error("Diverged(x)")
	}
}
