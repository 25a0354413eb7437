package experiment

import (
	"slices"
	"testing"
)

// TestSimilarityPartitionWiring: data.similarity reaches the partitioner.
// At 0 every client holds a block of the label-sorted rows, so the clients'
// label ranges follow one another; at 1 they overlap.
func TestSimilarityPartitionWiring(t *testing.T) {
	ordered := func(sim string) bool {
		s := setup(t, "data.partition=similarity", "data.similarity="+sim)
		y := s.Data.Train.Y
		prevMax := -1
		for _, p := range s.Data.Parts {
			labels := make([]int, len(p))
			for i, x := range p {
				labels[i] = y[x]
			}
			if slices.Min(labels) < prevMax {
				return false
			}
			prevMax = slices.Max(labels)
		}
		return true
	}
	if !ordered("0") {
		t.Error("data.similarity=0: the clients' labels are not consecutive blocks of the sorted order")
	}
	if ordered("1") {
		t.Error("data.similarity=1: the clients' labels are still sorted blocks; the share did not reach the partitioner")
	}
}
