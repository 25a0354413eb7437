package examples_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/report"
	"github.com/fedmo/fedmo/simulate"
	"github.com/fedmo/fedmo/sweep"
)

func goModCache(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// examples lists the example files under dir (relative to the repository
// root), sorted.
func examples(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// run runs cfg for two rounds and checks the model moved and stayed finite.
func run(t *testing.T, cfg config.Config, build experiment.Options) {
	t.Helper()
	res, err := simulate.Run(context.Background(), cfg, simulate.Options{Workers: 2, Build: build})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rounds) != 2 || res.FinalSHA256 == "" || res.Rounds[0].ModelSHA256 == res.Rounds[1].ModelSHA256 {
		t.Fatalf("%d rounds, final %q: want two rounds that change the model", len(res.Rounds), res.FinalSHA256)
	}
	if last := res.Rounds[1]; last.Eval == nil || !(last.Eval.TestAcc > 0) {
		t.Errorf("no test accuracy after the last round: %+v", last.Eval)
	}
}

// TestExamples parses every example config and sweep file and runs each
// config, and every value of every sweep axis, for two rounds (MNIST is
// read once for all of them). Each file's comment must hold the command
// that runs it, and the examples together must cover every algorithm,
// option, dataset and partition.
func TestExamples(t *testing.T) {
	t.Chdir("..") // the examples' paths are relative to the repository root
	build := experiment.Options{GoModCache: goModCache(t), Cache: &experiment.DataCache{}}
	var cfgs []config.Config
	for _, path := range examples(t, "examples") {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		isSweep := strings.HasPrefix(path, filepath.Join("examples", "sweeps")+string(filepath.Separator))
		t.Run(strings.TrimSuffix(strings.TrimPrefix(path, "examples/"), ".yaml"), func(t *testing.T) {
			cmd := "bin/fedmo simulate --config " + path
			if isSweep {
				cmd = "bin/fedmo sweep --spec " + path
			}
			if !strings.Contains(string(src), cmd) {
				t.Errorf("%s does not say how to run it (%q)", path, cmd)
			}
			if !isSweep {
				cfg, err := config.Load(path, []string{"rounds=2"})
				if err != nil {
					t.Fatal(err)
				}
				cfgs = append(cfgs, cfg)
				run(t, cfg, build)
				return
			}
			spec, err := sweep.LoadSpec(path)
			if err != nil {
				t.Fatal(err)
			}
			spec.Sets = append(spec.Sets, "rounds=2")
			plan, err := spec.Plan() // every run's config is valid
			if err != nil {
				t.Fatal(err)
			}
			if spec.Out == "" {
				t.Errorf("%s has no out: directory", path)
			}
			// Run every value of every axis once: point k takes value
			// min(k, len-1) of each axis, on the first seed.
			longest := 1
			for _, a := range spec.Axes {
				longest = max(longest, len(a.Values))
			}
			for k := range longest {
				for _, p := range plan[:len(spec.Points())] {
					diagonal := true
					for ai, l := range p.Labels {
						if l != spec.Axes[ai].Values[min(k, len(spec.Axes[ai].Values)-1)].Label {
							diagonal = false
						}
					}
					if diagonal {
						cfgs = append(cfgs, p.Config)
						t.Run(p.Name, func(t *testing.T) { run(t, p.Config, build) })
					}
				}
			}
		})
	}

	// Coverage: every algorithm, option, dataset and partition has an example.
	have := map[string]bool{}
	for _, c := range cfgs {
		have["algorithm "+report.AlgorithmName(c)] = true
		have["data "+c.Data.Name] = true
		have["partition "+c.Data.Partition] = true
		have["model "+c.Model.Name] = true
		if c.Algorithm.Weighting == "samples" {
			have["samples weighting"] = true
		}
	}
	want := []string{"samples weighting", "model mlp", "model softmax"}
	for _, n := range config.DataNames {
		want = append(want, "data "+n)
	}
	for _, p := range config.Partitions {
		want = append(want, "partition "+p)
	}
	for _, a := range []string{"FedAvg", "FedProx (mu=0.1)", "FedAvg + local heavy ball 0.9", "FedAvg-M (beta=0.1)", "FedAvg-M-VR (beta=0.1)",
		"SCAFFOLD", "SCAFFOLD (option I)", "SCAFFOLD-M (beta=0.1)", "SCAFFOLD-M-VR (beta=0.1)",
		"FedAvg + server heavy ball 0.9", "FedAvg + server Nesterov 0.9", "FedAvg + FedAdam", "FedAvg + FedYogi", "FedAvg + FedAdagrad"} {
		want = append(want, "algorithm "+a)
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("no example of: %s", strings.Join(missing, "; "))
	}
}
