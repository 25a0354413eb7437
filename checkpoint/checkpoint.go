// Package checkpoint saves and restores the state of a run after a round,
// so that a run killed at any moment continues with --resume to the same
// final model, bit for bit, as a run that was never interrupted.
//
// # Layout
//
// A checkpoint is a directory:
//
//	state.bin        a header (gob: the server's configuration and round,
//	                 the caller's extra record, which ledger file holds
//	                 each client's c_i) and the server's vectors (x,
//	                 x^{r-1}, g, c, m, v) as little-endian float64
//	ci-<round>.bin   the control variates that changed in that round:
//	                 their client ids and values
//
// Every file ends with the CRC-32C of its content (format 3; format 2
// ended with a SHA-256, which cost the coordinator 0.7 ms a round). Only the control
// variates that changed are written each round (S of N), in one file.
//
// # Writing in the background
//
// Writer.Save copies the state and returns; a goroutine encodes, hashes,
// writes and syncs the files while the next round runs. One checkpoint is
// written at a time: Save waits for the previous one first, so the files
// of one round are complete before those of the next are begun. Within a
// checkpoint, the round's ledger file is written and synced before
// state.bin is replaced (atomically: write, fsync, rename), and ledger
// files that no client's latest c_i is in any more are removed after it.
// A crash at any point therefore leaves a consistent checkpoint: the one
// being written, or the one before it, at most a round older than the
// last round that Save was given. Writer.Flush waits for the checkpoint in
// flight and reports a write that failed.
package checkpoint

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/atomicfile"
	"github.com/fedmo/fedmo/internal/le"
)

// Version is the format version written into state.bin.
const Version = 3

// State is what a checkpoint holds.
type State struct {
	Version      int
	ConfigSHA256 string // the run's config fingerprint: resume refuses another config
	Server       *algorithms.Server
	// Extra is the caller's own record of the finished rounds (e.g. the
	// manifest's round entries), stored verbatim.
	Extra []byte
	// LedgerRound[i] is the round whose ledger file holds client i's c_i;
	// -1 means c_i is zero (never reported).
	LedgerRound []int
}

// header is state.bin's gob part: State without the vectors.
type header struct {
	Version      int
	ConfigSHA256 string
	Config       algorithms.ServerConfig
	Round        int
	Extra        []byte
	LedgerRound  []int
	NumParams    int
	Present      [6]bool // X, XPrev, G, C, M, V
}

// Writer writes checkpoints of one run into a directory, in the background:
// Save copies the state and returns, one goroutine writes the files, and
// Flush waits for them. A Writer is used by one goroutine at a time.
type Writer struct {
	dir     string
	written []int      // LedgerRound of the last checkpoint saved
	snap    snapshot   // the checkpoint being written; reused round after round
	busy    bool       // a write of snap is in flight
	done    chan error // the result of the write in flight
	err     error      // the first write that failed
}

// snapshot is a copy of everything one checkpoint writes, so that the
// server may move on while the files are written.
type snapshot struct {
	h     header       // Extra and LedgerRound are the snapshot's own copies
	vecs  [6][]float64 // X, XPrev, G, C, M, V (empty where absent)
	ids   []int        // the clients whose c_i goes into the round's ledger file
	ci    [][]float64  // their c_i
	stale []int        // rounds whose ledger files no client needs after this checkpoint
}

// NewWriter writes checkpoints into dir (created if needed). st is the
// checkpoint the run resumed from, or nil for a new run.
func NewWriter(dir string, st *State) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	w := &Writer{dir: dir, done: make(chan error, 1)}
	if st != nil {
		w.written = append([]int(nil), st.LedgerRound...)
	}
	return w, nil
}

func vectors(s *algorithms.Server) [6]*[]float64 {
	return [6]*[]float64{&s.X, &s.XPrev, &s.G, &s.C, &s.M, &s.V}
}

// Save checkpoints the state after the server's last round. changed lists
// the clients whose c_i changed in that round. Save first waits for the
// previous checkpoint and returns its error if it failed; otherwise it
// copies s and extra, starts writing them in the background and returns
// nil. Nothing of its arguments is used after it returns.
func (w *Writer) Save(configSHA string, s *algorithms.Server, changed []int, extra []byte) error {
	if err := w.Flush(); err != nil {
		return err
	}
	sn := &w.snap
	sn.ids = sn.ids[:0]
	for _, id := range changed {
		if s.CI != nil && s.CI[id] != nil {
			sn.ids = append(sn.ids, id)
		}
	}
	sn.stale = w.record(s, sn.ids, sn.stale)
	sn.take(configSHA, s, extra, w.written)
	w.busy = true
	go func() { w.done <- w.write(sn) }()
	return nil
}

// Flush waits for the checkpoint being written, if any. It returns the
// error of the write that failed, if one did: the files then no longer
// match what the Writer has recorded, so every later Save and Flush
// returns that error too.
func (w *Writer) Flush() error {
	if w.busy {
		w.busy = false
		w.err = <-w.done
	}
	return w.err
}

// record notes that ids' c_i are in the ledger file of s's round now, and
// returns in stale (reused) the rounds whose ledger files no client needs
// any more.
func (w *Writer) record(s *algorithms.Server, ids, stale []int) []int {
	if s.CI != nil && w.written == nil {
		w.written = make([]int, len(s.CI))
		for i := range w.written {
			w.written[i] = -1
		}
	}
	stale = stale[:0]
	for _, id := range ids {
		if r := w.written[id]; r >= 0 && !slices.Contains(stale, r) {
			stale = append(stale, r)
		}
		w.written[id] = s.Round
	}
	return slices.DeleteFunc(stale, func(r int) bool { return slices.Contains(w.written, r) })
}

// take copies the checkpoint of s into sn's buffers: the header, the
// vectors and the c_i of sn.ids.
func (sn *snapshot) take(configSHA string, s *algorithms.Server, extra []byte, ledger []int) {
	sn.h = header{Version: Version, ConfigSHA256: configSHA, Config: s.Config, Round: s.Round,
		Extra: append(sn.h.Extra[:0], extra...), LedgerRound: append(sn.h.LedgerRound[:0], ledger...), NumParams: len(s.X)}
	for i, v := range vectors(s) {
		sn.h.Present[i] = *v != nil
		sn.vecs[i] = append(sn.vecs[i][:0], *v...)
	}
	sn.ci = slices.Grow(sn.ci[:0], len(sn.ids))[:len(sn.ids)]
	for k, id := range sn.ids {
		sn.ci[k] = append(sn.ci[k][:0], s.CI[id]...)
	}
}

// write writes sn's files in crash-safe order: the round's ledger file,
// then state.bin, then the removal of the stale ledger files.
func (w *Writer) write(sn *snapshot) error {
	if len(sn.ids) > 0 {
		err := writeSummed(filepath.Join(w.dir, ledgerName(sn.h.Round)), func(bw *bufio.Writer) error {
			binary.Write(bw, binary.LittleEndian, int64(len(sn.ids)))
			for k, id := range sn.ids {
				binary.Write(bw, binary.LittleEndian, int64(id))
				le.Write(bw, sn.ci[k])
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	err := writeSummed(filepath.Join(w.dir, "state.bin"), func(bw *bufio.Writer) error {
		if err := gob.NewEncoder(bw).Encode(&sn.h); err != nil {
			return err
		}
		for _, v := range sn.vecs {
			le.Write(bw, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range sn.stale {
		os.Remove(filepath.Join(w.dir, ledgerName(r)))
	}
	return nil
}

// Load reads the checkpoint in dir. It returns an error that wraps
// os.ErrNotExist when there is none.
func Load(dir string) (*State, error) {
	path := filepath.Join(dir, "state.bin")
	body, err := readSummed(path)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(body)
	var h header
	if err := gob.NewDecoder(r).Decode(&h); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if h.Version != Version {
		return nil, fmt.Errorf("checkpoint: format version %d, this fedmo reads %d", h.Version, Version)
	}
	n := h.NumParams
	s := &algorithms.Server{Config: h.Config, Round: h.Round}
	for i, v := range vectors(s) {
		if !h.Present[i] {
			continue
		}
		if *v, err = readFloats(r, n); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
		}
	}
	if s.X == nil {
		return nil, fmt.Errorf("checkpoint: %s holds no model", path)
	}
	st := &State{Version: h.Version, ConfigSHA256: h.ConfigSHA256, Server: s, Extra: h.Extra, LedgerRound: h.LedgerRound}
	if s.C == nil {
		return st, nil
	}
	s.CI = make([][]float64, s.Config.Clients)
	if h.LedgerRound == nil {
		return st, nil
	}
	if len(h.LedgerRound) != s.Config.Clients {
		return nil, fmt.Errorf("checkpoint: ledger of %d clients for a run of %d", len(h.LedgerRound), s.Config.Clients)
	}
	files := map[int]map[int][]float64{}
	for id, round := range h.LedgerRound {
		if round < 0 {
			continue
		}
		if files[round] == nil {
			if files[round], err = readLedger(filepath.Join(dir, ledgerName(round)), n); err != nil {
				return nil, err
			}
		}
		if s.CI[id] = files[round][id]; s.CI[id] == nil {
			return nil, fmt.Errorf("checkpoint: %s lacks client %d's control variate", ledgerName(round), id)
		}
	}
	return st, nil
}

func readLedger(path string, n int) (map[int][]float64, error) {
	body, err := readSummed(path)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(body)
	var k int64
	if err := binary.Read(r, binary.LittleEndian, &k); err != nil || k < 0 || k > int64(len(body)) {
		return nil, fmt.Errorf("checkpoint: %s: bad count", path)
	}
	out := map[int][]float64{}
	for range k {
		var id int64
		if err := binary.Read(r, binary.LittleEndian, &id); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
		}
		v, err := readFloats(r, n)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
		}
		out[int(id)] = v
	}
	return out, nil
}

// Exists reports whether dir holds a checkpoint.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "state.bin"))
	return err == nil
}

// IsNotExist reports whether err says there is no checkpoint.
func IsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

func ledgerName(round int) string { return "ci-" + strconv.Itoa(round) + ".bin" }

// castagnoli is the CRC-32C table of the files' trailers.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeSummed writes what fill writes, then its CRC-32C (4 bytes,
// little-endian), atomically. The checksum catches torn and corrupted
// files at a twentieth of SHA-256's cost (format 2 used SHA-256), which
// the coordinator pays every round.
func writeSummed(path string, fill func(*bufio.Writer) error) error {
	err := atomicfile.WriteFunc(path, func(w io.Writer) error {
		h := crc32.New(castagnoli)
		bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
		if err := fill(bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		_, err := w.Write(binary.LittleEndian.AppendUint32(nil, h.Sum32()))
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// readSummed reads a file written by writeSummed and checks its CRC-32C.
func readSummed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("checkpoint: %s: truncated (corrupted)", path)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		if n := len(b) - sha256.Size; n >= 0 && sha256.Sum256(b[:n]) == [sha256.Size]byte(b[n:]) {
			return nil, fmt.Errorf("checkpoint: %s was written by a fedmo of checkpoint format 2 (before 2026-12-04's second session); this fedmo reads format %d", path, Version)
		}
		return nil, fmt.Errorf("checkpoint: %s: checksum mismatch (corrupted)", path)
	}
	return body, nil
}

func readFloats(r *bytes.Reader, n int) ([]float64, error) {
	if r.Len() < 8*n {
		return nil, errors.New("truncated vector")
	}
	b := make([]byte, 8*n)
	r.Read(b)
	v := make([]float64, n)
	le.Decode(v, b)
	return v, nil
}
