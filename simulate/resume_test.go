package simulate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/checkpoint"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/runio"
)

// TestResumeReachesTheSameModel interrupts a run after round 3, resumes it
// from its checkpoint and expects the uninterrupted run's every hash.
func TestResumeReachesTheSameModel(t *testing.T) {
	for _, algo := range [][]string{
		{"algorithm.name=scaffold", "algorithm.momentum.beta=0.3", "server.momentum=0.9"},
		{"algorithm.name=fedavg", "algorithm.momentum.beta=0.3", "algorithm.momentum.vr=true", "server.optimizer=adam", "server.lr=0.01"},
	} {
		cfg := parse(t, small, append(algo, "rounds=8")...)
		want := run(t, cfg, 2, "")

		dir := filepath.Join(t.TempDir(), "run")
		ctx, cancel := context.WithCancel(context.Background())
		stop := engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
			if m.Round == 3 {
				cancel()
			}
			return nil
		})
		_, err := Run(ctx, cfg, Options{Workers: 2, Out: dir, Checkpoint: true, Observer: stop})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: err = %v, want context.Canceled", err)
		}
		res, err := Run(context.Background(), cfg, Options{Workers: 1, Out: dir, Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.FinalSHA256 != want.FinalSHA256 {
			t.Fatalf("%v: resumed run ends on %s, want %s", algo, res.FinalSHA256, want.FinalSHA256)
		}
		man, err := runio.ReadManifest(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if man.Status != "complete" || len(man.Rounds) != 8 {
			t.Fatalf("manifest after resume: status %q, %d rounds", man.Status, len(man.Rounds))
		}
		for i, r := range man.Rounds {
			if r.ModelSHA256 != want.Rounds[i].ModelSHA256 {
				t.Errorf("round %d: hash %s, want %s", i+1, r.ModelSHA256, want.Rounds[i].ModelSHA256)
			}
		}
		b, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
		if n := strings.Count(string(b), "\n"); n != 8 {
			t.Errorf("metrics.jsonl has %d rows after resume, want 8", n)
		}
	}
}

func TestResumeRefusesAnotherConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := parse(t, small)
	ctx, cancel := context.WithCancel(context.Background())
	stop := engine.ObserverFunc(func(*engine.Metrics, []float64) error { cancel(); return nil })
	if _, err := Run(ctx, cfg, Options{Out: dir, Checkpoint: true, Observer: stop}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	other := parse(t, small, "local.lr=0.5")
	if _, err := Run(context.Background(), other, Options{Out: dir, Resume: true}); err == nil || !strings.Contains(err.Error(), "config") {
		t.Fatalf("resume with another config: err = %v, want a refusal naming the config", err)
	}
	if _, err := Run(context.Background(), cfg, Options{Out: t.TempDir(), Resume: true}); err == nil {
		t.Fatal("resume without a checkpoint succeeded")
	}
}

func TestResumeRefusesACompleteRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := parse(t, small)
	if _, err := Run(context.Background(), cfg, Options{Out: dir, Checkpoint: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, Options{Out: dir, Resume: true}); err == nil || !strings.Contains(err.Error(), "already complete") {
		t.Fatalf("resume of a complete run: err = %v", err)
	}
	if man, err := runio.ReadManifest(filepath.Join(dir, "manifest.json")); err != nil || man.Status != "complete" {
		t.Fatalf("the complete run's manifest was touched: %v %v", man, err)
	}
}

// TestReplayFollowsTheManifest replays a run's realised participants.
func TestReplayFollowsTheManifest(t *testing.T) {
	cfg := parse(t, small)
	want := run(t, cfg, 2, "")
	var parts [][]int
	for _, m := range want.Rounds {
		parts = append(parts, m.Participants)
	}
	got, err := Run(context.Background(), cfg, Options{Workers: 2, Replay: parts})
	if err != nil {
		t.Fatal(err)
	}
	if got.FinalSHA256 != want.FinalSHA256 {
		t.Fatal("replaying the sampled participants changed the run")
	}
	parts[1] = parts[1][:2] // as if only two clients had reported in round 2
	fewer, err := Run(context.Background(), cfg, Options{Workers: 2, Replay: parts})
	if err != nil {
		t.Fatal(err)
	}
	if fewer.FinalSHA256 == want.FinalSHA256 || len(fewer.Rounds[1].Participants) != 2 {
		t.Fatal("replay did not restrict round 2 to its two participants")
	}
}

// TestCheckpointOfTheLastRound expects the last round's checkpoint, written
// in the background, on disk when Run returns.
func TestCheckpointOfTheLastRound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := parse(t, small, "algorithm.name=scaffold")
	res, err := Run(context.Background(), cfg, Options{Out: dir, Checkpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Load(filepath.Join(dir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Server.Round != cfg.Rounds || engine.Hash(st.Server.X) != res.FinalSHA256 {
		t.Fatalf("checkpoint of round %d, model %.12s; want round %d, model %.12s", st.Server.Round, engine.Hash(st.Server.X), cfg.Rounds, res.FinalSHA256)
	}
}

// TestCheckpointFailureFailsTheRun makes the last round's checkpoint fail
// (a directory where its ledger file goes): the error, which only waiting
// for the last write can see, fails the run and is in its manifest.
func TestCheckpointFailureFailsTheRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := parse(t, small, "algorithm.name=scaffold")
	ledger := filepath.Join(dir, "checkpoints", fmt.Sprintf("ci-%d.bin", cfg.Rounds))
	block := engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		if m.Round == 1 {
			return os.Mkdir(ledger, 0o755)
		}
		return nil
	})
	_, err := Run(context.Background(), cfg, Options{Out: dir, Checkpoint: true, Observer: block})
	if err == nil || !strings.Contains(err.Error(), ledger) {
		t.Fatalf("run whose last checkpoint fails: err = %v, want an error naming %s", err, ledger)
	}
	man, err := runio.ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(man.Status, ledger) {
		t.Errorf("manifest status %q, want the checkpoint error", man.Status)
	}
}
