package client

import (
	"slices"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/fedavg"
	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/model"
)

// fixture is 3 clients over 20 rows of 2 features; client 0 has 9 rows,
// client 1 has 3, client 2 has 8.
func fixture(t *testing.T, steps, batch int) *Runtime {
	t.Helper()
	tr := &data.Dataset{D: 2, Classes: 2}
	for i := range 20 {
		tr.X = append(tr.X, float64(i), float64(i%3))
		tr.Y = append(tr.Y, i%2)
	}
	fd := &data.Federated{Train: tr, Test: tr, Parts: [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11}, {12, 13, 14, 15, 16, 17, 18, 19},
	}}
	c, err := fedavg.New(algorithms.Local{Steps: steps, LR: 0.1, Beta: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := New(5, fd, model.NewSoftmax(2, 2, 0, model.InitScheme("zeros")), c, steps, batch, false)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestScheduleTakesConsecutiveBatchesAndReshuffles(t *testing.T) {
	rt := fixture(t, 5, 4)
	w := rt.NewWorker()
	w.schedule(0, 3)
	part := rt.Data.Parts[0]
	// 9 rows, B = 4: batches 0,1 from one permutation, then a reshuffle
	// (only 1 row left), batches 2,3, reshuffle, batch 4.
	for _, pair := range [][2]int{{0, 1}, {2, 3}} {
		a, b := w.batches[pair[0]], w.batches[pair[1]]
		if len(a) != 4 || len(b) != 4 {
			t.Fatalf("batch sizes %d, %d, want 4", len(a), len(b))
		}
		both := append(slices.Clone(a), b...)
		slices.Sort(both)
		if len(slices.Compact(both)) != 8 {
			t.Errorf("batches %d and %d of one permutation overlap: %v %v", pair[0], pair[1], a, b)
		}
	}
	for k, b := range w.batches {
		for _, i := range b {
			if !slices.Contains(part, i) {
				t.Fatalf("batch %d holds row %d of another client", k, i)
			}
		}
	}
	first := slices.Clone(w.batches[0])
	w.schedule(0, 3)
	if !slices.Equal(first, w.batches[0]) {
		t.Error("the schedule of (round 3, client 0) is not reproducible")
	}
	all3 := slices.Concat(w.batches...)
	w.schedule(0, 4)
	if slices.Equal(all3, slices.Concat(w.batches...)) {
		t.Error("rounds 3 and 4 draw the same minibatches")
	}
}

func TestSmallShardAndFullBatchUseEveryRow(t *testing.T) {
	for _, batch := range []int{0, 4} {
		rt := fixture(t, 3, batch)
		w := rt.NewWorker()
		w.schedule(1, 0) // client 1 has 3 rows <= 4
		for k, b := range w.batches {
			if !slices.Equal(b, rt.Data.Parts[1]) {
				t.Errorf("batch=%d: step %d uses %v, want the whole shard %v", batch, k, b, rt.Data.Parts[1])
			}
		}
	}
}

func TestUpdateIsIndependentOfTheWorkerHistory(t *testing.T) {
	rt := fixture(t, 4, 3)
	x := []float64{0.1, -0.2, 0.3, 0.05, -0.1, 0.2}
	b := &algorithms.Broadcast{Round: 2, X: x}
	run := func(w *Worker, id int) []float64 {
		u := &algorithms.Update{Delta: make([]float64, len(x))}
		w.Update(id, b, nil, u)
		if u.Client != id || u.Samples != len(rt.Data.Parts[id]) {
			t.Fatalf("update says client %d with %d samples, want %d with %d", u.Client, u.Samples, id, len(rt.Data.Parts[id]))
		}
		return u.Delta
	}
	fresh := run(rt.NewWorker(), 2)
	used := rt.NewWorker()
	run(used, 0)
	run(used, 1)
	if got := run(used, 2); !slices.Equal(got, fresh) {
		t.Fatalf("client 2 on a used worker: %v, on a fresh one: %v", got, fresh)
	}
}

func TestNewRejectsEmptyClient(t *testing.T) {
	rt := fixture(t, 1, 1)
	rt.Data.Parts[1] = []int{}
	if _, err := New(1, rt.Data, rt.Model, rt.Client, 1, 1, false); err == nil {
		t.Fatal("a client without examples was accepted")
	}
	rt.Data.Parts = [][]int{nil, nil}
	if _, err := New(1, rt.Data, rt.Model, rt.Client, 1, 1, false); err == nil {
		t.Fatal("a runtime hosting no client was accepted")
	}
	rt.Data.Parts = [][]int{nil, {3, 4}}
	r2, err := New(1, rt.Data, rt.Model, rt.Client, 1, 1, false)
	if err != nil || r2.Hosts(0) || !r2.Hosts(1) || r2.Hosts(2) {
		t.Fatalf("a runtime hosting only client 1: %v", err)
	}
}
