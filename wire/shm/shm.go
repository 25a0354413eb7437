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
// # Lifetime
//
// A File is rewritten from offset 0 for each message (Reset), so a process
// keeps one file whatever the number of rounds; the protocol is
// synchronous (a receiver reads a message's vectors before the sender
// writes its next message). File.Close removes the file; `fedmo local`
// removes the whole directory when the run ends.
package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	files map[string]*os.File // read handles by file name
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
	return &Dir{path: path, id: id, files: map[string]*os.File{}}, nil
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
	for name, f := range d.files {
		errs = append(errs, f.Close())
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

// reader returns an open handle on the named file.
func (d *Dir) reader(name string) (*os.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.files[name]; ok {
		return f, nil
	}
	f, err := os.Open(filepath.Join(d.path, name))
	if err != nil {
		return nil, err
	}
	d.files[name] = f
	return f, nil
}

// forget drops a cached handle that failed (its file may have been
// removed and made again).
func (d *Dir) forget(name string, f *os.File) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.files[name] == f {
		delete(d.files, name)
		f.Close()
	}
}

// Read reads the vector ref points to, which must be of the given kind and
// of len(dst) elements, into dst. Every error wraps wire.ErrCorrupt.
func (d *Dir) Read(kind fedmov1.VectorKind, ref *fedmov1.VectorRef, dst []float64) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s vector in the shared directory: %s", wire.ErrCorrupt, kind, fmt.Sprintf(format, args...))
	}
	switch {
	case ref == nil:
		return fail("expected a VectorRef")
	case ref.Kind != kind:
		return fail("got a reference to a %s vector", ref.Kind)
	case ref.Length != uint64(len(dst)):
		return fail("length %d, want %d", ref.Length, len(dst))
	case ref.Offset%8 != 0 || ref.Offset > 1<<62:
		return fail("byte offset %d is not a float64 boundary in range", ref.Offset)
	}
	if err := checkName(ref.File); err != nil {
		return fail("%v", err)
	}
	f, err := d.reader(ref.File)
	if err != nil {
		return fail("%v", err)
	}
	if err := readAt(f, dst, int64(ref.Offset)); err != nil {
		d.forget(ref.File, f)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail("%s ends before byte %d (truncated)", ref.File, ref.Offset+8*ref.Length)
		}
		return fail("%s: %v", ref.File, err)
	}
	if crc := wire.CRC32C(dst); crc != ref.Crc32C {
		return fail("%s: CRC-32C %08x, the reference says %08x", ref.File, crc, ref.Crc32C)
	}
	return nil
}

// readAt fills dst with the float64 values at byte offset off of f.
func readAt(f *os.File, dst []float64, off int64) error {
	if le.Native {
		_, err := f.ReadAt(le.Bytes(dst), off)
		return err
	}
	var buf [64 << 10]byte
	for len(dst) > 0 {
		n := min(len(dst), len(buf)/8)
		if _, err := f.ReadAt(buf[:8*n], off); err != nil {
			return err
		}
		le.Decode(dst[:n], buf[:8*n])
		dst, off = dst[n:], off+int64(8*n)
	}
	return nil
}

// File is a file of vectors that one process writes into a shared
// directory.
type File struct {
	name string
	f    *os.File
	off  int64
}

// Create creates (or truncates) the named file in the directory for this
// process to write.
func (d *Dir) Create(name string) (*File, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	return &File{name: name, f: f}, nil
}

// Name returns the file's name in its directory.
func (f *File) Name() string { return f.name }

// Reset starts a new message: the next Put writes at offset 0.
func (f *File) Reset() { f.off = 0 }

// Put writes v after the vectors put since the last Reset and returns the
// reference a receiver reads it by.
func (f *File) Put(kind fedmov1.VectorKind, v []float64) (*fedmov1.VectorRef, error) {
	ref := &fedmov1.VectorRef{Kind: kind, File: f.name, Offset: uint64(f.off), Length: uint64(len(v)), Crc32C: wire.CRC32C(v)}
	if err := writeAt(f.f, v, f.off); err != nil {
		return nil, fmt.Errorf("shm: write %s: %w", f.name, err)
	}
	f.off += int64(8 * len(v))
	return ref, nil
}

func writeAt(f *os.File, v []float64, off int64) error {
	if le.Native {
		_, err := f.WriteAt(le.Bytes(v), off)
		return err
	}
	var buf [64 << 10]byte
	for len(v) > 0 {
		n := min(len(v), len(buf)/8)
		if _, err := f.WriteAt(le.Encode(buf[:8*n], v[:n]), off); err != nil {
			return err
		}
		v, off = v[n:], off+int64(8*n)
	}
	return nil
}

// Close closes and removes the file.
func (f *File) Close() error {
	err := f.f.Close()
	if rerr := os.Remove(f.f.Name()); rerr != nil && err == nil {
		err = rerr
	}
	return err
}
