package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
)

// writeNPY writes v with npyio (the codec under test for reading).
func writeNPY(t *testing.T, path string, v any) {
	t.Helper()
	var b bytes.Buffer
	if err := npyio.Write(&b, v); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

// rawNPY builds a version 1.0 .npy file by hand, for layouts npyio does not
// write (Fortran order, big endian) and for corrupt headers.
func rawNPY(descr string, fortran bool, shape string, payload []byte) []byte {
	f := "False"
	if fortran {
		f = "True"
	}
	hdr := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, f, shape)
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	b.Write(payload)
	return b.Bytes()
}

func f64Bytes(order binary.ByteOrder, v ...float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		order.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

// npyDir writes a valid dataset: train 4x3 float64 with int64 labels,
// test 2x3 float32 with uint8 labels.
func npyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteNPYFloat64(filepath.Join(dir, NPYTrainX), []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5}, []int{4, 3}); err != nil {
		t.Fatal(err)
	}
	writeNPY(t, filepath.Join(dir, NPYTrainY), []int64{0, 2, 1, 2})
	writeNPY(t, filepath.Join(dir, NPYTestX), [][]float32{{0.1, 0.2, 0.3}, {-1, 2, 1e-3}})
	writeNPY(t, filepath.Join(dir, NPYTestY), []uint8{4, 0})
	return dir
}

func TestLoadNPY(t *testing.T) {
	dir := npyDir(t)
	train, test, err := LoadNPY(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []*Dataset{train, test} {
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if train.D != 3 || test.D != 3 || train.Classes != 5 || test.Classes != 5 {
		t.Fatalf("D %d/%d, Classes %d/%d, want 3 and 5 (max label 4 + 1)", train.D, test.D, train.Classes, test.Classes)
	}
	if !slices.Equal(train.X, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5}) || !slices.Equal(train.Y, []int{0, 2, 1, 2}) {
		t.Fatalf("train %v %v", train.X, train.Y)
	}
	want := []float64{float64(float32(0.1)), float64(float32(0.2)), float64(float32(0.3)), -1, 2, float64(float32(1e-3))}
	if !slices.Equal(test.X, want) || !slices.Equal(test.Y, []int{4, 0}) {
		t.Fatalf("test %v %v, want %v [4 0]", test.X, test.Y, want)
	}

	// At least 2 classes even if every label is 0; (n, 1) labels.
	writeNPY(t, filepath.Join(dir, NPYTrainY), [][]int16{{0}, {0}, {0}, {0}})
	writeNPY(t, filepath.Join(dir, NPYTestY), []int32{0, 0})
	train, _, err = LoadNPY(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Classes != 2 {
		t.Fatalf("Classes %d with only label 0, want 2", train.Classes)
	}
}

func TestLoadNPYLabelDtypes(t *testing.T) {
	for _, y := range []any{
		[]int8{1, 0, 3, 2}, []int16{1, 0, 3, 2}, []int32{1, 0, 3, 2}, []int64{1, 0, 3, 2},
		[]uint8{1, 0, 3, 2}, []uint16{1, 0, 3, 2}, []uint32{1, 0, 3, 2}, []uint64{1, 0, 3, 2},
	} {
		dir := npyDir(t)
		writeNPY(t, filepath.Join(dir, NPYTrainY), y)
		train, _, err := LoadNPY(dir)
		if err != nil {
			t.Fatalf("%T: %v", y, err)
		}
		if !slices.Equal(train.Y, []int{1, 0, 3, 2}) {
			t.Fatalf("%T: labels %v", y, train.Y)
		}
	}
}

func TestLoadNPYLayouts(t *testing.T) {
	dir := npyDir(t)
	// Fortran order: the 2x3 matrix [[1,2,3],[4,5,6]] stored column by column.
	writeFile(t, filepath.Join(dir, NPYTestX), rawNPY("<f8", true, "(2, 3)", f64Bytes(binary.LittleEndian, 1, 4, 2, 5, 3, 6)))
	_, test, err := LoadNPY(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(test.X, []float64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("Fortran-order features read as %v, want [1 2 3 4 5 6]", test.X)
	}
	// Big endian.
	writeFile(t, filepath.Join(dir, NPYTestX), rawNPY(">f8", false, "(2, 3)", f64Bytes(binary.BigEndian, 1, 2, 3, 4, 5, 6.25)))
	_, test, err = LoadNPY(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(test.X, []float64{1, 2, 3, 4, 5, 6.25}) {
		t.Fatalf("big-endian features read as %v", test.X)
	}
}

func TestLoadNPYErrors(t *testing.T) {
	x23 := f64Bytes(binary.LittleEndian, 1, 2, 3, 4, 5, 6)
	noNewline := []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}" + string(x23))
	hugeHeader := []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f{")
	cases := []struct {
		name string
		file string
		body any // []byte written as is, or a value written with npyio
		want string
	}{
		{"label count", NPYTestY, []int64{0, 1, 1}, "3 labels but"},
		{"feature count", NPYTestX, [][]float64{{1, 2}, {3, 4}}, "test_x.npy has 2, want the same"},
		{"1-d features", NPYTrainX, []float64{1, 2, 3, 4}, "want 2 dimensions"},
		{"3-d features", NPYTrainX, [][][]float64{{{1}}, {{2}}, {{3}}, {{4}}}, "want 2 dimensions"},
		{"empty features", NPYTestX, rawNPY("<f8", false, "(0, 3)", nil), "at least one row"},
		{"negative label", NPYTrainY, []int64{0, -2, 1, 1}, "negative label -2 of row 1"},
		{"label out of range", NPYTrainY, []int64{0, 70000, 1, 1}, "label 70000 of row 1 is out of range"},
		{"huge unsigned label", NPYTrainY, []uint64{0, math.MaxUint64, 1, 1}, "label 18446744073709551615 of row 1"},
		{"float labels", NPYTrainY, []float64{0, 1, 1, 0}, "want an integer dtype"},
		{"bool labels", NPYTrainY, []bool{true, false, true, true}, "want an integer dtype"},
		{"2-column labels", NPYTrainY, [][]int64{{0, 1}, {1, 0}, {1, 1}, {0, 0}}, "want (n,) or (n, 1)"},
		{"NaN feature", NPYTestX, [][]float64{{1, 2, 3}, {4, math.NaN(), 6}}, "feature 1 of row 1 is NaN"},
		{"Inf feature", NPYTestX, [][]float32{{1, 2, float32(math.Inf(-1))}, {4, 5, 6}}, "feature 2 of row 0 is -Inf"},
		{"int features", NPYTestX, [][]int64{{1, 2, 3}, {4, 5, 6}}, "want float64 or float32"},
		{"truncated data", NPYTestX, rawNPY("<f8", false, "(2, 3)", x23[:40]), "truncated"},
		{"trailing data", NPYTestX, rawNPY("<f8", false, "(2, 3)", append(x23, 0)), "trailing data"},
		{"huge shape", NPYTestX, rawNPY("<f8", false, "(4611686018427387904, 4611686018427387904)", x23), "truncated"},
		{"negative shape", NPYTestX, rawNPY("<f8", false, "(-2, 3)", x23), "negative dimension"},
		{"not npy", NPYTestX, []byte("hello, world, this is not numpy"), "not a valid .npy file"},
		{"empty file", NPYTestX, []byte{}, "not a valid .npy file"},
		{"header without newline", NPYTestX, noNewline, NPYTestX},
		{"huge header", NPYTestX, hugeHeader, "header announces"},
		{"unknown dtype", NPYTestX, rawNPY("<q9", false, "(2, 3)", x23), NPYTestX},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := npyDir(t)
			path := filepath.Join(dir, c.file)
			if b, ok := c.body.([]byte); ok {
				writeFile(t, path, b)
			} else {
				writeNPY(t, path, c.body)
			}
			_, _, err := LoadNPY(dir)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "data: ") || !strings.Contains(msg, c.want) || !strings.Contains(msg, ".npy") {
				t.Fatalf("error %q, want the prefix \"data: \", a file name and %q", msg, c.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		dir := npyDir(t)
		os.Remove(filepath.Join(dir, NPYTestY))
		if _, _, err := LoadNPY(dir); err == nil || !strings.Contains(err.Error(), NPYTestY) {
			t.Fatalf("error %v, want one naming %s", err, NPYTestY)
		}
	})
}

func TestWriteNPYFloat64(t *testing.T) {
	dir := t.TempDir()
	data := make([]float64, 24)
	for i := range data {
		data[i] = float64(i) - 0.5
	}
	for _, tc := range []struct {
		shape []int
		n     int
	}{{nil, 1}, {[]int{24}, 24}, {[]int{4, 6}, 24}, {[]int{2, 3, 4}, 24}, {[]int{1, 2, 3, 2, 2}, 24}} {
		path := filepath.Join(dir, "model.npy")
		if err := WriteNPYFloat64(path, data[:tc.n], tc.shape); err != nil {
			t.Fatalf("shape %v: %v", tc.shape, err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := npyio.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Header.Descr.Shape, tc.shape) || r.Header.Descr.Type != "'<f8'" || r.Header.Descr.Fortran {
			t.Fatalf("shape %v: header %v", tc.shape, r.Header)
		}
		var got []float64
		if err := r.Read(&got); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if !slices.Equal(got, data[:tc.n]) {
			t.Fatalf("shape %v: read back %v", tc.shape, got)
		}
	}
	// A 2-d array written here loads as features.
	if err := WriteNPYFloat64(filepath.Join(dir, "m.npy"), data, []int{6, 4}); err != nil {
		t.Fatal(err)
	}
	x, n, d, err := readNPYFeatures(filepath.Join(dir, "m.npy"))
	if err != nil || n != 6 || d != 4 || !slices.Equal(x, data) {
		t.Fatalf("read back %v (%dx%d), %v", x, n, d, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("%d files after the writes, want 2 (no temporary files left)", len(entries))
	}
	for _, tc := range []struct {
		data  []float64
		shape []int
		want  string
	}{
		{data, []int{5, 5}, "24 values for shape [5 5], want 25"},
		{data[:0], []int{0}, "want every dimension >= 1"},
		{data, nil, "want 1"},
		{data, []int{-24}, "want every dimension >= 1"},
	} {
		err := WriteNPYFloat64(filepath.Join(dir, "bad.npy"), tc.data, tc.shape)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shape %v: error %v, want one containing %q", tc.shape, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.npy")); !os.IsNotExist(err) {
		t.Error("a failed write left a file behind")
	}
}

func TestWriteNPYDirRoundTrip(t *testing.T) {
	train := &Dataset{D: 2, Classes: 3, X: []float64{1, 2, 3, 4, 5, 6}, Y: []int{0, 2, 1}}
	test := &Dataset{D: 2, Classes: 3, X: []float64{7, 8}, Y: []int{2}}
	dir := filepath.Join(t.TempDir(), "set")
	if err := WriteNPYDir(dir, train.Subset([]int{2, 0}), test); err != nil {
		t.Fatal(err)
	}
	gotTrain, gotTest, err := LoadNPY(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotTrain.X, []float64{5, 6, 1, 2}) || !slices.Equal(gotTrain.Y, []int{1, 0}) ||
		!slices.Equal(gotTest.X, test.X) || !slices.Equal(gotTest.Y, test.Y) || gotTrain.D != 2 {
		t.Fatalf("round trip: train %+v test %+v", gotTrain, gotTest)
	}
}
