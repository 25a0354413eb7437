// Package checkpoint saves and restores the state of a run after a round,
// so that a run killed at any moment continues with --resume to the same
// final model, bit for bit, as a run that was never interrupted.
//
// # Layout
//
// A checkpoint is a directory:
//
//	state.gob          the server state without the SCAFFOLD ledger, the round
//	                   entries of the manifest so far and, per client, which
//	                   ledger file holds its c_i; SHA-256 trailer
//	ci-<client>-<round>.f64   client c_i as written after that round
//	                   (little-endian float64, SHA-256 trailer)
//
// Only the control variates that changed are written each round (S of N),
// not the whole ledger. A round's ledger files are written and synced
// before state.gob is replaced (atomically), and files that the new state
// no longer names are removed after it: a crash at any point leaves a
// consistent checkpoint, the old one or the new one.
package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/atomicfile"
)

// Version is the format version written into state.gob.
const Version = 1

// State is what a checkpoint holds.
type State struct {
	Version      int
	ConfigSHA256 string // the run's config fingerprint: resume refuses another config
	Server       *algorithms.Server
	// Extra is the caller's own record of the finished rounds (e.g. the
	// manifest's round entries), stored verbatim.
	Extra []byte
	// LedgerRound[i] is the round after which client i's c_i file was
	// written; -1 means c_i is zero (never reported).
	LedgerRound []int
}

// Writer writes checkpoints of one run into a directory.
type Writer struct {
	dir     string
	written []int // LedgerRound of the last checkpoint
}

// NewWriter writes checkpoints into dir (created if needed). st is the
// checkpoint the run resumed from, or nil for a new run.
func NewWriter(dir string, st *State) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	w := &Writer{dir: dir}
	if st != nil {
		w.written = append([]int(nil), st.LedgerRound...)
	}
	return w, nil
}

// Save writes the state after the server's last round. changed lists the
// clients whose c_i changed in that round.
func (w *Writer) Save(configSHA string, s *algorithms.Server, changed []int, extra []byte) error {
	round := s.Round
	if s.CI != nil && w.written == nil {
		w.written = make([]int, len(s.CI))
		for i := range w.written {
			w.written[i] = -1
		}
	}
	old := append([]int(nil), w.written...)
	for _, id := range changed {
		if s.CI == nil || s.CI[id] == nil {
			continue
		}
		if err := writeVector(filepath.Join(w.dir, ledgerName(id, round)), s.CI[id]); err != nil {
			return err
		}
		w.written[id] = round
	}
	// The state without the ledger, which lives in its own files.
	server := *s
	server.CI = nil
	st := State{Version: Version, ConfigSHA256: configSHA, Server: &server, Extra: extra, LedgerRound: w.written}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return fmt.Errorf("checkpoint: encode: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	if err := atomicfile.Write(filepath.Join(w.dir, "state.gob"), buf.Bytes()); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for id, r := range old { // superseded ledger files
		if r >= 0 && r != w.written[id] {
			os.Remove(filepath.Join(w.dir, ledgerName(id, r)))
		}
	}
	return nil
}

// Load reads the checkpoint in dir. It returns an error that wraps
// os.ErrNotExist when there is none.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.gob"))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(b) < sha256.Size {
		return nil, fmt.Errorf("checkpoint: %s: truncated", filepath.Join(dir, "state.gob"))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, fmt.Errorf("checkpoint: %s: checksum mismatch (corrupted)", filepath.Join(dir, "state.gob"))
	}
	var st State
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&st); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", filepath.Join(dir, "state.gob"), err)
	}
	if st.Version != Version {
		return nil, fmt.Errorf("checkpoint: format version %d, this fedmo reads %d", st.Version, Version)
	}
	s := st.Server
	if s == nil || len(s.X) == 0 {
		return nil, fmt.Errorf("checkpoint: %s holds no model", dir)
	}
	n := len(s.X)
	// gob sends nil and empty slices alike: give back nil for "absent".
	for _, v := range []*[]float64{&s.XPrev, &s.G, &s.C, &s.M, &s.V} {
		if len(*v) == 0 {
			*v = nil
		} else if len(*v) != n {
			return nil, fmt.Errorf("checkpoint: a state vector has %d elements, the model %d", len(*v), n)
		}
	}
	if st.LedgerRound != nil {
		if s.C == nil || len(st.LedgerRound) != s.Config.Clients {
			return nil, fmt.Errorf("checkpoint: ledger of %d clients for a run of %d", len(st.LedgerRound), s.Config.Clients)
		}
		s.CI = make([][]float64, len(st.LedgerRound))
		for id, r := range st.LedgerRound {
			if r < 0 {
				continue
			}
			if s.CI[id], err = readVector(filepath.Join(dir, ledgerName(id, r)), n); err != nil {
				return nil, err
			}
		}
	} else if s.C != nil {
		s.CI = make([][]float64, s.Config.Clients)
	}
	return &st, nil
}

// Exists reports whether dir holds a checkpoint.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "state.gob"))
	return err == nil
}

func ledgerName(id, round int) string {
	return "ci-" + strconv.Itoa(id) + "-" + strconv.Itoa(round) + ".f64"
}

// writeVector writes v as little-endian float64 with a SHA-256 trailer.
func writeVector(path string, v []float64) error {
	err := atomicfile.WriteFunc(path, func(w io.Writer) error {
		h := sha256.New()
		mw := io.MultiWriter(w, h)
		var b [8]byte
		for _, x := range v {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			if _, err := mw.Write(b[:]); err != nil {
				return err
			}
		}
		_, err := w.Write(h.Sum(nil))
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func readVector(path string, n int) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(b) != 8*n+sha256.Size {
		return nil, fmt.Errorf("checkpoint: %s has %d bytes, want %d", path, len(b), 8*n+sha256.Size)
	}
	if s := sha256.Sum256(b[:8*n]); !bytes.Equal(s[:], b[8*n:]) {
		return nil, fmt.Errorf("checkpoint: %s: checksum mismatch (corrupted)", path)
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

// IsNotExist reports whether err says there is no checkpoint.
func IsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
