package data

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func labelSet(part, labels []int) []int {
	var ls []int
	for _, x := range part {
		if !slices.Contains(ls, labels[x]) {
			ls = append(ls, labels[x])
		}
	}
	slices.Sort(ls)
	return ls
}

func TestPartitionSimilarity(t *testing.T) {
	const classes, clients = 10, 30
	labels := testLabels(6000, classes, true) // 600 rows per class, shuffled
	split := func(s float64, seed uint64) [][]int {
		t.Helper()
		parts, err := Partition(labels, classes, PartitionConfig{Method: "similarity", Clients: clients, Similarity: s}, seed)
		if err != nil {
			t.Fatalf("similarity %v: %v", s, err)
		}
		checkCover(t, parts, labels, classes, clients)
		for i, p := range parts {
			if len(p) != 200 {
				t.Fatalf("similarity %v: client %d has %d rows, want 6000/30 = 200", s, i, len(p))
			}
		}
		return parts
	}

	// 0%: client i holds the i-th block of the label-sorted rows, so one
	// label each here (200 rows, 600 per class), in increasing order, and the
	// seed does not matter.
	zero := split(0, 1)
	for i, p := range zero {
		if ls := labelSet(p, labels); len(ls) != 1 || ls[0] != i/3 {
			t.Errorf("0%%: client %d has labels %v, want [%d]", i, ls, i/3)
		}
	}
	if !reflect.DeepEqual(zero, split(0, 2)) {
		t.Error("0%: the seed changed a split that has no random part")
	}

	// 10%: 600 rows iid, 20 per client; the other 180 of each client are
	// one or two labels of the sorted order. So the two largest labels of
	// every client hold at least 180 rows, and the iid rows bring others.
	ten := split(0.1, 1)
	moreLabels := 0
	for i, p := range ten {
		counts := make([]int, classes)
		for _, x := range p {
			counts[labels[x]]++
		}
		slices.Sort(counts)
		if top2 := counts[classes-1] + counts[classes-2]; top2 < 180 {
			t.Errorf("10%%: client %d's two largest labels hold %d rows, want at least the 180 sorted ones", i, top2)
		}
		if len(labelSet(p, labels)) > 2 {
			moreLabels++
		}
	}
	if moreLabels < clients*3/4 {
		t.Errorf("10%%: only %d of %d clients have more than two labels; the 20 iid rows each should bring others", moreLabels, clients)
	}
	if reflect.DeepEqual(ten, split(0.1, 2)) {
		t.Error("10%: seeds 1 and 2 gave the same split")
	}
	if !reflect.DeepEqual(ten, split(0.1, 1)) {
		t.Error("10%: the same seed gave different splits")
	}

	// Heterogeneity falls as s rises; 100% is iid.
	prev := math.Inf(1)
	for _, s := range []float64{0, 0.1, 0.5, 1} {
		tv, _ := meanTV(split(s, 3), labels, classes)
		if tv >= prev {
			t.Errorf("similarity %v: mean total variation %.3f, want below %.3f (that of the smaller s)", s, tv, prev)
		}
		prev = tv
	}
	if prev > 0.2 {
		t.Errorf("100%%: mean total variation from the global label mix %.3f, want an iid-like split (< 0.2)", prev)
	}
}

func TestPartitionSimilarityUnevenSizes(t *testing.T) {
	labels := testLabels(1003, 7, false)
	for _, s := range []float64{0, 0.013, 0.37, 0.999, 1} {
		parts, err := Partition(labels, 7, PartitionConfig{Method: "similarity", Clients: 17, Similarity: s}, 9)
		if err != nil {
			t.Fatalf("similarity %v: %v", s, err)
		}
		checkCover(t, parts, labels, 7, 17)
		for i, p := range parts {
			if want := 1003/17 + b2i(i < 1003%17); len(p) != want {
				t.Errorf("similarity %v: client %d has %d rows, want %d", s, i, len(p), want)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPartitionSimilarityValidate(t *testing.T) {
	for _, s := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
		err := PartitionConfig{Method: "similarity", Clients: 2, Similarity: s}.Validate()
		if err == nil || !strings.Contains(err.Error(), "similarity") {
			t.Errorf("similarity %v: err = %v, want an error naming similarity", s, err)
		}
	}
	if err := (PartitionConfig{Method: "similarity", Clients: 2, Similarity: 0}).Validate(); err != nil {
		t.Errorf("similarity 0: %v", err)
	}
}
