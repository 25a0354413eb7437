package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/runio"
)

// sweepBase is a fast experiment on FedProx Synthetic(1, 1).
const sweepBase = `
seed: 9
rounds: 6
clients: 12
participation: 4
data: {name: synthetic, partition: natural}
model: {name: softmax, init: zeros}
local: {steps: 4, batch: 10, lr: 0.02}
eval: {every: 2, train_loss: true}
`

func readManifest(t *testing.T, dir string) *runio.Manifest {
	t.Helper()
	m, err := runio.CheckManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSweepCommand is the acceptance path: fedmo sweep over a grid and
// seeds, then a run of the sweep equals fedmo simulate of its config.yaml,
// a second sweep skips everything, and plot, report and verify read it.
func TestSweepCommand(t *testing.T) {
	ctx := context.Background()
	base := writeConfig(t, sweepBase)
	out := filepath.Join(t.TempDir(), "sweep1")
	args := []string{"sweep", "--config", base, "--grid", "algorithm.name=fedavg,scaffold", "--grid", "local.lr=0.02,0.05",
		"--seeds", "1-2", "--out", out, "--quiet", "--target", "0.3"}
	if err := run(ctx, args); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sweep.json", "summary.md", "summary.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("the sweep did not write %s", f)
		}
	}
	one := filepath.Join(out, "algorithm.name=scaffold,local.lr=0.05,seed=2")
	alone := filepath.Join(t.TempDir(), "alone")
	if err := run(ctx, []string{"simulate", "--config", filepath.Join(one, "config.yaml"), "--out", alone, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	got, want := readManifest(t, one), readManifest(t, alone)
	if got.FinalModelSHA256 != want.FinalModelSHA256 || got.Seed != 2 || len(got.Rounds) != 6 {
		t.Fatalf("sweep run: seed %d, %d rounds, final %s; fedmo simulate of its config: %s", got.Seed, len(got.Rounds), got.FinalModelSHA256, want.FinalModelSHA256)
	}
	for i := range got.Rounds {
		if got.Rounds[i].ModelSHA256 != want.Rounds[i].ModelSHA256 {
			t.Fatalf("round %d: the sweep's hash differs from fedmo simulate's", i+1)
		}
	}
	stamp, _ := os.Stat(filepath.Join(one, "manifest.json"))
	if err := run(ctx, args); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Stat(filepath.Join(one, "manifest.json")); !again.ModTime().Equal(stamp.ModTime()) {
		t.Error("the second sweep rewrote a complete run")
	}

	fig := filepath.Join(t.TempDir(), "fig.svg")
	if err := run(ctx, []string{"plot", out, "-o", fig}); err != nil {
		t.Fatal(err)
	}
	svg, _ := os.ReadFile(fig)
	for _, want := range []string{"<svg", "test accuracy", "global training loss", "algorithm.name=scaffold, local.lr=0.05", "mean of 2 seeds"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the figure lacks %q", want)
		}
	}
	// Several run directories, flags after them; runs grouped by config.
	png := filepath.Join(t.TempDir(), "two.png")
	if err := run(ctx, []string{"plot", filepath.Join(out, "algorithm.name=fedavg,local.lr=0.02,seed=1"), one, "--title", "two runs", "-o", png}); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"report", out}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, want := range []string{"fedmo sweep --config", "](curves.png)", "`algorithm.name`: `fedavg`, `scaffold`", "rounds to 30%"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "curves.png")); err != nil {
		t.Error("report did not write curves.png")
	}
	if err := run(ctx, []string{"verify", filepath.Join(one, "manifest.json"), "--quiet"}); err != nil {
		t.Errorf("verify of a sweep run: %v", err)
	}
}

func TestSweepSpecFileAndNamedAxes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(sweepBase), 0o644)
	spec := filepath.Join(dir, "s.yaml")
	os.WriteFile(spec, []byte(`
config: base.yaml
set: [rounds=4]
grid:
  method:
    FedAvg: {algorithm.name: fedavg}
    FedAvg-M-VR: {algorithm.name: fedavg, algorithm.momentum.beta: 0.5, algorithm.momentum.vr: true}
seeds: 3
target: 0.2
out: `+filepath.Join(dir, "out")+`
`), 0o644)
	if err := run(context.Background(), []string{"sweep", "--spec", spec, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, filepath.Join(dir, "out", "method=FedAvg-M-VR,seed=3"))
	if m.Seed != 3 || len(m.Rounds) != 4 {
		t.Errorf("named-axis run: seed %d, %d rounds; want seed 3 and rounds=4 from set", m.Seed, len(m.Rounds))
	}
	md, _ := os.ReadFile(filepath.Join(dir, "out", "summary.md"))
	if !strings.Contains(string(md), "| FedAvg-M-VR |") {
		t.Errorf("summary.md does not name the point FedAvg-M-VR:\n%s", md)
	}
	// Without --seeds or seeds:, the base config's seed.
	os.WriteFile(spec, []byte("config: base.yaml\nset: [rounds=2]\n"), 0o644)
	out := filepath.Join(dir, "one")
	if err := run(context.Background(), []string{"sweep", "--spec", spec, "--out", out, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "seed=9", "manifest.json")); err != nil {
		t.Errorf("no run of the base config's seed 9: %v", err)
	}
}

func TestAnalysisUsageAndBadInput(t *testing.T) {
	ctx := context.Background()
	base := writeConfig(t, sweepBase)
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"sweep", "--config", base, "--seeds", "1-2"},
		{"sweep", "--config", base, "--out", tmp, "--seeds", "2-1"},
		{"sweep", "--config", base, "--out", tmp, "--grid", "local.lr"},
		{"sweep", "--config", base, "--out", tmp, "--grid", "local.lr=0.1,fast"},
		{"sweep", "--config", base, "--out", tmp, "--grid", "seed=1,2"},
		{"sweep", "--config", filepath.Join(tmp, "missing.yaml"), "--out", tmp},
		{"sweep", "--spec", filepath.Join(tmp, "missing.yaml")},
		{"sweep", "--config", base, "--out", tmp, "--parallel", "-1"},
		{"plot", "-o", filepath.Join(tmp, "x.png")},
		{"plot", tmp},
		{"plot", tmp, "-o", filepath.Join(tmp, "x.jpg")},
		{"plot", filepath.Join(tmp, "nowhere"), "-o", filepath.Join(tmp, "x.png")},
		{"report"},
		{"report", base},
		{"report", tmp, tmp},
		{"verify"},
		{"verify", "a", "b"},
	} {
		if err := run(ctx, args); !errors.Is(err, errUsage) {
			t.Errorf("fedmo %s: err = %v, want a usage error", strings.Join(args, " "), err)
		}
	}

	// A directory of runs without metrics, and a run with a corrupt
	// manifest: errors that say so, not panics.
	empty := filepath.Join(tmp, "runs")
	os.MkdirAll(filepath.Join(empty, "r1"), 0o755)
	os.WriteFile(filepath.Join(empty, "r1", "config.yaml"), []byte("rounds: 3\n"), 0o644)
	if err := run(ctx, []string{"plot", empty, "-o", filepath.Join(tmp, "x.png")}); err == nil || !strings.Contains(err.Error(), "no readable runs") {
		t.Errorf("plot of runs without metrics: %v", err)
	}
	out := filepath.Join(tmp, "sweep")
	if err := run(ctx, []string{"sweep", "--config", base, "--grid", "local.lr=0.02,0.05", "--set", "rounds=2", "--out", out, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(out, "local.lr=0.02,seed=9", "manifest.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	if err := run(ctx, []string{"plot", out, "-o", filepath.Join(tmp, "y.png")}); err != nil {
		t.Errorf("plot with one corrupt run: %v; want the other run drawn", err)
	}
	if err := run(ctx, []string{"report", out}); err != nil {
		t.Errorf("report with one corrupt run: %v", err)
	}
	if md, _ := os.ReadFile(filepath.Join(out, "report.md")); !strings.Contains(string(md), "Left out") {
		t.Error("report.md does not list the corrupt run")
	}
	if err := run(ctx, []string{"verify", bad}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("verify of a corrupt manifest: %v, want a failure", err)
	}
	// The sweep itself re-runs the run whose manifest is corrupt.
	if err := run(ctx, []string{"sweep", "--config", base, "--grid", "local.lr=0.02,0.05", "--set", "rounds=2", "--out", out, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	readManifest(t, filepath.Dir(bad))
}

// TestVerifyCatches: an edited manifest, a manifest whose hashes were
// edited and re-sealed (another run's record), an edited config.yaml and
// an edited model.npy all fail, naming what differs.
func TestVerifyCatches(t *testing.T) {
	ctx := context.Background()
	base := writeConfig(t, sweepBase)
	orig := filepath.Join(t.TempDir(), "run")
	if err := run(ctx, []string{"simulate", "--config", base, "--out", orig, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"verify", orig, "--quiet"}); err != nil {
		t.Fatalf("verify of an intact run: %v", err)
	}
	copyRun := func() string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "run")
		os.MkdirAll(dir, 0o755)
		for _, f := range []string{"config.yaml", "manifest.json", "model.npy", "metrics.jsonl", "metrics.csv"} {
			b, err := os.ReadFile(filepath.Join(orig, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		return dir
	}
	editManifest := func(dir string, edit func(*runio.Manifest), reseal bool) {
		t.Helper()
		m := readManifest(t, dir)
		edit(m)
		if reseal {
			m.ManifestSHA256 = runio.Seal(*m)
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
	}
	for _, tc := range []struct {
		name string
		harm func(dir string)
		want string
	}{
		{"edited by hand", func(d string) {
			editManifest(d, func(m *runio.Manifest) { m.Rounds[2].ModelSHA256 = strings.Repeat("0", 64) }, false)
		}, "manifest_sha256"},
		{"round 3 of another run", func(d string) {
			editManifest(d, func(m *runio.Manifest) { m.Rounds[2].ModelSHA256 = strings.Repeat("0", 64) }, true)
		}, "round 3: the model hash differs"},
		{"other participants", func(d string) { editManifest(d, func(m *runio.Manifest) { m.Rounds[1].Participants[0]++ }, true) }, "round 2: the model hash differs"},
		{"final hash", func(d string) {
			editManifest(d, func(m *runio.Manifest) { m.FinalModelSHA256 = strings.Repeat("1", 64) }, true)
		}, "final model hash"},
		{"config.yaml", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "config.yaml"))
			os.WriteFile(filepath.Join(d, "config.yaml"), []byte(strings.Replace(string(b), "lr: 0.02", "lr: 0.03", 1)), 0o644)
		}, "config.yaml was changed"},
		{"model.npy", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "model.npy"))
			b[len(b)-1] ^= 1
			os.WriteFile(filepath.Join(d, "model.npy"), b, 0o644)
		}, "model.npy was changed"},
		{"model.npy not NumPy", func(d string) { os.WriteFile(filepath.Join(d, "model.npy"), []byte("nope"), 0o644) }, "model.npy"},
		{"unfinished", func(d string) { editManifest(d, func(m *runio.Manifest) { m.Status = "context canceled" }, true) }, "did not finish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyRun()
			tc.harm(dir)
			err := run(ctx, []string{"verify", filepath.Join(dir, "manifest.json"), "--quiet"})
			if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a failure naming %q", err, tc.want)
			}
		})
	}
}
