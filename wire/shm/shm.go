// Package shm moves float64 vectors between processes on one host through
// files in a directory they share, normally on tmpfs (/dev/shm), instead
// of streaming their bytes through gRPC.
//
// A sender writes a vector into its own file with File.Put and sends the
// VectorRef it returns (file name, byte offset, length, CRC-32C) over the
// Train stream where the vector's chunks would have gone; the receiver
// reads it with Dir.Read into a slice of the length it expects. Each copy
// is one pwrite or pread of the vector's bytes: no protobuf framing, no
// HTTP/2, no socket. `fedmo local` uses this for its client processes
// (measured in BENCHMARKS.md, "Distributed runs").
//
// # Which processes share a directory
//
// The first process that opens a directory writes a random id into it
// (Open); every later one reads the same id. A process advertises the id
// in its gossip metadata and the coordinator names it in each TrainHeader,
// so vectors go through the directory only between processes that opened
// the very same one: the same path on another machine has another id, and
// such a process gets its vectors streamed.
//
// # What is checked
//
// Read accepts a reference only to a plain file name in the directory
// (no path, not the id file), of the expected kind and length, whose bytes
// lie inside the file and match the CRC-32C. Anything else is an error
// that wraps wire.ErrCorrupt, so the coordinator retries the task as it
// does a corrupt stream.
//
// # Views
//
// The coordinator does not copy the updates out: View gives the engine a
// slice of the client's file to aggregate from (measured in BENCHMARKS.md:
// the copy, missing the caches while the clients compute, was the largest
// cost left). It does not check the CRC-32C either, which would read the
// bytes once more; that a view holds what the client wrote rests on the
// protocol instead: a client writes each vector of a round at a new offset
// of its own file and starts over only in a later round, after the
// coordinator has aggregated and released its views; the reference comes
// on the authenticated Train stream after the write; and the bounds, kind
// and length are checked. A view of a file that a process shrinks behind
// it would fault: the directory is shared only by processes of one user on
// one machine, and fedmo's own never shrink a file while it runs.
//
// # Security
//
// The vectors never leave the machine, but they do not go through TLS
// either: the files are created with mode 0600 (and a directory Open
// creates, such as fedmo local's, with 0700), so only the user that runs
// the processes can read them. References travel on the Train stream, so a
// process needs the run's token and certificates to get any.
//
// # Lifetime
//
// Files are mapped into memory (MAP_SHARED): a vector moves with one copy
// into the writer's mapping (Put) or none (Reserve: the writer computes it
// there), and one out of the reader's (Read) or none (View). A File is rewritten from offset 0 when its writer starts over
// (Reset: the coordinator each round, a client process at each new round)
// and grows as needed, so a process keeps one file whatever the number of
// rounds. A file shrunk behind a
// reader's mapping is an error, not a crash (SIGBUS is turned into a
// panic and recovered). File.Close removes the file; `fedmo local`
// removes the whole directory when the run ends.
package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fedmo/fedmo/internal/le"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/wire"
)

// IDFile is the file in a shared directory that holds its id.
const IDFile = ".fedmo-shm-id"

// idBytes is the length of an id in bytes; ids are its hex form.
const idBytes = 8

// Dir is a shared directory opened by this process.
type Dir struct {
	path string
	id   string

	mu    sync.Mutex
	files map[string]*mapping // files read, by name
}

// Open opens the shared directory path, creating it and its id if needed.
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("shm: no directory")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	idPath := filepath.Join(path, IDFile)
	id, err := readID(idPath)
	if errors.Is(err, os.ErrNotExist) {
		id, err = createID(idPath)
	}
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, id: id, files: map[string]*mapping{}}, nil
}

// DefaultParent is where a temporary shared directory goes: /dev/shm when
// the host has it (tmpfs, so the files never touch a disk), else the
// system's temporary directory.
func DefaultParent() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// createID writes a new random id with O_EXCL: of two processes that race
// to create it, one wins and the other reads the winner's.
func createID(path string) (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("shm: %w", err)
	}
	id := hex.EncodeToString(b[:])
	tmp := fmt.Sprintf("%s.%s.tmp", path, id)
	if err := os.WriteFile(tmp, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("shm: %w", err)
	}
	defer os.Remove(tmp)
	// Link fails if the id exists, so a reader never sees a partial id.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return readID(path)
		}
		return "", fmt.Errorf("shm: %w", err)
	}
	return id, nil
}

func readID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := string(b)
	if !ValidID(id) {
		return "", fmt.Errorf("shm: %s holds %q, not an id of %d hex digits", path, short(id), 2*idBytes)
	}
	return id, nil
}

// ValidID reports whether id has the form of a directory id: 16 lowercase
// hex digits.
func ValidID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ID returns the directory's id.
func (d *Dir) ID() string { return d.id }

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Close closes the read handles. The directory and its files stay.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for name, m := range d.files {
		errs = append(errs, m.close())
		delete(d.files, name)
	}
	return errors.Join(errs...)
}

// checkName accepts a plain file name of the directory other than its id.
func checkName(name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("file name %q is not a plain name in the shared directory", short(name))
	}
	return nil
}

// reader returns the named file mapped, and whether the mapping came
// from the cache (never if fresh).
func (d *Dir) reader(name string, fresh bool) (*mapping, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.files[name]; ok {
		if !fresh {
			return m, true, nil
		}
		delete(d.files, name)
		m.close()
	}
	m, err := openMapping(filepath.Join(d.path, name), false)
	if err != nil {
		return nil, false, err
	}
	d.files[name] = m
	return m, false, nil
}

// forget drops a cached mapping that failed (its file may have been
// removed and made again). A copy still running on it keeps it until
// done.
func (d *Dir) forget(name string, m *mapping) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.files[name] == m {
		delete(d.files, name)
		m.close()
	}
}

// Read reads the vector ref points to, which must be of the given kind and
// of len(dst) elements, into dst, and checks its CRC-32C. Every error
// wraps wire.ErrCorrupt.
func (d *Dir) Read(kind fedmov1.VectorKind, ref *fedmov1.VectorRef, dst []float64) error {
	if err := checkRef(kind, ref, len(dst)); err != nil {
		return err
	}
	var err error
	for fresh := false; ; fresh = true {
		// A cached handle may be of a file since removed and made again
		// under the same name: on any failure, try once more with a
		// fresh one.
		if err = d.readChecked(ref, dst, fresh); err == nil || fresh {
			break
		}
	}
	if err != nil {
		return corrupt(kind, "%s: %v", ref.File, err)
	}
	return nil
}

// View returns the vector ref points to, of the given kind and n
// elements, as a slice of the file's memory map: without a copy and
// without checking its CRC-32C, which would read the bytes once more (see
// "Views" in the package doc). Nothing may write to the slice, and it is
// valid until the next Release or Close. On a big-endian machine it is a
// checked copy. Every error wraps wire.ErrCorrupt.
func (d *Dir) View(kind fedmov1.VectorKind, ref *fedmov1.VectorRef, n int) ([]float64, error) {
	if !le.Native {
		v := make([]float64, n)
		return v, d.Read(kind, ref, v)
	}
	if err := checkRef(kind, ref, n); err != nil {
		return nil, err
	}
	m, _, err := d.reader(ref.File, false)
	if err != nil {
		return nil, corrupt(kind, "%v", err)
	}
	v, err := m.view(n, int64(ref.Offset))
	if err != nil {
		return nil, corrupt(kind, "%s: the file ends before byte %d (%v)", ref.File, ref.Offset+8*ref.Length, err)
	}
	return v, nil
}

// Release ends the views taken so far from this Dir: it unmaps what the
// files' growth left mapped behind them. Parts of one process that take
// views at their own pace open a Dir each.
func (d *Dir) Release() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, m := range d.files {
		errs = append(errs, m.release())
	}
	return errors.Join(errs...)
}

// checkRef checks a reference to a vector of the given kind and n
// elements before the file is touched.
func checkRef(kind fedmov1.VectorKind, ref *fedmov1.VectorRef, n int) error {
	switch {
	case ref == nil:
		return corrupt(kind, "expected a VectorRef")
	case ref.Kind != kind:
		return corrupt(kind, "got a reference to a %s vector", ref.Kind)
	case ref.Length != uint64(n):
		return corrupt(kind, "length %d, want %d", ref.Length, n)
	case ref.Offset%8 != 0 || ref.Offset > 1<<62:
		return corrupt(kind, "byte offset %d is not a float64 boundary in range", ref.Offset)
	}
	if err := checkName(ref.File); err != nil {
		return corrupt(kind, "%v", err)
	}
	return nil
}

// corrupt is an error about a vector in the shared directory.
func corrupt(kind fedmov1.VectorKind, format string, args ...any) error {
	return fmt.Errorf("%w: %s vector in the shared directory: %s", wire.ErrCorrupt, kind, fmt.Sprintf(format, args...))
}

// readChecked reads the vector ref points to into dst and checks it,
// through a cached handle unless fresh.
func (d *Dir) readChecked(ref *fedmov1.VectorRef, dst []float64, fresh bool) error {
	m, cached, err := d.reader(ref.File, fresh)
	if err != nil {
		return err
	}
	err = m.get(dst, int64(ref.Offset))
	if errors.Is(err, errTruncated) {
		err = fmt.Errorf("the file ends before byte %d (truncated): %w", ref.Offset+8*ref.Length, err)
	} else if crc := wire.CRC32C(dst); err == nil && crc != ref.Crc32C {
		err = fmt.Errorf("CRC-32C %08x, the reference says %08x", crc, ref.Crc32C)
	}
	if err != nil && cached {
		d.forget(ref.File, m)
	}
	return err
}

// errTruncated reports a vector that lies past the end of its file.
var errTruncated = errors.New("truncated")

// File is a file of vectors that one process writes into a shared
// directory.
type File struct {
	name string
	path string
	m    *mapping
	off  int64
}

// Create creates (or truncates) the named file in the directory for this
// process to write.
func (d *Dir) Create(name string) (*File, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	path := filepath.Join(d.path, name)
	m, err := openMapping(path, true)
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	return &File{name: name, path: path, m: m}, nil
}

// Reset starts over: the next Put or Reserve writes at offset 0. Regions
// reserved before are invalid after.
func (f *File) Reset() error {
	f.off = 0
	return f.m.release()
}

// Reserve makes room for a vector of n elements after those put or
// reserved since the last Reset and returns it as a slice of the file's
// memory, for the caller to fill before it sends ref, and a reference to
// it without a CRC-32C (the coordinator views updates unchecked: see
// "Views"). The slice is valid until the next Reset. On a big-endian
// machine there is no such slice: it reports ok false, and the caller
// uses Put.
func (f *File) Reserve(kind fedmov1.VectorKind, n int) (v []float64, ref *fedmov1.VectorRef, ok bool, err error) {
	if !le.Native {
		return nil, nil, false, nil
	}
	v, err = f.m.reserve(n, f.off)
	if err != nil {
		return nil, nil, false, fmt.Errorf("shm: grow %s: %w", f.name, err)
	}
	ref = &fedmov1.VectorRef{Kind: kind, File: f.name, Offset: uint64(f.off), Length: uint64(n)}
	f.off += int64(8 * n)
	return v, ref, true, nil
}

// Put writes v after the vectors put since the last Reset and returns the
// reference a receiver reads it by.
func (f *File) Put(kind fedmov1.VectorKind, v []float64) (*fedmov1.VectorRef, error) {
	ref := &fedmov1.VectorRef{Kind: kind, File: f.name, Offset: uint64(f.off), Length: uint64(len(v)), Crc32C: wire.CRC32C(v)}
	if err := f.m.put(v, f.off); err != nil {
		return nil, fmt.Errorf("shm: write %s: %w", f.name, err)
	}
	f.off += int64(8 * len(v))
	return ref, nil
}

// Close closes and removes the file.
func (f *File) Close() error {
	err := f.m.close()
	if rerr := os.Remove(f.path); rerr != nil && err == nil {
		err = rerr
	}
	return err
}
