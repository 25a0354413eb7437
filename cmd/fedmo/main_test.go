package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/runio"
)

const exp = `
seed: 3
rounds: 3
clients: 6
participation: 3
data: {name: synthetic, partition: natural}
model: {name: softmax}
local: {steps: 2, batch: 8, lr: 0.05}
algorithm: {name: scaffold, momentum: {beta: 0.5}}
eval: {every: 1}
`

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "exp.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrors(t *testing.T) {
	cfg := writeConfig(t, exp)
	bad := writeConfig(t, "rounds: many")
	for _, args := range [][]string{
		nil,
		{"train"},
		{"simulate", "--config", cfg},
		{"simulate", "--config", bad, "--out", t.TempDir()},
		{"simulate", "--config", cfg, "--out", t.TempDir(), "--set", "algorithm.name=fedsgd"},
		{"simulate", "--config", cfg, "--out", t.TempDir(), "extra"},
		{"partition", "--config", cfg},
		{"demo", "--config", cfg},
	} {
		if err := run(context.Background(), args); !errors.Is(err, errUsage) {
			t.Errorf("fedmo %s: err = %v, want a usage error (exit 2)", strings.Join(args, " "), err)
		}
	}
}

func TestSimulateAndPartition(t *testing.T) {
	cfg := writeConfig(t, exp)
	out := filepath.Join(t.TempDir(), "run")
	if err := run(context.Background(), []string{"simulate", "--config", cfg, "--out", out, "--quiet", "--set", "rounds=2"}); err != nil {
		t.Fatal(err)
	}
	man, err := runio.ReadManifest(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if man.Status != "complete" || len(man.Rounds) != 2 || man.FinalModelSHA256 == "" || man.FedmoVersion == "" {
		t.Errorf("manifest %+v, want a complete 2-round run (--set rounds=2)", man)
	}
	// Writing into a finished run is refused and leaves it intact.
	if err := run(context.Background(), []string{"simulate", "--config", cfg, "--out", out, "--quiet"}); err == nil {
		t.Error("a second run into the same directory was accepted")
	}
	if again, _ := runio.ReadManifest(filepath.Join(out, "manifest.json")); again.FinalModelSHA256 != man.FinalModelSHA256 {
		t.Error("the refused run changed the first run's manifest")
	}

	parts := filepath.Join(t.TempDir(), "parts.json")
	if err := run(context.Background(), []string{"partition", "--config", cfg, "--out", parts, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(parts)
	if err != nil || !strings.HasPrefix(string(b), "[[") || strings.Count(string(b), "[")-1 != 6 {
		t.Errorf("partition file %q (err %v), want 6 index lists", b, err)
	}
}
