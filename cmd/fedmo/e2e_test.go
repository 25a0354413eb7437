package main

// End-to-end tests: the fedmo binary, real processes on 127.0.0.1 with
// ephemeral ports, real gRPC and gossip. Skipped under -short.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/runio"
)

var fedmoBin string

func TestMain(m *testing.M) {
	code := func() int {
		if !testingShort() {
			dir, err := os.MkdirTemp("", "fedmo-e2e")
			if err != nil {
				panic(err)
			}
			defer os.RemoveAll(dir)
			fedmoBin = filepath.Join(dir, "fedmo")
			if out, err := exec.Command("go", "build", "-o", fedmoBin, ".").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build fedmo: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// testingShort reads -short before flag parsing has run in TestMain.
func testingShort() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.short" || a == "-test.short=true" {
			return true
		}
	}
	return false
}

const e2eConfig = `
seed: 11
rounds: 5
clients: 20
participation: 8
data: {name: synthetic, partition: natural}
model: {name: mlp, hidden: [16]}
local: {steps: 5, batch: 10, lr: 0.05}
eval: {every: 5}
`

func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: starts real processes; skipped under -short")
	}
}

// fedmo runs the binary to completion.
func fedmo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(fedmoBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("fedmo %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// start starts the binary in the background, logging into a file.
func start(t *testing.T, logName string, args ...string) *exec.Cmd {
	t.Helper()
	dir, err := os.MkdirTemp("", "fedmo-e2e-log")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fedmoBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("--- %s:\n%s", logName, tail(string(b), 3000))
		}
		os.RemoveAll(dir)
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func manifest(t *testing.T, dir string) *runio.Manifest {
	t.Helper()
	m, err := runio.ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameRounds(t *testing.T, what string, got, want *runio.Manifest) {
	t.Helper()
	if got.Status != "complete" || got.FinalModelSHA256 != want.FinalModelSHA256 || len(got.Rounds) != len(want.Rounds) {
		t.Fatalf("%s: status %q, final %s, %d rounds; want complete, %s, %d rounds",
			what, got.Status, got.FinalModelSHA256, len(got.Rounds), want.FinalModelSHA256, len(want.Rounds))
	}
	for i := range got.Rounds {
		if got.Rounds[i].ModelSHA256 != want.Rounds[i].ModelSHA256 {
			t.Fatalf("%s: round %d hash %s, want %s", what, i+1, got.Rounds[i].ModelSHA256, want.Rounds[i].ModelSHA256)
		}
	}
}

// TestLocalEqualsSimulate: for the same config and seed, fedmo local with
// 1, 2 and 4 client processes ends on the simulator's every per-round hash.
func TestLocalEqualsSimulate(t *testing.T) {
	e2e(t)
	cfgFile := writeConfig(t, e2eConfig)
	for _, algo := range []struct {
		name string
		sets []string
	}{
		{"fedavg", []string{"algorithm.name=fedavg"}},
		{"fedavg-m", []string{"algorithm.name=fedavg", "algorithm.momentum.beta=0.2"}},
		{"scaffold", []string{"algorithm.name=scaffold"}},
		{"scaffold-m", []string{"algorithm.name=scaffold", "algorithm.momentum.beta=0.2"}},
		{"scaffold-m-vr", []string{"algorithm.name=scaffold", "algorithm.momentum.beta=0.2", "algorithm.momentum.vr=true"}},
		{"server-nesterov", []string{"server.momentum=0.9", "server.nesterov=true"}},
	} {
		t.Run(algo.name, func(t *testing.T) {
			var sets []string
			for _, s := range algo.sets {
				sets = append(sets, "--set", s)
			}
			sim := filepath.Join(t.TempDir(), "sim")
			fedmo(t, append([]string{"simulate", "--config", cfgFile, "--out", sim, "--quiet"}, sets...)...)
			want := manifest(t, sim)
			// One worker a process makes the coordinator spread each round
			// over as many processes as the machine has cores; procs = 2
			// streams the vectors over gRPC instead of shared memory.
			for _, run := range []struct {
				procs int
				flags []string
			}{{1, nil}, {2, []string{"--workers", "1", "--transport", "grpc"}}, {4, []string{"--workers", "1"}}} {
				dir := filepath.Join(t.TempDir(), fmt.Sprintf("local%d", run.procs))
				args := append([]string{"local", "--procs", fmt.Sprint(run.procs), "--config", cfgFile, "--out", dir, "--quiet"}, run.flags...)
				fedmo(t, append(args, sets...)...)
				what := fmt.Sprintf("local --procs %d %v", run.procs, run.flags)
				sameRounds(t, what, manifest(t, dir), want)
				if run.procs > 1 && runtime.NumCPU() > 1 {
					if n := trainingProcesses(t, dir); n < 2 {
						t.Errorf("%s: %d client processes trained, want at least 2", what, n)
					}
				}
			}
		})
	}
}

// trainingProcesses counts the client processes of a fedmo local run in
// dir whose log shows a Train call.
func trainingProcesses(t *testing.T, dir string) int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "procs", "client-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range logs {
		if b, _ := os.ReadFile(l); bytes.Contains(b, []byte("\ttrain\t")) {
			n++
		}
	}
	return n
}

// freePort returns a free TCP port on 127.0.0.1 (its UDP twin is almost
// always free too; memberlist binds both).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitRows waits until metrics.jsonl in dir has at least n rows.
func waitRows(t *testing.T, dir string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
		if bytes.Count(b, []byte("\n")) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d rounds after %v", dir, n, timeout)
}

func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("%s did not finish within %v", cmd.Args[1], timeout)
		return nil
	}
}

// slowConfig runs long enough (~150 rounds of ~20 ms, each busy with local
// steps most of the time) that a kill lands mid-round and a late process
// joins before the end.
const slowConfig = `
seed: 3
rounds: 150
clients: 30
participation: 12
data: {name: synthetic, partition: natural}
model: {name: mlp, hidden: [64]}
local: {steps: 60, batch: 20, lr: 0.02}
algorithm: {name: scaffold, momentum: {beta: 0.5}}
eval: {every: 50}
`

// TestClientKilledMidRound kills a client process with SIGKILL during the
// run and adds another one: the run completes on the simulator's hashes.
func TestClientKilledMidRound(t *testing.T) {
	e2e(t)
	cfgFile := writeConfig(t, slowConfig)
	sim := filepath.Join(t.TempDir(), "sim")
	fedmo(t, "simulate", "--config", cfgFile, "--out", sim, "--quiet")

	dir := filepath.Join(t.TempDir(), "run")
	gossip := freePort(t)
	coord := start(t, "coordinator.log", "coordinator", "--config", cfgFile, "--out", dir, "--listen", "127.0.0.1:0",
		"--gossip", gossip, "--profile", "local", "--wait-procs", "3")
	var clients []*exec.Cmd
	for i := range 3 {
		clients = append(clients, start(t, fmt.Sprintf("client%d.log", i), "client", "--join", gossip, "--profile", "local", "--workers", "1"))
	}
	waitRows(t, dir, 4, time.Minute)
	if err := clients[1].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitRows(t, dir, 8, time.Minute)
	late := start(t, "client3.log", "client", "--join", gossip, "--profile", "local", "--workers", "1") // joins mid-run
	if err := waitExit(t, coord, 2*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	sameRounds(t, "after a client was killed", manifest(t, dir), manifest(t, sim))
	if b, _ := os.ReadFile(coord.Stdout.(*os.File).Name()); !bytes.Contains(b, []byte("re-hosting its clients")) {
		t.Errorf("the coordinator never noticed the killed process")
	}
	if b, _ := os.ReadFile(late.Stdout.(*os.File).Name()); !bytes.Contains(b, []byte("\ttrain\t")) {
		t.Errorf("the process that joined mid-run took no work:\n%s", tail(string(b), 2000))
	}
}

// TestCoordinatorKilledAndResumed kills the coordinator with SIGKILL and
// starts it again with --resume: the run ends on the uninterrupted hashes.
func TestCoordinatorKilledAndResumed(t *testing.T) {
	e2e(t)
	cfgFile := writeConfig(t, slowConfig)
	sim := filepath.Join(t.TempDir(), "sim")
	fedmo(t, "simulate", "--config", cfgFile, "--out", sim, "--quiet")

	dir := filepath.Join(t.TempDir(), "run")
	gossip := freePort(t)
	coordArgs := []string{"coordinator", "--out", dir, "--listen", "127.0.0.1:0", "--gossip", gossip, "--profile", "local", "--wait-procs", "2"}
	coord := start(t, "coordinator.log", append(coordArgs, "--config", cfgFile)...)
	for i := range 2 {
		start(t, fmt.Sprintf("client%d.log", i), "client", "--join", gossip, "--profile", "local", "--workers", "1", "--coordinator-wait", "60s")
	}
	waitRows(t, dir, 5, time.Minute)
	if err := coord.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	coord.Wait()
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		t.Fatal("a killed coordinator wrote a manifest")
	}
	again := start(t, "coordinator2.log", append(coordArgs, "--resume")...)
	if err := waitExit(t, again, 2*time.Minute); err != nil {
		t.Fatalf("resumed coordinator: %v", err)
	}
	sameRounds(t, "after the coordinator was killed and resumed", manifest(t, dir), manifest(t, sim))
}

// TestRealClientQuorumAndReplay: client 3 is a real client with its own
// data. It is killed mid-run; the rounds that sample it close at their
// deadline with the quorum, the manifest records who took part, and
// fedmo simulate --replay reproduces the run bit for bit.
func TestRealClientQuorumAndReplay(t *testing.T) {
	e2e(t)
	dir := t.TempDir()
	base, err := config.Parse([]byte(e2eConfig), []string{"rounds=30"})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := experiment.Dataset(base, experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pooled, own := filepath.Join(dir, "pooled"), filepath.Join(dir, "own")
	if err := data.WriteNPYDir(pooled, fd.Train, fd.Test); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteNPYDir(own, fd.Train.Subset(fd.Parts[3]), fd.Test); err != nil {
		t.Fatal(err)
	}
	parts := filepath.Join(dir, "parts.json")
	if err := data.WritePartitionFile(parts, fd.Parts); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfig(t, strings.Replace(e2eConfig, "data: {name: synthetic, partition: natural}",
		fmt.Sprintf("data: {name: npy, dir: %q, partition: file, partition_file: %q}", pooled, parts), 1))
	run := filepath.Join(dir, "run")
	gossip := freePort(t)
	coord := start(t, "coordinator.log", "coordinator", "--config", cfgFile, "--set", "rounds=30", "--out", run,
		"--listen", "127.0.0.1:0", "--gossip", gossip, "--profile", "local", "--wait-procs", "2",
		"--round-timeout", "500ms", "--quorum", "0.5")
	start(t, "virtual.log", "client", "--join", gossip, "--profile", "local", "--workers", "1")
	real := start(t, "real.log", "client", "--join", gossip, "--profile", "local", "--data", own, "--id", "3")
	waitRows(t, run, 3, time.Minute)
	real.Process.Signal(syscall.SIGKILL)
	if err := waitExit(t, coord, 2*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	man := manifest(t, run)
	if man.Status != "complete" || len(man.Rounds) != 30 {
		t.Fatalf("manifest: %q, %d rounds", man.Status, len(man.Rounds))
	}
	with, without := 0, 0
	for _, r := range man.Rounds {
		sampled := slices.Contains(engine.Sample(base.Seed, r.Round-1, base.Clients, base.Participation), 3)
		took := slices.Contains(r.Participants, 3)
		switch {
		case took:
			with++
		case sampled:
			without++
		}
	}
	if with == 0 || without == 0 {
		t.Fatalf("real client 3 took part in %d rounds and was missing from %d sampled ones; want both", with, without)
	}
	replay := filepath.Join(dir, "replay")
	fedmo(t, "simulate", "--replay", filepath.Join(run, "manifest.json"), "--out", replay, "--quiet")
	sameRounds(t, "simulate --replay", manifest(t, replay), man)
	if out := fedmo(t, "verify", filepath.Join(run, "manifest.json")); !strings.Contains(out, "ok") {
		t.Errorf("fedmo verify of the distributed run:\n%s", out)
	}
}
