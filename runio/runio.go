// Package runio writes a run directory:
//
//	config.yaml     the resolved configuration
//	metrics.jsonl   one JSON object per round
//	metrics.csv     the same rows as CSV
//	manifest.json   seed, config hash, fedmo version, dataset fingerprint,
//	                the model's SHA-256 after every round, the final hash
//	model.npy       the final global model (NumPy float64)
//
// Metrics rows are written as each round ends, so an interrupted or diverged
// run keeps every row it finished. The manifest and the model are written
// atomically (temporary file, fsync, rename). A directory that already holds
// a finished run is never overwritten.
package runio

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fedmo/fedmo/atomicfile"
	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/engine"
)

// Manifest is the record of a run that `fedmo verify` checks.
type Manifest struct {
	FedmoVersion       string       `json:"fedmo_version"`
	Seed               uint64       `json:"seed"`
	ConfigSHA256       string       `json:"config_sha256"`
	DatasetFingerprint string       `json:"dataset_fingerprint"`
	NumParams          int          `json:"num_params"`
	Workers            int          `json:"workers"`
	Status             string       `json:"status"` // "complete", or why the run stopped
	RoundsDone         int          `json:"rounds_done"`
	Rounds             []RoundEntry `json:"rounds"`
	FinalModelSHA256   string       `json:"final_model_sha256,omitempty"`
	Seconds            float64      `json:"seconds"`
	// ManifestSHA256 is the self-check: Seal of the manifest with this
	// field empty. Finish writes it; CheckManifest verifies it.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
}

// RoundEntry is one round of the manifest.
type RoundEntry struct {
	Round        int    `json:"round"`
	Participants []int  `json:"participants"`
	ModelSHA256  string `json:"model_sha256"`
}

// Writer writes one run directory. It is an engine.Observer.
type Writer struct {
	Dir      string
	Manifest Manifest

	jsonl, csv *os.File
	jw, cw     *bufio.Writer
}

// Create makes the run directory and writes config.yaml. It refuses a
// directory that already holds a run.
func Create(dir string, configYAML []byte, m Manifest) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runio: %w", err)
	}
	for _, f := range []string{"manifest.json", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("runio: %s already holds a run (%s); choose another output directory or remove it", dir, f)
		}
	}
	if err := atomicfile.Write(filepath.Join(dir, "config.yaml"), configYAML); err != nil {
		return nil, err
	}
	w := &Writer{Dir: dir, Manifest: m}
	var err error
	if w.jsonl, err = os.Create(filepath.Join(dir, "metrics.jsonl")); err != nil {
		return nil, fmt.Errorf("runio: %w", err)
	}
	if w.csv, err = os.Create(filepath.Join(dir, "metrics.csv")); err != nil {
		w.jsonl.Close()
		return nil, fmt.Errorf("runio: %w", err)
	}
	w.jw, w.cw = bufio.NewWriter(w.jsonl), bufio.NewWriter(w.csv)
	w.cw.WriteString("round,participants,local_loss,test_loss,test_acc,train_loss,seconds,model_sha256\n")
	return w, nil
}

// Row is one line of metrics.jsonl.
type Row struct {
	Round        int                `json:"round"`
	Participants []int              `json:"participants"`
	LocalLoss    float64            `json:"local_loss"`
	TestLoss     *float64           `json:"test_loss,omitempty"`
	TestAcc      *float64           `json:"test_acc,omitempty"`
	TrainLoss    *float64           `json:"train_loss,omitempty"`
	Seconds      float64            `json:"seconds"`
	ModelSHA256  string             `json:"model_sha256"`
	Rejected     []engine.Rejection `json:"rejected,omitempty"`
}

// NewRow turns engine metrics into a row.
func NewRow(m *engine.Metrics) Row {
	r := Row{Round: m.Round, Participants: m.Participants, LocalLoss: m.LocalLoss,
		Seconds: m.Seconds, ModelSHA256: m.ModelSHA256, Rejected: m.Rejected}
	if m.Eval != nil {
		r.TestLoss, r.TestAcc, r.TrainLoss = &m.Eval.TestLoss, &m.Eval.TestAcc, m.Eval.TrainLoss
	}
	return r
}

// Round implements engine.Observer: it appends the round's rows.
func (w *Writer) Round(m *engine.Metrics, _ []float64) error {
	row := NewRow(m)
	b, err := json.Marshal(row)
	if err != nil {
		return fmt.Errorf("runio: %w", err)
	}
	w.jw.Write(append(b, '\n'))
	ids := make([]string, len(row.Participants))
	for i, id := range row.Participants {
		ids[i] = strconv.Itoa(id)
	}
	fmt.Fprintf(w.cw, "%d,%s,%s,%s,%s,%s,%.4f,%s\n", row.Round, strings.Join(ids, " "), num(&row.LocalLoss),
		num(row.TestLoss), num(row.TestAcc), num(row.TrainLoss), row.Seconds, row.ModelSHA256)
	w.Manifest.Rounds = append(w.Manifest.Rounds, RoundEntry{Round: m.Round, Participants: m.Participants, ModelSHA256: m.ModelSHA256})
	w.Manifest.RoundsDone = m.Round
	if err := w.jw.Flush(); err != nil {
		return fmt.Errorf("runio: metrics.jsonl: %w", err)
	}
	if err := w.cw.Flush(); err != nil {
		return fmt.Errorf("runio: metrics.csv: %w", err)
	}
	return nil
}

func num(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// Finish closes the metrics files and writes the manifest. If the run ended
// with runErr the manifest says why and no model.npy is written; otherwise
// model.npy holds x and the manifest its hash.
func (w *Writer) Finish(x []float64, seconds float64, runErr error) error {
	errs := []error{w.jsonl.Close(), w.csv.Close()}
	w.Manifest.Seconds = seconds
	w.Manifest.Status = "complete"
	if runErr != nil {
		w.Manifest.Status = runErr.Error()
	} else {
		w.Manifest.FinalModelSHA256 = engine.Hash(x)
		errs = append(errs, data.WriteNPYFloat64(filepath.Join(w.Dir, "model.npy"), x, []int{len(x)}))
	}
	w.Manifest.ManifestSHA256 = Seal(w.Manifest)
	b, err := json.MarshalIndent(w.Manifest, "", "  ")
	if err != nil {
		return fmt.Errorf("runio: %w", err)
	}
	errs = append(errs, atomicfile.Write(filepath.Join(w.Dir, "manifest.json"), append(b, '\n')))
	return errors.Join(errs...)
}

// ReadManifest reads a manifest.json.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runio: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("runio: %s: %w", path, err)
	}
	return &m, nil
}

// Resume reopens the run directory dir of an interrupted run at the end of
// round rounds: the metrics rows after it (written before the crash, but
// after the checkpoint) are dropped, and m (whose Rounds the checkpoint
// kept) becomes the manifest to finish.
func Resume(dir string, rounds int, m Manifest) (*Writer, error) {
	w := &Writer{Dir: dir, Manifest: m}
	for _, name := range []string{"metrics.jsonl", "metrics.csv"} {
		header := 0
		if name == "metrics.csv" {
			header = 1
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("runio: resume: %w", err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		if keep := rounds + header; len(lines) > keep {
			lines = lines[:keep]
		}
		if err := atomicfile.Write(path, []byte(strings.Join(lines, ""))); err != nil {
			return nil, fmt.Errorf("runio: resume: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("runio: resume: %w", err)
		}
		if name == "metrics.csv" {
			w.csv, w.cw = f, bufio.NewWriter(f)
		} else {
			w.jsonl, w.jw = f, bufio.NewWriter(f)
		}
	}
	os.Remove(filepath.Join(dir, "manifest.json")) // the interrupted run's, if any
	return w, nil
}
