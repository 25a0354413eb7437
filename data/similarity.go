package data

import (
	"math"
	"math/rand/v2"
	"slices"
)

// similarity is the split of SCAFFOLD's experiments (Karimireddy et al.
// 2020, section 7: "s% similarity"): a random s share of the rows,
// round(s*n), is dealt i.i.d.; the other rows are sorted by label (ties by
// row index) and cut into consecutive chunks, client i taking chunk i.
// Client sizes are near-equal (n/N, the first n mod N one more), and each
// client's i.i.d. share is its size minus its sorted chunk, so every client
// has about s of its rows i.i.d. With s = 0 the split does not depend on
// the seed.
func similarity(r *rand.Rand, labels []int, classes int, cfg PartitionConfig) [][]int {
	n, N := len(labels), cfg.Clients
	perm := r.Perm(n)
	nIID := int(math.Round(cfg.Similarity * float64(n)))
	iid, rest := perm[:nIID], perm[nIID:]
	byLabel := rowsByClass(labels, classes) // each class's rows in increasing order
	inRest := make([]bool, n)
	for _, x := range rest {
		inRest[x] = true
	}
	sorted := make([]int, 0, len(rest))
	for _, rows := range byLabel {
		for _, x := range rows {
			if inRest[x] {
				sorted = append(sorted, x)
			}
		}
	}
	total := equalSizes(n, N)
	sortedSizes := equalSizes(len(sorted), N)
	parts := make([][]int, N)
	atIID, atSorted := 0, 0
	for i := range parts {
		// total[i] >= sortedSizes[i]: both put their extra rows first, and
		// n >= len(sorted).
		k := total[i] - sortedSizes[i]
		part := make([]int, 0, total[i])
		part = append(part, iid[atIID:atIID+k]...)
		part = append(part, sorted[atSorted:atSorted+sortedSizes[i]]...)
		atIID += k
		atSorted += sortedSizes[i]
		slices.Sort(part)
		parts[i] = part
	}
	return parts
}
