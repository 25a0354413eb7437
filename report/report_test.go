package report

import (
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/runio"
)

// fakeRun writes a run directory with runio, as a finished run writes it:
// the config (base plus sets), one row per accuracy (every round
// evaluated), and a manifest with the given stop reason (nil: complete).
func fakeRun(t *testing.T, dir string, accs []float64, stop error, sets ...string) {
	t.Helper()
	cfg, err := config.Parse([]byte("rounds: 4\nclients: 10\nparticipation: 5\neval: {every: 1}\n"), sets)
	if err != nil {
		t.Fatal(err)
	}
	w, err := runio.Create(dir, cfg.YAML(), runio.Manifest{Seed: cfg.Seed, ConfigSHA256: cfg.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{1, 2}
	for i, a := range accs {
		tl := 2 - a
		m := &engine.Metrics{Round: i + 1, Participants: []int{1, 3}, LocalLoss: 2 - a, ModelSHA256: engine.Hash(x),
			Eval: &engine.Evaluation{TestLoss: 1 - a/2, TestAcc: a, TrainLoss: &tl}, Seconds: 0.5}
		if err := w.Round(m, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(x, float64(len(accs)), stop); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	fakeRun(t, dir, []float64{0.5, 0.7, 0.9, 0.8}, nil, "seed=3", "local.lr=0.1")
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusComplete || r.Config == nil || r.Config.Seed != 3 || r.Config.Local.LR != 0.1 || len(r.Rounds) != 4 || r.FinalSHA256 == "" {
		t.Fatalf("Load = %+v, want the complete 4-round run of seed 3, lr 0.1", r)
	}
	if m := r.Rounds[2]; m.Eval == nil || m.Eval.TestAcc != 0.9 || m.LocalLoss != 2-0.9 || m.Eval.TrainLoss == nil || *m.Eval.TrainLoss != 2-0.9 {
		t.Errorf("round 3 = %+v, want accuracy 0.9, local and training loss 1.1", m)
	}
	if r.Seconds != 4 {
		t.Errorf("seconds %v, want the manifest's 4", r.Seconds)
	}
	s := Summarize(r, 0.85)
	if s.FinalAcc != 0.8 || s.BestAcc != 0.9 || s.RoundsToTarget != 3 {
		t.Errorf("Summarize = %+v, want final 0.8, best 0.9, target reached at round 3", s)
	}
}

func TestLoadDamagedRuns(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(dir string) error
		want string // in the error; "" = loads
	}{
		{"no config", func(d string) error { return os.Remove(filepath.Join(d, "config.yaml")) }, "config.yaml"},
		{"bad config", func(d string) error {
			return os.WriteFile(filepath.Join(d, "config.yaml"), []byte("rounds: many\n"), 0o644)
		}, "config.yaml"},
		{"no metrics", func(d string) error { return os.Remove(filepath.Join(d, "metrics.jsonl")) }, "metrics.jsonl"},
		{"bad row", func(d string) error { return appendTo(filepath.Join(d, "metrics.jsonl"), "{oops}\n") }, "metrics.jsonl line 5"},
		{"rows out of order", func(d string) error {
			return appendTo(filepath.Join(d, "metrics.jsonl"), `{"round": 9, "local_loss": 1}`+"\n")
		}, "round 9, want 5"},
		{"corrupt manifest", func(d string) error {
			return os.WriteFile(filepath.Join(d, "manifest.json"), []byte(`{"status": "comp`), 0o644)
		}, "manifest.json"},
		{"no manifest (a run still going)", func(d string) error { return os.Remove(filepath.Join(d, "manifest.json")) }, ""},
		{"a last row cut short", func(d string) error {
			os.Remove(filepath.Join(d, "manifest.json"))
			return appendTo(filepath.Join(d, "metrics.jsonl"), `{"round": 5, "local_lo`)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			fakeRun(t, dir, []float64{0.5, 0.6, 0.7, 0.8}, nil)
			if err := tc.harm(dir); err != nil {
				t.Fatal(err)
			}
			r, err := Load(dir)
			if tc.want == "" {
				if err != nil || r.Status != "" || len(r.Rounds) != 4 {
					t.Errorf("Load = %d rounds, status %q, err %v; want the 4 rounds, no status, no error", len(r.Rounds), r.Status, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	sweep := filepath.Join(root, "sweep")
	for _, name := range []string{"b,seed=1", "a,seed=2", "a,seed=1"} {
		fakeRun(t, filepath.Join(sweep, name), []float64{0.5}, nil)
	}
	os.MkdirAll(filepath.Join(sweep, "a,seed=1", "checkpoints", "inner"), 0o755)
	os.WriteFile(filepath.Join(sweep, "summary.md"), []byte("x"), 0o644)
	got, err := Find(sweep)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a,seed=1", "a,seed=2", "b,seed=1"}
	if len(got) != 3 {
		t.Fatalf("Find = %v, want %v", got, want)
	}
	for i := range want {
		if filepath.Base(got[i]) != want[i] {
			t.Errorf("Find[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	one, err := Find(filepath.Join(sweep, "b,seed=1", "manifest.json"), filepath.Join(sweep, "b,seed=1"))
	if err != nil || len(one) != 1 {
		t.Errorf("Find(run's manifest, the run) = %v, %v; want the one run once", one, err)
	}
	empty := filepath.Join(root, "empty")
	os.MkdirAll(empty, 0o755)
	for _, bad := range []string{empty, filepath.Join(root, "missing"), filepath.Join(sweep, "summary.md")} {
		if _, err := Find(bad); err == nil || !strings.Contains(err.Error(), filepath.Base(bad)) {
			t.Errorf("Find(%s): err = %v, want one naming it", bad, err)
		}
	}
}

func loadAll(t *testing.T, root string) []Run {
	t.Helper()
	dirs, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	runs, skipped := LoadAll(dirs)
	if len(skipped) > 0 {
		t.Fatal(skipped)
	}
	return runs
}

func TestByConfig(t *testing.T) {
	root := t.TempDir()
	for _, algo := range []string{"scaffold", "fedavg"} {
		for _, steps := range []string{"10", "5"} {
			for _, seed := range []string{"2", "1"} {
				fakeRun(t, filepath.Join(root, algo+steps+seed), []float64{0.5, 0.6}, nil,
					"algorithm.name="+algo, "local.steps="+steps, "seed="+seed)
			}
		}
	}
	ps := ByConfig(loadAll(t, root))
	if strings.Join(ps.Keys, " ") != "local.steps algorithm.name" {
		t.Fatalf("keys %v, want [local.steps algorithm.name] (config order, seed left out)", ps.Keys)
	}
	var labels []string
	for _, p := range ps.Points {
		labels = append(labels, p.Label)
		if len(p.Runs) != 2 || p.Runs[0].Config.Seed != 1 || p.Runs[1].Config.Seed != 2 {
			t.Errorf("point %s: %d runs, want seeds 1 and 2 in order", p.Label, len(p.Runs))
		}
	}
	if got, want := strings.Join(labels, " | "), "FedAvg, local.steps=5 | SCAFFOLD, local.steps=5 | FedAvg, local.steps=10 | SCAFFOLD, local.steps=10"; got != want {
		t.Errorf("labels %q,\nwant %q (numbers sorted numerically)", got, want)
	}
	if strings.Contains(ps.Common, "K=") || strings.Contains(ps.Common, "FedAvg") || !strings.Contains(ps.Common, "N=10") {
		t.Errorf("common %q: want N=10 but neither K nor the algorithm, which differ", ps.Common)
	}
}

func TestAlgorithmName(t *testing.T) {
	for sets, want := range map[string]string{
		"":                            "FedAvg",
		"algorithm.prox_mu=1":         "FedProx (mu=1)",
		"algorithm.momentum.beta=0.1": "FedAvg-M (beta=0.1)",
		"algorithm.momentum.beta=0.1,algorithm.momentum.vr=true": "FedAvg-M-VR (beta=0.1)",
		"algorithm.name=scaffold":                                "SCAFFOLD",
		"algorithm.name=scaffold,algorithm.option=I":             "SCAFFOLD (option I)",
		"algorithm.name=scaffold,algorithm.momentum.beta=0.2":    "SCAFFOLD-M (beta=0.2)",
		"server.momentum=0.9":                                    "FedAvg + server heavy ball 0.9",
		"server.momentum=0.9,server.nesterov=true":               "FedAvg + server Nesterov 0.9",
		"server.optimizer=yogi":                                  "FedAvg + FedYogi",
		"local.momentum=0.9":                                     "FedAvg + local heavy ball 0.9",
		"algorithm.weighting=samples":                            "FedAvg (n_i weights)",
	} {
		var s []string
		if sets != "" {
			s = strings.Split(sets, ",")
		}
		c, err := config.Parse(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AlgorithmName(c); got != want {
			t.Errorf("%s: %q, want %q", sets, got, want)
		}
	}
}

func TestSummaries(t *testing.T) {
	root := t.TempDir()
	fakeRun(t, filepath.Join(root, "s1"), []float64{0.5, 0.9, 0.8}, nil, "seed=1")
	fakeRun(t, filepath.Join(root, "s2"), []float64{0.6, 0.7, 0.9}, nil, "seed=2")
	fakeRun(t, filepath.Join(root, "s3"), []float64{0.5, 0.6, 0.7}, nil, "seed=3")
	fakeRun(t, filepath.Join(root, "s4"), []float64{0.5}, errors.New("engine: round 2: the global model diverged"), "seed=4")
	ps := ByConfig(loadAll(t, root))
	if len(ps.Points) != 1 {
		t.Fatalf("%d points, want 1", len(ps.Points))
	}
	sums := ps.Summarize(0.85)
	s := sums[0]
	if s.Runs != 4 || s.Complete != 3 || len(s.Failed) != 1 || s.Reached != 2 {
		t.Fatalf("summary %+v, want 4 runs, 3 complete, 1 failed, 2 reaching 0.85", s)
	}
	near := func(what string, got, want float64) {
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("final mean", s.FinalAcc.Mean, 0.8)
	near("final std", s.FinalAcc.Std, 0.1) // sample std of 0.8, 0.9, 0.7
	near("rounds mean", s.RoundsToTarget.Mean, 2.5)
	near("rounds std", s.RoundsToTarget.Std, math.Sqrt(0.5))
	near("seconds", s.Seconds.Mean, 3)

	var md strings.Builder
	if err := WriteMarkdown(&md, ps.Keys, 0.85, sums); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rounds to 85%", "3 (+1 diverged)", "0.8000 ± 0.1000", "2.5 ± 0.7 (2/3)", "| runs of"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown table lacks %q:\n%s", want, md.String())
		}
	}
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	for _, l := range lines[1:] {
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("markdown rows are not padded to one width:\n%s", md.String())
			break
		}
	}

	var c strings.Builder
	if err := WriteCSV(&c, ps.Keys, 0.85, sums); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(c.String())).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("CSV %q: %v, want a header and one row", c.String(), err)
	}
	row := map[string]string{}
	for i, h := range recs[0] {
		row[h] = recs[1][i]
	}
	if fm, _ := strconv.ParseFloat(row["final_acc_mean"], 64); math.Abs(fm-0.8) > 1e-12 || row["reached"] != "2" || row["failed"] != "1" || row["target"] != "0.85" {
		t.Errorf("CSV row %v", row)
	}
}

func TestStat(t *testing.T) {
	if s := NewStat(nil); s.N != 0 || !math.IsNaN(s.Mean) || !math.IsNaN(s.Std) {
		t.Errorf("NewStat(nil) = %+v, want NaN mean and std", s)
	}
	if s := NewStat([]float64{2}); s.Mean != 2 || !math.IsNaN(s.Std) {
		t.Errorf("NewStat([2]) = %+v, want mean 2 and no std", s)
	}
	if got := pm(NewStat([]float64{1, 3}), 2); got != "2.00 ± 1.41" {
		t.Errorf("pm = %q", got)
	}
}

func TestPlotAndReport(t *testing.T) {
	root := t.TempDir()
	if d := os.Getenv("REPORT_TEST_DIR"); d != "" {
		root = d
	}
	for _, lr := range []string{"0.1", "0.01"} {
		for _, seed := range []string{"1", "2", "3"} {
			fakeRun(t, filepath.Join(root, "lr="+lr+",seed="+seed), []float64{0.3, 0.5, 0.6 + 0.01*float64(seed[0]-'0'), 0.9}, nil,
				"local.lr="+lr, "seed="+seed)
		}
	}
	fakeRun(t, filepath.Join(root, "lr=0.1,seed=4"), []float64{0.3}, errors.New("engine: round 2: the local training loss diverged (NaN)"), "local.lr=0.1", "seed=4")
	os.MkdirAll(filepath.Join(root, "broken"), 0o755)
	os.WriteFile(filepath.Join(root, "broken", "config.yaml"), []byte("rounds: [\n"), 0o644)

	dirs, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	runs, skipped := LoadAll(dirs)
	if len(runs) != 7 || len(skipped) != 1 {
		t.Fatalf("%d runs and %d skipped, want 7 and the broken one", len(runs), len(skipped))
	}
	ps := ByConfig(runs)
	png := filepath.Join(root, "fig.png")
	if err := PlotPoints(png, ps); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(png); !strings.HasPrefix(string(b), "\x89PNG") {
		t.Error("no PNG written")
	}
	files, err := WriteReport(root, ps, Document{Title: "lr", Target: 0.85, Skipped: skipped})
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(root, "report.md"))
	for _, want := range []string{"# lr", "](curves.png)", "[lr=0.1,seed=4](lr=0.1,seed=4/)", "diverged", "`local.lr`", "broken", "```yaml"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if len(files) != 2 || filepath.Base(files[0]) != "curves.png" {
		t.Errorf("wrote %v, want curves.png and report.md", files)
	}

	// No rounds at all: an error, not a panic or an empty figure.
	empty := filepath.Join(t.TempDir(), "r")
	fakeRun(t, empty, nil, errors.New("engine: round 1: the global model diverged"))
	r, err := Load(empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := PlotPoints(filepath.Join(t.TempDir(), "x.png"), ByConfig([]Run{r})); err == nil {
		t.Error("a plot of a run without rounds succeeded")
	}
}
