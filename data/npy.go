package data

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"codeberg.org/sbinet/npyio"

	"github.com/fedmo/fedmo/atomicfile"
)

// The file names LoadNPY reads.
const (
	NPYTrainX = "train_x.npy"
	NPYTrainY = "train_y.npy"
	NPYTestX  = "test_x.npy"
	NPYTestY  = "test_y.npy"
)

// MaxNPYClasses bounds the labels LoadNPY accepts: a label must be below it.
const MaxNPYClasses = 1 << 16

// LoadNPY reads the user's own dataset from four NumPy files in dir:
// train_x.npy and test_x.npy, 2-d float64 (or float32, converted) arrays of
// shape (n, d) with the same d and finite values; train_y.npy and
// test_y.npy, integer arrays (any signed or unsigned width) of shape (n,)
// or (n, 1) with one label per row. C and Fortran order are both read.
// Classes is the largest label over both sets plus one, and at least 2.
func LoadNPY(dir string) (train, test *Dataset, err error) {
	train, err = loadNPYPair(filepath.Join(dir, NPYTrainX), filepath.Join(dir, NPYTrainY))
	if err != nil {
		return nil, nil, err
	}
	test, err = loadNPYPair(filepath.Join(dir, NPYTestX), filepath.Join(dir, NPYTestY))
	if err != nil {
		return nil, nil, err
	}
	if train.D != test.D {
		return nil, nil, fmt.Errorf("data: %s has %d features per row but %s has %d, want the same",
			filepath.Join(dir, NPYTrainX), train.D, filepath.Join(dir, NPYTestX), test.D)
	}
	classes := 2
	for _, ds := range []*Dataset{train, test} {
		for _, y := range ds.Y {
			classes = max(classes, y+1)
		}
	}
	train.Classes, test.Classes = classes, classes
	return train, test, nil
}

func loadNPYPair(xPath, yPath string) (*Dataset, error) {
	x, n, d, err := readNPYFeatures(xPath)
	if err != nil {
		return nil, err
	}
	y, err := readNPYLabels(yPath)
	if err != nil {
		return nil, err
	}
	if len(y) != n {
		return nil, fmt.Errorf("data: %s has %d labels but %s has %d rows, want one label per row", yPath, len(y), xPath, n)
	}
	return &Dataset{X: x, Y: y, D: d}, nil
}

// npyArray is the header of an opened .npy file, ready to read its data.
type npyArray struct {
	path    string
	r       *npyio.Reader
	typ     reflect.Type // element type
	shape   []int
	fortran bool
	n       int // elements
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// openNPY opens path, parses its header with npyio and checks that the file
// holds exactly the data the header announces (so a corrupt header cannot
// make the reader allocate more than the file holds). npyio panics on some
// malformed headers; those panics become errors.
func openNPY(path string) (a *npyArray, f *os.File, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: NumPy file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("data: NumPy file: %w", err)
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("data: %s is a directory, want a .npy file", path)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	// npyio allocates the header length the file announces before reading
	// it; check it against the file size first.
	if pre, _ := br.Peek(12); len(pre) >= 10 && string(pre[:6]) == "\x93NUMPY" {
		hlen, at := int64(binary.LittleEndian.Uint16(pre[8:10])), int64(10)
		if pre[6] >= 2 && len(pre) == 12 {
			hlen, at = int64(binary.LittleEndian.Uint32(pre[8:12])), 12
		}
		if at+hlen > st.Size() {
			return nil, nil, fmt.Errorf("data: %s: truncated: the .npy header announces %d bytes, the file has %d", path, at+hlen, st.Size())
		}
	}
	cr := &countingReader{r: br}
	a = &npyArray{path: path}
	err = catchPanic(func() error {
		var err error
		a.r, err = npyio.NewReader(cr)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: not a valid .npy file: %w", path, err)
	}
	hdr := a.r.Header
	dtype := strings.Trim(hdr.Descr.Type, "'\" ")
	err = catchPanic(func() error {
		a.typ = npyio.TypeFrom(hdr.Descr.Type)
		return nil
	})
	if err != nil || a.typ == nil {
		return nil, nil, fmt.Errorf("data: %s: unsupported dtype %s", path, dtype)
	}
	a.shape, a.fortran = hdr.Descr.Shape, hdr.Descr.Fortran
	// Element and byte counts, saturating instead of overflowing.
	size := uint64(1)
	for _, s := range a.shape {
		if s < 0 {
			return nil, nil, fmt.Errorf("data: %s: negative dimension in shape %v", path, a.shape)
		}
		size = mulSat(size, uint64(s))
	}
	bytes := mulSat(size, uint64(a.typ.Size()))
	// npyio reads the header with exact-size reads through cr, so cr.n is
	// the header length.
	have := uint64(st.Size() - cr.n)
	switch {
	case bytes == math.MaxUint64:
		return nil, nil, fmt.Errorf("data: %s: truncated: %d data bytes, shape %v of %s wants more than 2^64", path, have, a.shape, dtype)
	case bytes > have:
		return nil, nil, fmt.Errorf("data: %s: truncated: %d data bytes, want %d for shape %v of %s", path, have, bytes, a.shape, dtype)
	case bytes < have:
		return nil, nil, fmt.Errorf("data: %s: %d data bytes, want %d for shape %v of %s (trailing data)", path, have, bytes, a.shape, dtype)
	}
	a.n = int(size)
	return a, f, nil
}

// mulSat returns a*b, or MaxUint64 if that overflows.
func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// catchPanic runs fn and turns a panic into an error.
func catchPanic(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	return fn()
}

// readNPYFeatures reads a 2-d float64 or float32 array of finite values and
// returns it row-major.
func readNPYFeatures(path string) (x []float64, n, d int, err error) {
	a, f, err := openNPY(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	if len(a.shape) != 2 {
		return nil, 0, 0, fmt.Errorf("data: %s: shape %v, want 2 dimensions (rows, features)", path, a.shape)
	}
	n, d = a.shape[0], a.shape[1]
	if n < 1 || d < 1 {
		return nil, 0, 0, fmt.Errorf("data: %s: shape %v, want at least one row and one feature", path, a.shape)
	}
	switch a.typ.Kind() {
	case reflect.Float64:
		err = a.read(&x)
	case reflect.Float32:
		var x32 []float32
		err = a.read(&x32)
		if err == nil {
			x = make([]float64, len(x32))
			for i, v := range x32 {
				x[i] = float64(v)
			}
		}
	default:
		return nil, 0, 0, fmt.Errorf("data: %s: dtype %s, want float64 or float32 features", path, a.typ)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	if a.fortran {
		// Column-major on disk: element (i, j) is at j*n + i.
		t := make([]float64, len(x))
		for i := range n {
			for j := range d {
				t[i*d+j] = x[j*n+i]
			}
		}
		x = t
	}
	for k, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, 0, 0, fmt.Errorf("data: %s: feature %d of row %d is %v, want finite values", path, k%d, k/d, v)
		}
	}
	return x, n, d, nil
}

// readNPYLabels reads an integer array of shape (n,) or (n, 1) of labels in
// [0, MaxNPYClasses).
func readNPYLabels(path string) ([]int, error) {
	a, f, err := openNPY(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !(len(a.shape) == 1 || len(a.shape) == 2 && a.shape[1] == 1) {
		return nil, fmt.Errorf("data: %s: shape %v, want (n,) or (n, 1): one label per row", path, a.shape)
	}
	if a.n < 1 {
		return nil, fmt.Errorf("data: %s: no labels, want at least one", path)
	}
	var raw []int64 // signed values; unsigned ones too large for int64 are rejected
	switch a.typ.Kind() {
	case reflect.Int8:
		raw, err = readConv[int8](a)
	case reflect.Int16:
		raw, err = readConv[int16](a)
	case reflect.Int32:
		raw, err = readConv[int32](a)
	case reflect.Int64:
		raw, err = readConv[int64](a)
	case reflect.Uint8:
		raw, err = readConv[uint8](a)
	case reflect.Uint16:
		raw, err = readConv[uint16](a)
	case reflect.Uint32:
		raw, err = readConv[uint32](a)
	case reflect.Uint64:
		var u []uint64
		if err = a.read(&u); err == nil {
			raw = make([]int64, len(u))
			for i, v := range u {
				if v > math.MaxInt64 {
					return nil, fmt.Errorf("data: %s: label %d of row %d, want a label in [0, %d)", path, v, i, MaxNPYClasses)
				}
				raw[i] = int64(v)
			}
		}
	default:
		return nil, fmt.Errorf("data: %s: dtype %s, want an integer dtype for labels (e.g. y.astype(numpy.int64))", path, a.typ)
	}
	if err != nil {
		return nil, err
	}
	y := make([]int, len(raw))
	for i, v := range raw {
		switch {
		case v < 0:
			return nil, fmt.Errorf("data: %s: negative label %d of row %d, want labels >= 0", path, v, i)
		case v >= MaxNPYClasses:
			return nil, fmt.Errorf("data: %s: label %d of row %d is out of range, want a label in [0, %d)", path, v, i, MaxNPYClasses)
		}
		y[i] = int(v)
	}
	return y, nil
}

// read reads the array's data into ptr (a pointer to a slice of the file's
// element type).
func (a *npyArray) read(ptr any) error {
	err := catchPanic(func() error { return a.r.Read(ptr) })
	if err != nil {
		return fmt.Errorf("data: %s: reading the array data: %w", a.path, err)
	}
	if got := reflect.ValueOf(ptr).Elem().Len(); got != a.n {
		return fmt.Errorf("data: %s: read %d values, want %d", a.path, got, a.n)
	}
	return nil
}

// readConv reads integers of type T and widens them to int64.
func readConv[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32](a *npyArray) ([]int64, error) {
	var v []T
	if err := a.read(&v); err != nil {
		return nil, err
	}
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out, nil
}

// WriteNPYFloat64 writes data as a float64 .npy array of the given shape
// (row-major; an empty shape is a scalar and needs exactly one value). The
// write is atomic: a temporary file in the same directory, synced, then
// renamed over path.
func WriteNPYFloat64(path string, data []float64, shape []int) error {
	want := 1
	for _, s := range shape {
		if s < 1 {
			return fmt.Errorf("data: %s: shape %v, want every dimension >= 1", path, shape)
		}
		if want > math.MaxInt/s {
			return fmt.Errorf("data: %s: shape %v is too large", path, shape)
		}
		want *= s
	}
	if len(data) != want {
		return fmt.Errorf("data: %s: %d values for shape %v, want %d", path, len(data), shape, want)
	}
	var v any
	switch len(shape) {
	case 0:
		v = data[0]
	case 1:
		v = data
	default:
		v = nestFloat64(data, shape).Interface()
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error { return npyio.Write(w, v) })
}

// nestFloat64 views data as nested slices of the given shape (no copy of
// the values), the form from which npyio takes an n-d shape.
func nestFloat64(data []float64, shape []int) reflect.Value {
	if len(shape) == 1 {
		return reflect.ValueOf(data[:shape[0]])
	}
	stride := len(data) / shape[0]
	typ := reflect.TypeFor[float64]()
	for range shape {
		typ = reflect.SliceOf(typ)
	}
	s := reflect.MakeSlice(typ, shape[0], shape[0])
	for i := range shape[0] {
		s.Index(i).Set(nestFloat64(data[i*stride:(i+1)*stride], shape[1:]))
	}
	return s
}

// WriteNPYDir writes train and test as the NumPy files LoadNPY reads:
// train_x.npy and test_x.npy (float64, n x d) and train_y.npy and
// test_y.npy (int64 labels), each atomically. It exports any dataset,
// e.g. a generated one, so other tools (or a real client) can use it.
func WriteNPYDir(dir string, train, test *Dataset) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	for _, f := range []struct {
		x, y string
		ds   *Dataset
	}{{NPYTrainX, NPYTrainY, train}, {NPYTestX, NPYTestY, test}} {
		if err := WriteNPYFloat64(filepath.Join(dir, f.x), f.ds.X, []int{f.ds.Len(), f.ds.D}); err != nil {
			return err
		}
		labels := make([]int64, f.ds.Len())
		for i, y := range f.ds.Y {
			labels[i] = int64(y)
		}
		path := filepath.Join(dir, f.y)
		if err := atomicfile.WriteFunc(path, func(w io.Writer) error { return npyio.Write(w, labels) }); err != nil {
			return fmt.Errorf("data: %w", err)
		}
	}
	return nil
}

// Subset returns the rows of d, in that order, as a new dataset.
func (d *Dataset) Subset(rows []int) *Dataset {
	s := &Dataset{D: d.D, Classes: d.Classes, X: make([]float64, 0, len(rows)*d.D), Y: make([]int, 0, len(rows))}
	for _, i := range rows {
		s.X = append(s.X, d.Row(i)...)
		s.Y = append(s.Y, d.Y[i])
	}
	return s
}
