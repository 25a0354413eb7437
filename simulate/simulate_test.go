package simulate

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/runio"
)

// small is a fast experiment on FedProx Synthetic(1, 1): 12 clients, 5 per round.
const small = `
seed: 7
rounds: 4
clients: 12
participation: 5
data: {name: synthetic, partition: natural, synthetic: {alpha: 1, beta: 1}}
model: {name: softmax, init: zeros}
local: {steps: 5, batch: 10, lr: 0.02}
eval: {every: 2, train_loss: true}
`

func parse(t *testing.T, src string, sets ...string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(src), sets)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func run(t *testing.T, cfg config.Config, workers int, out string) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg, Options{Workers: workers, Out: out, Build: experiment.Options{GoModCache: goModCache(t)}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func hashes(res *Result) []string {
	var hs []string
	for _, m := range res.Rounds {
		hs = append(hs, m.ModelSHA256)
	}
	return hs
}

// variants covers every algorithm and server option of the simulator.
var variants = map[string][]string{
	"fedavg":          {"algorithm.name=fedavg"},
	"fedavg-samples":  {"algorithm.name=fedavg", "algorithm.weighting=samples"},
	"fedprox":         {"algorithm.name=fedavg", "algorithm.prox_mu=0.5"},
	"local-heavyball": {"algorithm.name=fedavg", "local.momentum=0.9"},
	"fedavg-m":        {"algorithm.name=fedavg", "algorithm.momentum.beta=0.2"},
	"fedavg-m-vr":     {"algorithm.name=fedavg", "algorithm.momentum.beta=0.2", "algorithm.momentum.vr=true"},
	"scaffold-II":     {"algorithm.name=scaffold"},
	"scaffold-I":      {"algorithm.name=scaffold", "algorithm.option=I"},
	"scaffold-m":      {"algorithm.name=scaffold", "algorithm.momentum.beta=0.2"},
	"scaffold-m-vr":   {"algorithm.name=scaffold", "algorithm.momentum.beta=0.2", "algorithm.momentum.vr=true"},
	"heavy-ball":      {"server.momentum=0.9"},
	"nesterov":        {"server.momentum=0.9", "server.nesterov=true", "algorithm.name=scaffold"},
	"adam":            {"server.optimizer=adam", "server.lr=0.01"},
	"yogi":            {"server.optimizer=yogi", "server.lr=0.01", "algorithm.momentum.beta=0.5"},
	"adagrad":         {"server.optimizer=adagrad", "server.lr=0.01", "algorithm.name=scaffold"},
	"full-batch":      {"local.batch=0"},
}

// TestWorkerCountDoesNotChangeTheRun is the determinism contract: every
// per-round model hash is equal for 1, 2 and 8 workers and across repeats.
func TestWorkerCountDoesNotChangeTheRun(t *testing.T) {
	for name, sets := range variants {
		t.Run(name, func(t *testing.T) {
			cfg := parse(t, small, sets...)
			want := hashes(run(t, cfg, 1, ""))
			if len(want) != cfg.Rounds {
				t.Fatalf("%d rounds reported, want %d", len(want), cfg.Rounds)
			}
			if want[0] == want[len(want)-1] {
				t.Fatalf("the model did not change over %d rounds", cfg.Rounds)
			}
			for _, w := range []int{2, 8, 1} {
				if got := hashes(run(t, cfg, w, "")); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("workers=%d: hashes %v, want %v", w, got, want)
				}
			}
		})
	}
}

// TestVariantsDiffer guards against options that silently do nothing.
func TestVariantsDiffer(t *testing.T) {
	seen := map[string]string{}
	for name, sets := range variants {
		h := run(t, parse(t, small, sets...), 2, "").FinalSHA256
		if other, ok := seen[h]; ok {
			t.Errorf("%s and %s end on the same model", name, other)
		}
		seen[h] = name
	}
}

func TestSeedChangesTheRun(t *testing.T) {
	a := run(t, parse(t, small), 2, "").FinalSHA256
	b := run(t, parse(t, small, "seed=8"), 2, "").FinalSHA256
	if a == b {
		t.Fatal("seeds 7 and 8 gave the same final model")
	}
}

func TestRunDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := parse(t, small, "algorithm.name=scaffold")
	res := run(t, cfg, 2, dir)

	back, err := config.Load(filepath.Join(dir, "config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != cfg.Hash() {
		t.Errorf("config.yaml does not reproduce the resolved config")
	}
	man, err := runio.ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if man.FinalModelSHA256 != res.FinalSHA256 || man.Status != "complete" || len(man.Rounds) != cfg.Rounds ||
		man.ConfigSHA256 != cfg.Hash() || man.Seed != cfg.Seed || man.DatasetFingerprint == "" {
		t.Errorf("manifest %+v does not describe the run (final %s)", man, res.FinalSHA256)
	}
	for i, r := range man.Rounds {
		if r.Round != i+1 || r.ModelSHA256 != res.Rounds[i].ModelSHA256 || len(r.Participants) != cfg.Participation {
			t.Errorf("manifest round %d = %+v", i+1, r)
		}
	}

	f, err := os.Open(filepath.Join(dir, "model.npy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var x []float64
	if err := npyio.Read(f, &x); err != nil {
		t.Fatal(err)
	}
	if engine.Hash(x) != res.FinalSHA256 {
		t.Errorf("model.npy hashes to %s, want %s", engine.Hash(x), res.FinalSHA256)
	}

	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != cfg.Rounds {
		t.Fatalf("metrics.jsonl has %d rows, want %d", len(lines), cfg.Rounds)
	}
	var row runio.Row
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
		t.Fatal(err)
	}
	if row.Round != 2 || row.TestAcc == nil || row.TrainLoss == nil || len(row.Participants) != cfg.Participation {
		t.Errorf("row 2 = %+v, want an evaluated round with %d participants and the training loss", row, cfg.Participation)
	}
	csv, err := os.ReadFile(filepath.Join(dir, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(csv), "\n"); n != cfg.Rounds+1 {
		t.Errorf("metrics.csv has %d lines, want a header and %d rows", n, cfg.Rounds)
	}

	if _, err := Run(context.Background(), cfg, Options{Out: dir}); err == nil || !strings.Contains(err.Error(), "already holds a run") {
		t.Errorf("a second run into %s: err = %v, want a refusal", dir, err)
	}
}

func TestDivergenceStopsWithTheRound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := parse(t, small, "server.lr=1e308", "local.lr=1", "rounds=20")
	_, err := Run(context.Background(), cfg, Options{Workers: 2, Out: dir})
	if err == nil || !strings.Contains(err.Error(), "round") || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("err = %v, want a divergence error naming the round", err)
	}
	man, merr := runio.ReadManifest(filepath.Join(dir, "manifest.json"))
	if merr != nil {
		t.Fatal(merr)
	}
	if man.Status == "complete" || man.FinalModelSHA256 != "" || man.RoundsDone != len(man.Rounds) {
		t.Errorf("manifest after divergence: %+v", man)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.npy")); err == nil {
		t.Errorf("model.npy written for a diverged run")
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, parse(t, small), Options{Workers: 2}); err == nil {
		t.Fatal("a cancelled run succeeded")
	}
}

// TestMNISTWorkers runs the demo model on real MNIST for a few rounds with
// 1 and 8 workers.
func TestMNISTWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("real MNIST: skipped under -short")
	}
	cfg := parse(t, "rounds: 3\neval: {every: 3}", "algorithm.name=scaffold", "algorithm.momentum.beta=0.1")
	a := run(t, cfg, 1, "")
	b := run(t, cfg, 8, "")
	if strings.Join(hashes(a), ",") != strings.Join(hashes(b), ",") {
		t.Fatalf("MNIST hashes differ between 1 and 8 workers: %v vs %v", hashes(a), hashes(b))
	}
	if acc := a.Rounds[2].Eval.TestAcc; acc < 0.2 {
		t.Errorf("test accuracy after 3 rounds = %v, want learning (> 0.2)", acc)
	}
}

func goModCache(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	return strings.TrimSpace(string(out))
}
