package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaims checks the reproduction's claims on the grid: FedAvg ends
// worse as G grows and does not reach Eps at G = 100; SCAFFOLD reaches Eps
// for every G within a few rounds of each other and of SGD.
func TestClaims(t *testing.T) {
	res, err := Results()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Ks {
		var fedavg, scaf []Run
		var sgd Run
		for _, r := range res[k] {
			switch r.Method {
			case FedAvg:
				fedavg = append(fedavg, r)
			case SCAFFOLD:
				scaf = append(scaf, r)
			case SGD:
				sgd = r
			}
		}
		if len(fedavg) != len(Gs) || len(scaf) != len(Gs) || sgd.Reach == 0 {
			t.Fatalf("K=%d: %d FedAvg and %d SCAFFOLD runs, SGD reaching at %d", k, len(fedavg), len(scaf), sgd.Reach)
		}
		for i := 1; i < len(Gs); i++ {
			if !(fedavg[i].Errors[Rounds] > 3*fedavg[i-1].Errors[Rounds]) {
				t.Errorf("K=%d: FedAvg's final error %.3g at G=%g is not far above %.3g at G=%g", k, fedavg[i].Errors[Rounds], Gs[i], fedavg[i-1].Errors[Rounds], Gs[i-1])
			}
		}
		if fedavg[len(Gs)-1].Reach != 0 {
			t.Errorf("K=%d: FedAvg reached %g at G=100 in %d rounds", k, Eps, fedavg[len(Gs)-1].Reach)
		}
		lo, hi := Rounds, 0
		for _, r := range scaf {
			if r.Reach == 0 {
				t.Fatalf("K=%d: SCAFFOLD did not reach %g at G=%g", k, Eps, r.G)
			}
			lo, hi = min(lo, r.Reach), max(hi, r.Reach)
		}
		if hi > lo+10 || hi > sgd.Reach+10 {
			t.Errorf("K=%d: SCAFFOLD reaches %g in %d-%d rounds over G = 1..100 (SGD %d): want its rounds nearly independent of G", k, Eps, lo, hi, sgd.Reach)
		}
	}
}

func TestOutputs(t *testing.T) {
	res, err := Results()
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "q.png")
	if err := Figure(png, res); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(png); !strings.HasPrefix(string(b), "\x89PNG") {
		t.Error("no PNG")
	}
	if tab := Table(res); strings.Count(tab, "\n") != 2+len(Ks)*(1+2*len(Gs)) || !strings.Contains(tab, "| 10 | SCAFFOLD | 100 |") {
		t.Errorf("table:\n%s", tab)
	}
}
