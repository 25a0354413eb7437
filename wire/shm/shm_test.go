package shm

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
	"github.com/fedmo/fedmo/wire"
)

const (
	model = fedmov1.VectorKind_VECTOR_KIND_MODEL
	delta = fedmov1.VectorKind_VECTOR_KIND_DELTA
)

func vec(n int, seed float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = seed + float64(i)*0.25 - math.Pi*float64(i%7)
	}
	v[0] = math.Copysign(0, -1) // -0 must survive bit for bit
	return v
}

// same reports whether a and b hold the same float64 bits.
func same(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

// openFile opens dir as a shared directory and creates the named file in
// it, both closed when the test ends.
func openFile(tb testing.TB, dir, name string) (*Dir, *File) {
	tb.Helper()
	d, err := Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	f, err := d.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return d, f
}

// shmTemp is a temporary directory in shared memory (/dev/shm if the host
// has it), removed when the test ends.
func shmTemp(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp(DefaultParent(), "fedmo-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d, f := openFile(t, dir, "coordinator.vec")
	for msg := range 3 { // Reset reuses the file for each message
		f.Reset()
		a, b := vec(1000, float64(msg)), vec(3, -float64(msg))
		ra, err := f.Put(model, a)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := f.Put(delta, b)
		if err != nil {
			t.Fatal(err)
		}
		if ra.Offset != 0 || rb.Offset != 8000 || rb.Length != 3 || rb.File != "coordinator.vec" {
			t.Fatalf("refs %v %v", ra, rb)
		}
		ga, gb := make([]float64, 1000), make([]float64, 3)
		if err := d.Read(model, ra, ga); err != nil {
			t.Fatal(err)
		}
		if err := d.Read(delta, rb, gb); err != nil {
			t.Fatal(err)
		}
		if !same(a, ga) || !same(b, gb) {
			t.Fatalf("message %d: vectors differ after the round trip", msg)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "coordinator.vec")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the file: %v", err)
	}
}

func TestOpenSharesID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids { // racing processes agree on one id
		wg.Go(func() {
			d, err := Open(dir)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = d.ID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !ValidID(id) {
			t.Fatalf("ids %v", ids)
		}
	}
	other, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if other.ID() == ids[0] {
		t.Fatal("two directories got the same id")
	}
	if err := os.WriteFile(filepath.Join(dir, IDFile), []byte("not an id"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not an id") {
		t.Fatalf("a bad id file: %v", err)
	}
	if _, err := Open(""); err == nil {
		t.Fatal("Open of no directory succeeded")
	}
}

func TestReadRejects(t *testing.T) {
	dir := t.TempDir()
	d, f := openFile(t, dir, "client-1.vec")
	v := vec(64, 1)
	ref, err := f.Put(delta, v)
	if err != nil {
		t.Fatal(err)
	}
	with := func(change func(r *fedmov1.VectorRef)) *fedmov1.VectorRef {
		r := proto.Clone(ref).(*fedmov1.VectorRef)
		change(r)
		return r
	}
	cases := []struct {
		name string
		kind fedmov1.VectorKind
		ref  *fedmov1.VectorRef
		n    int
		want string
	}{
		{"no reference", delta, nil, 64, "expected a VectorRef"},
		{"other kind", model, ref, 64, "VECTOR_KIND_DELTA vector"},
		{"other length", delta, ref, 63, "length 64, want 63"},
		{"misaligned", delta, with(func(r *fedmov1.VectorRef) { r.Offset = 4 }), 64, "not a float64 boundary"},
		{"huge offset", delta, with(func(r *fedmov1.VectorRef) { r.Offset = 1 << 63 }), 64, "not a float64 boundary"},
		{"path", delta, with(func(r *fedmov1.VectorRef) { r.File = "../client-1.vec" }), 64, "not a plain name"},
		{"absolute", delta, with(func(r *fedmov1.VectorRef) { r.File = "/etc/passwd" }), 64, "not a plain name"},
		{"id file", delta, with(func(r *fedmov1.VectorRef) { r.File = IDFile }), 64, "not a plain name"},
		{"empty name", delta, with(func(r *fedmov1.VectorRef) { r.File = "" }), 64, "not a plain name"},
		{"missing file", delta, with(func(r *fedmov1.VectorRef) { r.File = "gone.vec" }), 64, "no such file"},
		{"truncated", delta, with(func(r *fedmov1.VectorRef) { r.Offset = 8 }), 64, "truncated"},
		{"checksum", delta, with(func(r *fedmov1.VectorRef) { r.Crc32C ^= 1 }), 64, "CRC-32C"},
	}
	for _, c := range cases {
		err := d.Read(c.kind, c.ref, make([]float64, c.n))
		if !errors.Is(err, wire.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an ErrCorrupt saying %q", c.name, err, c.want)
		}
	}
	// A byte changed in the file after the reference was made.
	raw, err := os.OpenFile(filepath.Join(dir, "client-1.vec"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.WriteAt([]byte{0xff}, 100); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if err := d.Read(delta, ref, make([]float64, 64)); !errors.Is(err, wire.ErrCorrupt) || !strings.Contains(err.Error(), "CRC-32C") {
		t.Fatalf("a corrupted file: %v", err)
	}
	if _, err := d.Create("../escape.vec"); err == nil {
		t.Fatal("Create accepted a path")
	}
}

func BenchmarkPutRead(b *testing.B) {
	d, f := openFile(b, shmTemp(b), "bench.vec")
	v, got := vec(159010, 1), make([]float64, 159010) // the demo's MLP
	b.SetBytes(8 * int64(len(v)))
	for b.Loop() {
		f.Reset()
		ref, err := f.Put(delta, v)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Read(delta, ref, got); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadAfterRecreate: a file removed and made again under the same name
// (a restarted writer) is read afresh, not through a stale cached handle.
func TestReadAfterRecreate(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := range 2 {
		f, err := d.Create("coordinator.vec")
		if err != nil {
			t.Fatal(err)
		}
		v := vec(100, float64(i))
		ref, err := f.Put(model, v)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float64, 100)
		if err := d.Read(model, ref, got); err != nil || !same(got, v) {
			t.Fatalf("writer %d: %v", i, err)
		}
		f.Close()
	}
}

// TestReadTruncatedBehindMapping: a file shrunk by another process after
// the reader mapped it is an error, not a crash (SIGBUS).
func TestReadTruncatedBehindMapping(t *testing.T) {
	dir := t.TempDir()
	d, f := openFile(t, dir, "client.vec")
	ref, err := f.Put(delta, vec(4096, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, 4096)
	if err := d.Read(delta, ref, got); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "client.vec"), 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Read(delta, ref, got); !errors.Is(err, wire.ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a file truncated behind the mapping: %v", err)
	}
}

// TestPutRead50M moves a vector of 50 million float64 (400 MB), as a
// model of that size would go, through a directory in shared memory.
func TestPutRead50M(t *testing.T) {
	if testing.Short() {
		t.Skip("400 MB through /dev/shm: not with -short")
	}
	d, f := openFile(t, shmTemp(t), "big.vec")
	v := vec(50_000_000, 3)
	small := vec(10, 4)
	if _, err := f.Put(delta, small); err != nil { // the file grows from a small vector to a large one
		t.Fatal(err)
	}
	ref, err := f.Put(model, v)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, len(v))
	if err := d.Read(model, ref, got); err != nil {
		t.Fatal(err)
	}
	if !same(got, v) {
		t.Fatal("the 50M vector differs after the round trip")
	}
}

// TestView: a view is the written vector without a copy, and stays valid
// while the writer grows its file (the old mapping is kept until Release).
func TestView(t *testing.T) {
	d, f := openFile(t, t.TempDir(), "client.vec")
	a := vec(1000, 1)
	ra, err := f.Put(delta, a)
	if err != nil {
		t.Fatal(err)
	}
	va, err := d.View(delta, ra, len(a))
	if err != nil || !same(va, a) {
		t.Fatalf("view: %v", err)
	}
	b := vec(100_000, 2) // grows the file: the reader maps it anew
	rb, err := f.Put(delta, b)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := d.View(delta, rb, len(b))
	if err != nil || !same(vb, b) {
		t.Fatalf("view after growth: %v", err)
	}
	if !same(va, a) {
		t.Fatal("the first view changed when the file grew")
	}
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		kind fedmov1.VectorKind
		ref  *fedmov1.VectorRef
		n    int
		want string
	}{
		{model, rb, len(b), "VECTOR_KIND_DELTA vector"},
		{delta, rb, len(b) + 1, "length"},
		{delta, &fedmov1.VectorRef{Kind: delta, File: "client.vec", Offset: 1 << 30, Length: 10}, 10, "ends before"},
		{delta, &fedmov1.VectorRef{Kind: delta, File: "../client.vec", Length: 10}, 10, "not a plain name"},
	} {
		if _, err := d.View(bad.kind, bad.ref, bad.n); !errors.Is(err, wire.ErrCorrupt) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("View: got %v, want an ErrCorrupt saying %q", err, bad.want)
		}
	}
}
