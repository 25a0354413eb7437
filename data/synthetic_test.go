package data

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// logitsArgmax recomputes argmax(x @ W + b) independently of the generator
// (plain loops over the 60x10 layout, the conversion preventing FMA).
func logitsArgmax(x []float64, w [][]float64, b []float64) int {
	best := 0
	var logits [SyntheticClasses]float64
	for c := range SyntheticClasses {
		logits[c] = b[c]
		for j := range SyntheticDim {
			logits[c] += float64(x[j] * w[j][c])
		}
		if logits[c] > logits[best] {
			best = c
		}
	}
	return best
}

func reshape60x10(w []float64) [][]float64 {
	m := make([][]float64, SyntheticDim)
	for j := range m {
		m[j] = w[j*SyntheticClasses : (j+1)*SyntheticClasses]
	}
	return m
}

func TestSyntheticInvariants(t *testing.T) {
	for _, cfg := range []SyntheticConfig{
		{Alpha: 0, Beta: 0},
		{Alpha: 0.5, Beta: 0.5},
		{Alpha: 1, Beta: 1, Users: 12},
		{IID: true, Alpha: 1, Beta: 1},
	} {
		f, users, err := generateSynthetic(cfg, 7)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		want := cfg.Users
		if want == 0 {
			want = 30
		}
		if len(users) != want || len(f.Parts) != want {
			t.Fatalf("%+v: %d users and %d parts, want %d", cfg, len(users), len(f.Parts), want)
		}
		for _, ds := range []*Dataset{f.Train, f.Test} {
			if err := ds.Validate(); err != nil {
				t.Fatal(err)
			}
			if ds.D != 60 || ds.Classes != 10 {
				t.Fatalf("D=%d Classes=%d, want 60 and 10", ds.D, ds.Classes)
			}
		}
		trainAt, testAt := 0, 0
		for i, u := range users {
			if u.N < 50 {
				t.Fatalf("user %d has %d examples, want >= 50", i, u.N)
			}
			if want := int(0.9 * float64(u.N)); u.Train != want || len(f.Parts[i]) != want {
				t.Fatalf("user %d: %d training rows (part %d) of %d, want int(0.9 n) = %d", i, u.Train, len(f.Parts[i]), u.N, want)
			}
			if len(u.X) != u.N*60 || len(u.Y) != u.N || len(u.W) != 600 || len(u.B) != 10 {
				t.Fatalf("user %d: shapes X %d, Y %d, W %d, b %d", i, len(u.X), len(u.Y), len(u.W), len(u.B))
			}
			// The pooled sets hold the user's rows in order, and the part
			// lists exactly the user's training rows.
			w := reshape60x10(u.W)
			for r := range u.N {
				var x []float64
				var y int
				if r < u.Train {
					row := trainAt + r
					if f.Parts[i][r] != row {
						t.Fatalf("user %d: part[%d] = %d, want %d", i, r, f.Parts[i][r], row)
					}
					x, y = f.Train.Row(row), f.Train.Y[row]
				} else {
					row := testAt + r - u.Train
					x, y = f.Test.Row(row), f.Test.Y[row]
				}
				if !slices.Equal(x, u.X[r*60:(r+1)*60]) {
					t.Fatalf("user %d row %d: pooled features differ from the user's", i, r)
				}
				if got := logitsArgmax(x, w, u.B); y != got {
					t.Fatalf("%+v: user %d row %d: label %d, want argmax(x W + b) = %d", cfg, i, r, y, got)
				}
			}
			trainAt += u.Train
			testAt += u.N - u.Train
		}
		if trainAt != f.Train.Len() || testAt != f.Test.Len() {
			t.Fatalf("pooled %d/%d rows, users hold %d/%d", f.Train.Len(), f.Test.Len(), trainAt, testAt)
		}

		distinctW := false
		for _, u := range users[1:] {
			if !slices.Equal(u.W, users[0].W) || !slices.Equal(u.B, users[0].B) {
				distinctW = true
			}
		}
		if cfg.IID {
			if distinctW {
				t.Fatal("synthetic_iid: users have different (W, b), want one shared model")
			}
			for i, u := range users {
				if slices.ContainsFunc(u.V, func(v float64) bool { return v != 0 }) {
					t.Fatalf("synthetic_iid: user %d has a nonzero feature mean", i)
				}
			}
		} else if !distinctW {
			t.Fatalf("%+v: every user has the same W, want client-specific W_k (even for alpha = beta = 0)", cfg)
		}
	}
}

// TestSyntheticStatistics checks the distributions behind the draws: the
// features' per-coordinate variance Sigma_jj = (j+1)^-1.2, W_k's entries
// around u_k with unit spread, alpha as a standard deviation.
func TestSyntheticStatistics(t *testing.T) {
	_, users, err := generateSynthetic(SyntheticConfig{Alpha: 0, Beta: 0, Users: 200}, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Within-user feature variance, pooled over users.
	for _, j := range []int{0, 9, 59} {
		ss, cnt := 0.0, 0
		for _, u := range users {
			for r := range u.N {
				dv := u.X[r*60+j] - u.V[j]
				ss += dv * dv
				cnt++
			}
		}
		want := math.Pow(float64(j+1), -1.2)
		if got := ss / float64(cnt); math.Abs(got/want-1) > 0.05 {
			t.Errorf("feature %d: variance %v around v_k, want (j+1)^-1.2 = %v", j, got, want)
		}
	}
	// alpha = 0: W_k entries ~ N(0, 1); b shares u_k = 0.
	sum, ss, cnt := 0.0, 0.0, 0
	for _, u := range users {
		for _, w := range u.W {
			sum += w
			ss += w * w
			cnt++
		}
	}
	if m, v := sum/float64(cnt), ss/float64(cnt); math.Abs(m) > 0.02 || math.Abs(v-1) > 0.03 {
		t.Errorf("alpha 0: W entries mean %v variance %v, want 0 and 1", m, v)
	}
	// alpha = 2 as a standard deviation: the per-user mean of W_k has
	// variance 4 + 1/600 (it would be 2 if alpha were a variance). Same
	// for the per-user mean of v_k with beta = 2.
	_, users, err = generateSynthetic(SyntheticConfig{Alpha: 2, Beta: 2, Users: 400}, 5)
	if err != nil {
		t.Fatal(err)
	}
	var wm, vm []float64
	for _, u := range users {
		wm = append(wm, mean(u.W))
		vm = append(vm, mean(u.V))
		// b_k shares the mean u_k of W_k.
		if math.Abs(mean(u.B)-mean(u.W)) > 5*math.Sqrt(1.0/10+1.0/600) {
			t.Fatalf("b_k mean %v far from W_k mean %v: b_k should share u_k", mean(u.B), mean(u.W))
		}
	}
	if v := variance(wm); math.Abs(v-4) > 1 {
		t.Errorf("alpha 2: variance of u_k %v, want about 4 (alpha is a standard deviation)", v)
	}
	if v := variance(vm); math.Abs(v-4) > 1 {
		t.Errorf("beta 2: variance of B_k %v, want about 4 (beta is a standard deviation)", v)
	}
	// Sizes: lognormal(4, 2) + 50 has median e^4 + 50, about 104.6.
	var ns []float64
	for _, u := range users {
		ns = append(ns, float64(u.N))
	}
	slices.Sort(ns)
	if med := ns[len(ns)/2]; med < 80 || med > 135 {
		t.Errorf("median user size %v, want about e^4 + 50 = 104.6", med)
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func variance(v []float64) float64 {
	m, s := mean(v), 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return s / float64(len(v)-1)
}

func TestSyntheticDeterminism(t *testing.T) {
	cfg := SyntheticConfig{Alpha: 0.5, Beta: 0.5, Users: 10}
	a, err := Synthetic(cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Synthetic(cfg, 11)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different datasets")
	}
	c, _ := Synthetic(cfg, 12)
	if Fingerprint(a.Train, a.Test) == Fingerprint(c.Train, c.Test) {
		t.Fatal("seeds 11 and 12 gave the same dataset")
	}
	// User k's data does not depend on the number of users.
	cfg.Users = 4
	d, _ := Synthetic(cfg, 11)
	n := len(d.Parts[3]) + d.Parts[3][0]
	if !slices.Equal(d.Train.Y, a.Train.Y[:n]) || !slices.Equal(d.Train.X, a.Train.X[:n*60]) {
		t.Fatal("the first 4 users changed when the number of users changed")
	}
	if a.Name != "synthetic(0.5,0.5)" {
		t.Fatalf("name %q", a.Name)
	}
	if e, _ := Synthetic(SyntheticConfig{IID: true}, 1); e.Name != "synthetic_iid" {
		t.Fatalf("name %q", e.Name)
	}
	// The natural partition goes through SetPartition.
	if err := a.SetPartition(PartitionConfig{Method: "natural", Clients: 10}, 1); err != nil {
		t.Fatal(err)
	}
	checkCover(t, a.Parts, a.Train.Y, 10, 10)
}

func TestSyntheticValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  SyntheticConfig
		want string
	}{
		{SyntheticConfig{Alpha: -1}, "alpha -1"},
		{SyntheticConfig{Beta: math.NaN()}, "beta NaN"},
		{SyntheticConfig{Alpha: math.Inf(1)}, "alpha +Inf"},
		{SyntheticConfig{Users: -3}, "-3 users"},
		{SyntheticConfig{Users: 1 << 40}, "1099511627776 users"},
	} {
		_, err := Synthetic(tc.cfg, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "data: synthetic") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
}
