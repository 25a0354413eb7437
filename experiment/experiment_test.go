package experiment

import (
	"context"
	"math"
	"testing"

	"github.com/fedmo/fedmo/config"
)

func setup(t *testing.T, sets ...string) *Setup {
	t.Helper()
	cfg, err := config.Parse([]byte("data: {name: synthetic, partition: natural}\nclients: 8\nparticipation: 4\nmodel: {name: mlp, hidden: [16]}"), sets)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEvaluatorIndependentOfWorkers: the chunked, parallel evaluation sums
// in chunk order, so any number of workers gives the same bits, equal to one
// pass of the model over the whole set.
func TestEvaluatorIndependentOfWorkers(t *testing.T) {
	s := setup(t)
	x := s.InitialModel()
	want, err := s.Evaluator(1).Evaluate(context.Background(), x, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{2, 5} {
		got, err := s.Evaluator(w).Evaluate(context.Background(), x, true)
		if err != nil {
			t.Fatal(err)
		}
		if got.TestLoss != want.TestLoss || got.TestAcc != want.TestAcc || *got.TrainLoss != *want.TrainLoss {
			t.Fatalf("workers=%d: %+v, want %+v", w, got, want)
		}
	}
	test := s.Data.Test
	lossSum, correct := s.Model.NewScratch(test.Len()).Eval(x, test.X, test.Y)
	if math.Abs(lossSum/float64(test.Len())-want.TestLoss) > 1e-12 || float64(correct)/float64(test.Len()) != want.TestAcc {
		t.Fatalf("evaluator %+v, one pass: loss %v acc %v", want, lossSum/float64(test.Len()), float64(correct)/float64(test.Len()))
	}
	if want.TestAcc <= 0 || want.TestAcc > 1 {
		t.Fatalf("accuracy %v", want.TestAcc)
	}
}

func TestInitialModelFollowsTheSeed(t *testing.T) {
	a, b, c := setup(t).InitialModel(), setup(t).InitialModel(), setup(t, "seed=2").InitialModel()
	same := func(u, v []float64) bool {
		for i := range u {
			if u[i] != v[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) || same(a, c) {
		t.Fatal("the initial model must be a function of the seed")
	}
}

func TestBuildRejectsWhatTheMathForbids(t *testing.T) {
	for _, sets := range [][]string{
		{"algorithm.name=scaffold", "local.momentum=0.9"},
		{"server.nesterov=true"},
		{"algorithm.momentum.vr=true"},
		{"data.partition=natural", "clients=9", "data.name=mnist"},
	} {
		cfg, err := config.Parse([]byte("data: {name: synthetic, partition: natural}\nclients: 8\nparticipation: 4\nmodel: {name: softmax}"), sets)
		if err != nil {
			continue // rejected by the config already
		}
		if _, err := Build(cfg, Options{}); err == nil {
			t.Errorf("%v: built, want an error", sets)
		}
	}
}
