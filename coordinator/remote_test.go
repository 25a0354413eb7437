package coordinator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/experiment"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/runner"
	"github.com/fedmo/fedmo/wire/shm"
)

const small = `
seed: 5
rounds: 4
clients: 12
participation: 6
data: {name: synthetic, partition: natural}
model: {name: mlp, hidden: [8]}
local: {steps: 3, batch: 8, lr: 0.05}
eval: {every: 2}
`

// fixedDir is a Directory of given hosts; tests change it.
type fixedDir struct {
	mu    sync.Mutex
	hosts []Host
}

func (d *fixedDir) Hosts() []Host {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Host(nil), d.hosts...)
}

// serve starts a client process's Train service on 127.0.0.1:0.
func serve(t *testing.T, setup *experiment.Setup, name string) (Host, *grpc.Server) {
	t.Helper()
	return listen(t, name, trainer(t, setup, 2))
}

func parse(t *testing.T, sets ...string) *experiment.Setup {
	t.Helper()
	cfg, err := config.Parse([]byte(small), sets)
	if err != nil {
		t.Fatal(err)
	}
	s, err := experiment.Build(cfg, experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func remote(setup *experiment.Setup, dir Directory) *Remote {
	return NewRemote(RemoteConfig{
		ConfigSHA256: setup.Config.Hash(), NumParams: setup.Model.NumParams(), RoundTimeout: 20 * time.Second, Quorum: 1,
		Dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
	}, dir)
}

func hashes(res *runner.Result) string {
	var hs []string
	for _, m := range res.Rounds {
		hs = append(hs, m.ModelSHA256)
	}
	return strings.Join(hs, ",")
}

// TestRemoteEqualsSimulator runs the same config over 1 and 3 gRPC
// processes and in the simulator: every round's hash is equal.
func TestRemoteEqualsSimulator(t *testing.T) {
	for _, sets := range [][]string{
		{"algorithm.name=fedavg"},
		{"algorithm.name=scaffold", "algorithm.momentum.beta=0.3", "algorithm.momentum.vr=true", "server.momentum=0.9", "server.nesterov=true"},
	} {
		setup := parse(t, sets...)
		want := simulated(t, setup)
		for _, procs := range []int{1, 3} {
			dir := &fixedDir{}
			for i := range procs {
				h, _ := serve(t, setup, fmt.Sprintf("p%d", i))
				dir.hosts = append(dir.hosts, h)
			}
			r := remote(setup, dir)
			got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1})
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if hashes(got) != hashes(want) {
				t.Fatalf("%v over %d processes: hashes\n%s\nwant\n%s", sets, procs, hashes(got), hashes(want))
			}
			if st := r.Stats(); st.BytesIn == 0 || st.BytesOut == 0 || st.Calls == 0 {
				t.Errorf("stats %+v", st)
			}
		}
	}
}

// TestRemoteRehostsAfterAFailure stops one of three processes mid-run.
func TestRemoteRehostsAfterAFailure(t *testing.T) {
	setup := parse(t, "algorithm.name=scaffold", "rounds=6")
	want := simulated(t, setup)
	dir := &fixedDir{}
	var victim *grpc.Server
	for i := range 3 {
		h, s := serve(t, setup, fmt.Sprintf("p%d", i))
		dir.hosts = append(dir.hosts, h)
		if i == 1 {
			victim = s
		}
	}
	r := remote(setup, dir)
	defer r.Close()
	kill := observerFunc(func(round int) {
		if round == 2 {
			victim.Stop() // the directory still lists it: the RPC failure must be noticed
		}
	})
	got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1, Observer: kill})
	if err != nil {
		t.Fatal(err)
	}
	if hashes(got) != hashes(want) {
		t.Fatalf("after a failure: hashes\n%s\nwant\n%s", hashes(got), hashes(want))
	}
	if !r.dead["p1"] || r.dead["p0"] || r.dead["p2"] {
		t.Fatalf("dead processes %v, want p1 only", r.dead)
	}
}

// serveShared starts a process that opened the shared directory of d
// (for itself, as a process does: views are released per Dir).
func serveShared(t *testing.T, setup *experiment.Setup, name string, shared *shm.Dir) Host {
	t.Helper()
	d, err := shm.Open(shared.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	tr := trainer(t, setup, 2)
	if err := tr.Share(d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	h, _ := listen(t, name, tr)
	h.Capacity, h.Shared = 2, d.ID()
	return h
}

// TestRemoteSharedDirectory mixes processes that share the coordinator's
// directory with one that streams, under an in-flight limit of 1 and of
// 3: every round's hash is the simulator's.
func TestRemoteSharedDirectory(t *testing.T) {
	setup := parse(t, "algorithm.name=scaffold", "algorithm.momentum.beta=0.5")
	want := simulated(t, setup)
	d := sharedDir(t)
	for _, limit := range []int{1, 3} {
		streamer, _ := serve(t, setup, "c-stream")
		dir := &fixedDir{hosts: []Host{serveShared(t, setup, "a-shm", d), serveShared(t, setup, "b-shm", d), streamer}}
		r := sharedRemote(t, setup, dir, d, limit)
		got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if hashes(got) != hashes(want) {
			t.Fatalf("limit %d: hashes\n%s\nwant\n%s", limit, hashes(got), hashes(want))
		}
		if len(r.dead) != 0 {
			t.Fatalf("limit %d: dead processes %v", limit, r.dead)
		}
	}
}

func sharedRemote(t *testing.T, setup *experiment.Setup, dir Directory, d *shm.Dir, limit int) *Remote {
	return NewRemote(RemoteConfig{
		ConfigSHA256: setup.Config.Hash(), NumParams: setup.Model.NumParams(), RoundTimeout: 20 * time.Second, Quorum: 1,
		Dial:   []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Shared: d, MaxInFlight: limit, Logger: zaptest.NewLogger(t),
	}, dir)
}

// laterDir lists first, and also then once ready says so.
type laterDir struct {
	first, then Host
	ready       func() bool
}

func (l laterDir) Hosts() []Host {
	if l.ready() {
		return []Host{l.first, l.then}
	}
	return []Host{l.first}
}

// TestRemoteSharedDirectoryRefused: a process that claims the
// coordinator's shared directory without having opened it is refused by
// its own trainer, dropped, and its tasks run on a process that joins
// after.
func TestRemoteSharedDirectoryRefused(t *testing.T) {
	setup := parse(t, "rounds=2")
	want := simulated(t, setup)
	d := sharedDir(t)
	liar, _ := serve(t, setup, "liar")
	liar.Shared = d.ID()
	var r *Remote
	r = sharedRemote(t, setup, laterDir{first: liar, then: serveShared(t, setup, "honest", d), ready: func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.dead["liar"]
	}}, d, 0)
	defer r.Close()
	got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if hashes(got) != hashes(want) || !r.dead["liar"] || r.dead["honest"] {
		t.Fatalf("hashes equal %v, dead %v: want equal, the liar only", hashes(got) == hashes(want), r.dead)
	}
}

// TestRemoteRequeuesQueuedTasks: the one process called under an
// in-flight limit dies in the middle of a round with a task running and
// one queued; both run on the next process and the run is the
// simulator's.
func TestRemoteRequeuesQueuedTasks(t *testing.T) {
	setup := parse(t, "algorithm.name=scaffold", "rounds=4")
	want := simulated(t, setup)
	var (
		server *grpc.Server
		once   sync.Once
	)
	victim, server := serveEvil(t, setup, "p0", func(call int, m *fedmov1.TrainResponse) *fedmov1.TrainResponse {
		if call < 2 {
			return m
		}
		once.Do(func() { go server.Stop() }) // dies as its first update of round 2 goes out
		return nil
	})
	standby, _ := serve(t, setup, "p1")
	victim.Capacity, standby.Capacity = 1, 1
	r := remote(setup, &fixedDir{hosts: []Host{victim, standby}})
	r.cfg.MaxInFlight, r.cfg.Queue = 1, 1
	defer r.Close()
	rehosted := 0
	obs := observerFunc(func(int) { rehosted += r.Stats().Rehosted })
	got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if hashes(got) != hashes(want) {
		t.Fatalf("hashes\n%s\nwant\n%s", hashes(got), hashes(want))
	}
	if !r.dead["p0"] || r.dead["p1"] || rehosted != 2 {
		t.Fatalf("dead processes %v, %d tasks re-hosted; want p0 only, 2 (the running and the queued task)", r.dead, rehosted)
	}
}

// TestRemoteCallsFewestProcesses: under an in-flight limit that one
// process's workers cover, only the first process (by name) is called,
// every round, and with tasks queued at it the run is the simulator's.
func TestRemoteCallsFewestProcesses(t *testing.T) {
	setup := parse(t)
	want := simulated(t, setup)
	dir := &fixedDir{}
	for _, name := range []string{"p2", "p0", "p1"} {
		h, _ := serve(t, setup, name)
		h.Capacity = 2
		dir.hosts = append(dir.hosts, h)
	}
	r := remote(setup, dir)
	r.cfg.MaxInFlight, r.cfg.Queue = 2, 2
	defer r.Close()
	calls := 0
	obs := observerFunc(func(int) { calls += r.Stats().Calls })
	got, err := runner.Run(context.Background(), setup, r, runner.Options{Workers: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if hashes(got) != hashes(want) {
		t.Fatalf("hashes\n%s\nwant\n%s", hashes(got), hashes(want))
	}
	if rounds := len(got.Rounds); calls != rounds {
		t.Fatalf("%d calls in %d rounds, want one a round", calls, rounds)
	}
	if _, used := r.conns["p0"]; !used || len(r.conns) != 1 {
		t.Fatalf("connections to %v, want p0 only", slices.Sorted(maps.Keys(r.conns)))
	}
}
