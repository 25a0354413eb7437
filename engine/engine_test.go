package engine

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
)

// fakeExec returns, for every task, a delta that depends only on the client
// and the broadcast, in an order and with corruptions chosen by the test.
type fakeExec struct {
	reverse bool
	mangle  func(ups []*algorithms.Update) []*algorithms.Update
}

func (f *fakeExec) Execute(_ context.Context, b *algorithms.Broadcast, tasks []Task) ([]*algorithms.Update, error) {
	var ups []*algorithms.Update
	for _, t := range tasks {
		d := make([]float64, len(b.X))
		for j := range d {
			d[j] = 0.1*float64(t.Client+1) - 0.01*b.X[j] + 1e-3*float64(j)
		}
		ups = append(ups, &algorithms.Update{Client: t.Client, Delta: d, Samples: t.Client + 1, Loss: 1})
	}
	if f.reverse {
		slices.Reverse(ups)
	}
	if f.mangle != nil {
		ups = f.mangle(ups)
	}
	return ups, nil
}

type recorder struct{ rounds []Metrics }

func (r *recorder) Round(m *Metrics, _ []float64) error {
	r.rounds = append(r.rounds, *m)
	return nil
}

func newEngine(t *testing.T, exec Executor, strict bool) (*Engine, *recorder) {
	t.Helper()
	s, err := algorithms.NewServer(algorithms.ServerConfig{
		Optimizer: algorithms.SGD, LR: 1, Local: algorithms.Local{Steps: 1, LR: 0.1, Beta: 1},
		Clients: 10, SampleWeighted: true,
	}, make([]float64, 5))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e, err := New(Config{Seed: 3, Rounds: 4, Participation: 4, Strict: strict}, s, exec, nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return e, rec
}

func TestArrivalOrderDoesNotMatter(t *testing.T) {
	a, _ := newEngine(t, &fakeExec{}, true)
	b, _ := newEngine(t, &fakeExec{reverse: true}, true)
	for _, e := range []*Engine{a, b} {
		if err := e.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if Hash(a.Server().X) != Hash(b.Server().X) {
		t.Fatal("reversed arrival order changed the model")
	}
}

func TestSample(t *testing.T) {
	a := Sample(1, 5, 100, 10)
	if !slices.Equal(a, Sample(1, 5, 100, 10)) {
		t.Fatal("Sample is not reproducible")
	}
	if slices.Equal(a, Sample(1, 6, 100, 10)) || slices.Equal(a, Sample(2, 5, 100, 10)) {
		t.Fatal("Sample does not depend on the round and the seed")
	}
	if !slices.IsSorted(a) || len(slices.Compact(slices.Clone(a))) != 10 || a[0] < 0 || a[9] >= 100 {
		t.Fatalf("Sample = %v, want 10 distinct ascending ids in [0, 100)", a)
	}
	if all := Sample(1, 0, 7, 7); !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Fatalf("full participation = %v", all)
	}
	// Every client is drawn about equally often.
	counts := make([]int, 20)
	for r := range 2000 {
		for _, id := range Sample(9, r, 20, 5) {
			counts[id]++
		}
	}
	for id, c := range counts {
		if c < 400 || c > 600 { // expected 500, sd ~19
			t.Errorf("client %d sampled %d times in 2000 rounds, want about 500", id, c)
		}
	}
}

func TestBadUpdatesAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		mangle       func(ups []*algorithms.Update) []*algorithms.Update
	}{
		{"short", "has 4 elements, want 5", func(u []*algorithms.Update) []*algorithms.Update { u[0].Delta = u[0].Delta[:4]; return u }},
		{"nan", "NaN", func(u []*algorithms.Update) []*algorithms.Update { u[1].Delta[2] = math.NaN(); return u }},
		{"inf", "+Inf", func(u []*algorithms.Update) []*algorithms.Update { u[1].Delta[0] = math.Inf(1); return u }},
		{"unknown", "not sampled", func(u []*algorithms.Update) []*algorithms.Update { u[2].Client = 1000; return u }},
		{"twice", "second update", func(u []*algorithms.Update) []*algorithms.Update {
			c := *u[0]
			return append(u, &c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, rec := newEngine(t, &fakeExec{mangle: tc.mangle}, false)
			if err := e.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
			m := rec.rounds[0]
			if len(m.Rejected) != 1 || !strings.Contains(m.Rejected[0].Reason, tc.reason) {
				t.Fatalf("rejected %+v, want one with %q", m.Rejected, tc.reason)
			}
			if len(m.Participants) != 3 && tc.name != "twice" {
				t.Errorf("participants %v, want the 3 good updates", m.Participants)
			}
			for _, v := range e.Server().X {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatal("a rejected update reached the model")
				}
			}

			strict, _ := newEngine(t, &fakeExec{mangle: tc.mangle}, true)
			if err := strict.Step(context.Background()); err == nil || !strings.Contains(err.Error(), "round 1") {
				t.Errorf("strict engine: err = %v, want an error naming round 1", err)
			}
		})
	}
}

func TestNoUpdateKeepsTheModel(t *testing.T) {
	e, rec := newEngine(t, &fakeExec{mangle: func([]*algorithms.Update) []*algorithms.Update { return nil }}, false)
	before := Hash(e.Server().X)
	if err := e.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Hash(e.Server().X) != before || e.Server().Round != 1 || len(rec.rounds[0].Participants) != 0 {
		t.Fatal("a round without updates changed the model or did not advance")
	}
}

func TestHash(t *testing.T) {
	// sha256 of the 8 zero bytes of float64(0).
	if got := Hash([]float64{0}); got != "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc" {
		t.Fatalf("Hash([0]) = %s", got)
	}
	big := make([]float64, 5000) // crosses the internal buffer
	big[4999] = 1
	if Hash(big) == Hash(make([]float64, 5000)) {
		t.Fatal("Hash ignores the tail")
	}
	if Hash([]float64{math.Copysign(0, -1)}) == Hash([]float64{0}) {
		t.Fatal("Hash must see the bits: -0 and +0 differ")
	}
}
