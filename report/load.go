package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/runio"
)

// The files of a run directory (package runio) that this package reads.
const (
	configFile   = "config.yaml"
	metricsFile  = "metrics.jsonl"
	manifestFile = "manifest.json"
)

// StatusComplete is the manifest status of a run that finished every round.
const StatusComplete = "complete"

// IsRunDir reports whether dir looks like a run directory: it holds a
// metrics.jsonl or a config.yaml.
func IsRunDir(dir string) bool {
	for _, f := range []string{metricsFile, configFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// Find expands paths into run directories: a run directory stands for
// itself (so does its manifest.json or metrics.jsonl), and any other
// directory for every run directory below it, in lexical order. It is an
// error for a path to name no run.
func Find(paths ...string) ([]string, error) {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if !st.IsDir() {
			if b := filepath.Base(p); (b == manifestFile || b == metricsFile) && IsRunDir(filepath.Dir(p)) {
				add(filepath.Dir(p))
				continue
			}
			return nil, fmt.Errorf("report: %s is a file; want a run directory (with %s), a directory of runs, or a run's %s", p, metricsFile, manifestFile)
		}
		if IsRunDir(p) {
			add(filepath.Clean(p))
			continue
		}
		n := len(dirs)
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && IsRunDir(path) {
				add(path)
				return filepath.SkipDir // a run's own subdirectories (checkpoints) hold no runs
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if len(dirs) == n {
			return nil, fmt.Errorf("report: %s holds no run directories (directories with %s or %s)", p, metricsFile, configFile)
		}
	}
	return dirs, nil
}

// Load reads the run directory dir: its config.yaml, every row of its
// metrics.jsonl and, when there is one, its manifest.json (a run that is
// still going or was killed has none; its Status is then ""). Every
// problem is an error that names the file: a config that does not parse,
// a metrics row that is not JSON or out of order, a manifest that is not
// JSON.
func Load(dir string) (Run, error) {
	r := Run{Dir: dir, Label: filepath.Base(dir)}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	cfg, err := config.Parse(b, nil)
	if err != nil {
		return r, fmt.Errorf("report: %s: %w", filepath.Join(dir, configFile), err)
	}
	r.Config = &cfg
	if r.Rounds, err = readMetrics(filepath.Join(dir, metricsFile)); err != nil {
		return r, err
	}
	for _, m := range r.Rounds {
		r.Seconds += m.Seconds
	}
	mpath := filepath.Join(dir, manifestFile)
	man, err := runio.ReadManifest(mpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return r, fmt.Errorf("report: %s: not a readable manifest: %w", mpath, err)
	default:
		r.Status = man.Status
		r.FinalSHA256 = man.FinalModelSHA256
		if man.Seconds > 0 {
			r.Seconds = man.Seconds
		}
		if man.Status == StatusComplete && len(r.Rounds) != man.RoundsDone {
			return r, fmt.Errorf("report: %s: %d rows, but its manifest says %d rounds were done", filepath.Join(dir, metricsFile), len(r.Rounds), man.RoundsDone)
		}
	}
	return r, nil
}

// readMetrics reads a metrics.jsonl: rounds 1, 2, ... in order.
func readMetrics(path string) ([]engine.Metrics, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var out []engine.Metrics
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), len(b)+1)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var row runio.Row
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			if !bytes.HasSuffix(b, []byte("\n")) && line == bytes.Count(b, []byte("\n"))+1 {
				break // a last row cut short by a crash: the rows before it stand
			}
			return nil, fmt.Errorf("report: %s line %d: %w", path, line, err)
		}
		if want := len(out) + 1; row.Round != want {
			return nil, fmt.Errorf("report: %s line %d: round %d, want %d (rows are rounds 1, 2, ... in order)", path, line, row.Round, want)
		}
		m := engine.Metrics{Round: row.Round, Participants: row.Participants, Rejected: row.Rejected,
			LocalLoss: row.LocalLoss, ModelSHA256: row.ModelSHA256, Seconds: row.Seconds}
		if row.TestAcc != nil {
			m.Eval = &engine.Evaluation{TestAcc: *row.TestAcc, TrainLoss: row.TrainLoss}
			if row.TestLoss != nil {
				m.Eval.TestLoss = *row.TestLoss
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return out, nil
}

// LoadAll loads every directory; a directory that fails to load is left
// out and its error returned in skipped, so that one damaged run does not
// hide the others.
func LoadAll(dirs []string) (runs []Run, skipped []error) {
	for _, d := range dirs {
		r, err := Load(d)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		runs = append(runs, r)
	}
	return runs, skipped
}
