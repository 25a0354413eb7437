package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/fedmo/fedmo/atomicfile"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/report"
	"github.com/fedmo/fedmo/runio"
	"github.com/fedmo/fedmo/simulate"
)

// FileName is the sweep's record in its directory: the spec and the runs.
const FileName = "sweep.json"

// File is the content of sweep.json.
type File struct {
	Command string    `json:"command,omitempty"` // the command line that ran the sweep last
	Spec    Spec      `json:"spec"`
	Runs    []FileRun `json:"runs"`
}

// FileRun is one run in sweep.json.
type FileRun struct {
	Dir          string   `json:"dir"` // relative to the sweep directory
	Point        int      `json:"point"`
	Labels       []string `json:"labels"`
	Seed         uint64   `json:"seed"`
	ConfigSHA256 string   `json:"config_sha256"`
}

// Options are how a sweep runs, not what it computes.
type Options struct {
	Out      string // the sweep directory
	Parallel int    // runs at a time; 0 = GOMAXPROCS
	// Workers is each run's goroutines for local updates and evaluation;
	// 0 = 1. The results do not depend on it.
	Workers int
	Version string // fedmo version for the manifests
	// Build is passed to every run; without a Build.Cache, Run makes one
	// so that the runs share the datasets they read from files.
	Build   experiment.Options
	Display Display     // progress; nil shows nothing
	Logger  *zap.Logger // nil = no logging
	Command string      // the command line, recorded in sweep.json
}

// State is what became of one run.
type State int

// The states of a run after Run.
const (
	Skipped   State = iota // complete before the sweep started
	Ran                    // ran to the end now
	Diverged               // stopped because training diverged (now or before): a result, not retried
	Failed                 // stopped for another reason (I/O, ...)
	Cancelled              // not run, or stopped, because the sweep was interrupted
)

// String says what became of the run.
func (s State) String() string {
	return [...]string{"skipped (already complete)", "ran", "diverged", "failed", "cancelled"}[s]
}

// Outcome is one run's state after Run.
type Outcome struct {
	Planned
	State State
	Err   error // why it diverged or failed
}

// Result is what Run did.
type Result struct {
	Spec     Spec
	Outcomes []Outcome // in plan order
}

// Count returns how many runs ended in state st.
func (r *Result) Count(st State) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.State == st {
			n++
		}
	}
	return n
}

// Run runs every run of the sweep that is not complete yet into
// opts.Out/<run name>, opts.Parallel at a time, and writes sweep.json. A
// run directory that holds a complete run of the same config is skipped,
// as is one that diverged (it would diverge again); one that holds an
// interrupted run (no manifest, a manifest that says it stopped for
// another reason, or one that fails its self-check) is removed and run
// again; one that holds a run of another config is an error, and so is a
// directory with files a run does not write: Run never deletes results it
// cannot reproduce.
//
// A run that diverges or fails does not stop the others. When ctx is
// cancelled, Run stops starting runs, lets the running ones stop, and
// returns ctx's error with the result so far; running the same sweep again
// resumes it.
func Run(ctx context.Context, spec Spec, opts Options) (*Result, error) {
	plan, err := spec.Plan()
	if err != nil {
		return nil, err
	}
	if opts.Out == "" {
		return nil, errors.New("sweep: no output directory")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	workers := max(opts.Workers, 1)
	if opts.Build.Cache == nil { // every run of a sweep reads the same data once
		opts.Build.Cache = &experiment.DataCache{}
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	res := &Result{Spec: spec, Outcomes: make([]Outcome, len(plan))}
	states := make([]dirState, len(plan))
	for i, p := range plan { // look at everything before changing anything
		res.Outcomes[i] = Outcome{Planned: p, State: Cancelled}
		if states[i], err = inspect(filepath.Join(opts.Out, p.Name), p.Config); err != nil {
			return nil, err
		}
	}
	if err := writeFile(opts.Out, opts.Command, spec, plan); err != nil {
		return nil, err
	}
	var todo []int
	for i, st := range states {
		switch {
		case st.complete:
			res.Outcomes[i].State = Skipped
		case st.diverged != "":
			res.Outcomes[i].State, res.Outcomes[i].Err = Diverged, errors.New(st.diverged)
		default:
			if st.stale != "" {
				log.Warn("sweep: re-running an incomplete run", zap.String("run", plan[i].Name), zap.String("why", st.stale))
				if err := removeRunDir(filepath.Join(opts.Out, plan[i].Name)); err != nil {
					return nil, err
				}
			}
			todo = append(todo, i)
		}
	}
	disp := opts.Display
	if disp == nil {
		disp = nopDisplay{}
	}
	rounds := 0
	for _, i := range todo {
		rounds += plan[i].Config.Rounds
	}
	disp.Start(len(plan), len(plan)-len(todo), len(todo), rounds)
	defer disp.Close()

	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				res.Outcomes[i] = runOne(ctx, plan[i], opts, workers, disp)
			}
		}()
	}
dispatch:
	for _, i := range todo {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("sweep: interrupted with %d of %d runs done; run the same command again to resume", len(plan)-res.Count(Cancelled), len(plan))
	}
	return res, nil
}

// runOne runs one planned run into its directory.
func runOne(ctx context.Context, p Planned, opts Options, workers int, disp Display) Outcome {
	o := Outcome{Planned: p}
	if ctx.Err() != nil {
		o.State = Cancelled
		return o
	}
	disp.RunStarted(p.Name, p.Config.Rounds)
	obs := engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		disp.Round(p.Name, m)
		return nil
	})
	res, err := simulate.Run(ctx, p.Config, simulate.Options{Workers: workers, Out: filepath.Join(opts.Out, p.Name),
		Version: opts.Version, Build: opts.Build, Observer: obs})
	switch {
	case err == nil:
		o.State = Ran
	case ctx.Err() != nil:
		o.State, o.Err = Cancelled, err
	case report.Diverged(err.Error()):
		o.State, o.Err = Diverged, err
	default:
		o.State, o.Err = Failed, err
	}
	var acc *float64
	if res != nil && len(res.Rounds) > 0 {
		if last := res.Rounds[len(res.Rounds)-1]; last.Eval != nil {
			acc = &last.Eval.TestAcc
		}
	}
	disp.RunFinished(p.Name, o.State, acc, o.Err)
	return o
}

// dirState is what a run directory holds.
type dirState struct {
	complete bool   // a complete run of the wanted config
	diverged string // a diverged run of the wanted config: its status
	stale    string // an interrupted run to remove: why ("" = nothing there)
}

// inspect looks at a run directory before the sweep runs it.
func inspect(dir string, want config.Config) (dirState, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return dirState{}, nil
	}
	if err != nil {
		return dirState{}, fmt.Errorf("sweep: %w", err)
	}
	if !st.IsDir() {
		return dirState{}, fmt.Errorf("sweep: %s is a file, where the sweep keeps a run directory; move it away", dir)
	}
	mpath := filepath.Join(dir, "manifest.json")
	m, err := runio.CheckManifest(mpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dirState{stale: "no manifest.json (the run was interrupted)"}, nil
	case err != nil:
		return dirState{stale: err.Error()}, nil
	case m.ConfigSHA256 != want.Hash():
		return dirState{}, fmt.Errorf("sweep: %s holds a run of another config (config_sha256 %.12s..., this sweep's is %.12s...): the base config or the overrides changed since it ran; use another --out, or remove the directory to re-run it",
			dir, m.ConfigSHA256, want.Hash())
	case m.Status == report.StatusComplete:
		return dirState{complete: true}, nil
	case report.Diverged(m.Status):
		return dirState{diverged: m.Status}, nil
	}
	return dirState{stale: "the run stopped: " + m.Status}, nil
}

// runFiles are the names a run directory may hold (package runio, the
// checkpoints, and atomicfile's temporary files, which start with ".").
var runFiles = []string{"config.yaml", "metrics.jsonl", "metrics.csv", "manifest.json", "model.npy", "checkpoints"}

// removeRunDir removes an interrupted run's directory, after checking that
// it holds nothing a run does not write.
func removeRunDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		known := strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp")
		for _, f := range runFiles {
			known = known || n == f
		}
		if !known {
			return fmt.Errorf("sweep: %s holds an unfinished run and %s, which a run does not write; remove the directory yourself to run it again", dir, n)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

// writeFile writes sweep.json.
func writeFile(out, command string, spec Spec, plan []Planned) error {
	f := File{Command: command, Spec: spec}
	for _, p := range plan {
		f.Runs = append(f.Runs, FileRun{Dir: p.Name, Point: p.Point, Labels: p.Labels, Seed: p.Seed, ConfigSHA256: p.Config.Hash()})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return atomicfile.Write(filepath.Join(out, FileName), append(b, '\n'))
}

// ReadFile reads dir/sweep.json.
func ReadFile(dir string) (*File, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("sweep: %s: %w", path, err)
	}
	pts := f.Spec.Points()
	for _, r := range f.Runs {
		if r.Point < 0 || r.Point >= len(pts) || len(r.Labels) != len(f.Spec.Axes) || r.Dir == "" || filepath.IsAbs(r.Dir) || strings.Contains(r.Dir, "..") {
			return nil, fmt.Errorf("sweep: %s: run %q does not fit the sweep's grid (edited by hand?)", path, r.Dir)
		}
	}
	return &f, nil
}

// IsSweepDir reports whether dir holds a sweep.json.
func IsSweepDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, FileName))
	return err == nil
}
