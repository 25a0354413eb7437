package data

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/fedmo/fedmo/rng"
)

// The partition methods.
const (
	// PartitionIID shuffles the rows and deals them into near-equal parts.
	PartitionIID = "iid"
	// PartitionDirichlet splits every class across the clients with
	// Dirichlet(Alpha) proportions (NIID-Bench "noniid-labeldir").
	PartitionDirichlet = "dirichlet"
	// PartitionDirichletClient gives every client an equal number of rows
	// drawn from its own class mix q ~ Dirichlet (Hsu et al.).
	PartitionDirichletClient = "dirichlet-client"
	// PartitionShards sorts the rows by label, cuts them into equal shards
	// and deals ShardsPerClient shards to each client (McMahan et al.).
	PartitionShards = "shards"
	// PartitionQuantity gives the clients lognormal(0, Sigma) sizes with
	// iid content.
	PartitionQuantity = "quantity"
	// PartitionNatural keeps a generator's own users (Federated.Parts).
	PartitionNatural = "natural"
	// PartitionFile reads an explicit partition from a JSON file.
	PartitionFile = "file"
	// PartitionSimilarity is the SCAFFOLD paper's "s% similarity": each
	// client gets a Similarity share of its rows i.i.d. and the rest from
	// the rows sorted by label.
	PartitionSimilarity = "similarity"
)

// PartitionMethods returns the method names PartitionConfig accepts.
func PartitionMethods() []string {
	return []string{PartitionIID, PartitionDirichlet, PartitionDirichletClient, PartitionShards,
		PartitionQuantity, PartitionNatural, PartitionFile, PartitionSimilarity}
}

// Defaults for the zero values of PartitionConfig.
const (
	DefaultMinSize         = 10 // dirichlet: smallest client, as in NIID-Bench
	DefaultShardsPerClient = 2  // shards: as in McMahan et al.
	// DirichletMaxTries bounds the dirichlet method's resampling.
	DirichletMaxTries = 1000
)

// maxPartitionClasses bounds the class count Partition accepts, so that a
// wrong count cannot make it allocate without bound.
const maxPartitionClasses = 1 << 20

// PartitionConfig selects a partition method and its options. Fields a
// method does not use are ignored.
type PartitionConfig struct {
	// Method is one of PartitionMethods().
	Method string
	// Clients is the number of clients N, at least 1. For "file", 0 takes
	// the number of clients from the file; a positive value must match it.
	// For "natural", 0 accepts any number of users.
	Clients int
	// Alpha is the Dirichlet concentration of "dirichlet" (per client:
	// proportions ~ Dir(Alpha, ..., Alpha)) and of "dirichlet-client"
	// (per class: q ~ Dir(Alpha/C, ..., Alpha/C) for C classes, the literal
	// reading of Hsu et al.'s Dir(alpha*p) with p uniform; Flower's baseline
	// uses Alpha per class instead). Must be positive.
	Alpha float64
	// MinSize is the smallest client size "dirichlet" accepts: it resamples
	// the whole partition until every client has at least MinSize rows, and
	// fails after DirichletMaxTries draws. 0 means DefaultMinSize.
	MinSize int
	// ShardsPerClient is the number of shards each client gets from
	// "shards". 0 means DefaultShardsPerClient.
	ShardsPerClient int
	// Sigma is the lognormal sigma of the client sizes for "quantity".
	// Must be positive.
	Sigma float64
	// File is the JSON partition file of "file".
	File string
	// Similarity is the share s in [0, 1] of every client's rows that
	// "similarity" draws i.i.d.; the rest come from the label-sorted rows.
	// 0 is fully sorted (most heterogeneous), 1 is iid.
	Similarity float64
}

// Validate checks the method name and the options the method uses.
func (c PartitionConfig) Validate() error {
	if !slices.Contains(PartitionMethods(), c.Method) {
		return fmt.Errorf("data: partition method %q unknown, want one of %s", c.Method, strings.Join(PartitionMethods(), ", "))
	}
	switch c.Method {
	case PartitionFile, PartitionNatural:
		if c.Clients < 0 {
			return fmt.Errorf("data: partition %s: %d clients, want 0 (any) or a positive number", c.Method, c.Clients)
		}
	default:
		if c.Clients < 1 {
			return fmt.Errorf("data: partition %s: %d clients, want at least 1", c.Method, c.Clients)
		}
	}
	switch c.Method {
	case PartitionDirichlet, PartitionDirichletClient:
		if !(c.Alpha > 0) || math.IsInf(c.Alpha, 0) {
			return fmt.Errorf("data: partition %s: alpha %v, want a finite value > 0", c.Method, c.Alpha)
		}
		if c.Method == PartitionDirichlet && c.MinSize < 0 {
			return fmt.Errorf("data: partition dirichlet: min_size %d, want 0 (default %d) or more", c.MinSize, DefaultMinSize)
		}
	case PartitionShards:
		if c.ShardsPerClient < 0 {
			return fmt.Errorf("data: partition shards: %d shards per client, want 0 (default %d) or more", c.ShardsPerClient, DefaultShardsPerClient)
		}
	case PartitionQuantity:
		if !(c.Sigma > 0) || math.IsInf(c.Sigma, 0) {
			return fmt.Errorf("data: partition quantity: sigma %v, want a finite value > 0", c.Sigma)
		}
	case PartitionFile:
		if c.File == "" {
			return fmt.Errorf("data: partition file: no file name, want the path of a JSON list of index lists")
		}
	case PartitionSimilarity:
		if !(c.Similarity >= 0 && c.Similarity <= 1) {
			return fmt.Errorf("data: partition similarity: similarity %v, want a share 0 <= s <= 1 (0.1 = 10%% iid)", c.Similarity)
		}
	}
	return nil
}

// Partition splits the rows 0..len(labels)-1 of a training set across
// clients by cfg. labels must lie in [0, classes). The result has one
// sorted index list per client; every method except "file" assigns every
// row to exactly one client. The result depends only on (labels, classes,
// cfg, seed): every draw comes from the rng.Partition stream of seed.
//
// "natural" cannot be computed from labels; Federated.SetPartition handles
// it.
func Partition(labels []int, classes int, cfg PartitionConfig, seed uint64) ([][]int, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := len(labels)
	if classes < 1 || classes > maxPartitionClasses {
		return nil, fmt.Errorf("data: partition: %d classes, want 1 to %d", classes, maxPartitionClasses)
	}
	for i, y := range labels {
		if y < 0 || y >= classes {
			return nil, fmt.Errorf("data: partition: label %d of row %d is outside [0, %d)", y, i, classes)
		}
	}
	if cfg.Method == PartitionNatural {
		return nil, fmt.Errorf("data: partition natural is the generator's own users and cannot be computed from labels; use Federated.SetPartition")
	}
	if cfg.Method == PartitionFile {
		return ReadPartitionFile(cfg.File, n, cfg.Clients)
	}
	if n == 0 {
		return nil, fmt.Errorf("data: partition %s: the training set is empty", cfg.Method)
	}
	if cfg.Clients > n {
		return nil, fmt.Errorf("data: partition %s: %d clients for %d training rows, want at most one client per row", cfg.Method, cfg.Clients, n)
	}
	r := rng.Stream(seed, rng.Partition, -1, -1)
	switch cfg.Method {
	case PartitionIID:
		return dealSizes(r.Perm(n), equalSizes(n, cfg.Clients)), nil
	case PartitionDirichlet:
		return dirichletPerClass(r, labels, classes, cfg)
	case PartitionDirichletClient:
		return dirichletPerClient(r, labels, classes, cfg)
	case PartitionShards:
		return shards(r, labels, classes, cfg)
	case PartitionQuantity:
		return quantity(r, n, cfg), nil
	case PartitionSimilarity:
		return similarity(r, labels, classes, cfg), nil
	}
	return nil, fmt.Errorf("data: partition method %q has no implementation", cfg.Method)
}

// SetPartition sets f.Parts by cfg. "natural" keeps the parts the generator
// made (an error if there are none, or if cfg.Clients is positive and
// differs from their number); every other method partitions f.Train's
// labels with Partition.
func (f *Federated) SetPartition(cfg PartitionConfig, seed uint64) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.Train == nil {
		return fmt.Errorf("data: %s: no training set to partition", f.Name)
	}
	if cfg.Method == PartitionNatural {
		if len(f.Parts) == 0 {
			return fmt.Errorf("data: partition natural: dataset %q has no users of its own, want a generated dataset such as synthetic", f.Name)
		}
		if cfg.Clients > 0 && cfg.Clients != len(f.Parts) {
			return fmt.Errorf("data: partition natural: dataset %q has %d users, but %d clients were asked for", f.Name, len(f.Parts), cfg.Clients)
		}
		return nil
	}
	parts, err := Partition(f.Train.Y, f.Train.Classes, cfg, seed)
	if err != nil {
		return err
	}
	f.Parts = parts
	return nil
}

// equalSizes returns n split into k near-equal sizes, the larger ones first.
func equalSizes(n, k int) []int {
	s := make([]int, k)
	for i := range s {
		s[i] = n / k
		if i < n%k {
			s[i]++
		}
	}
	return s
}

// dealSizes cuts order into consecutive chunks of the given sizes and
// returns each chunk sorted.
func dealSizes(order []int, sizes []int) [][]int {
	parts := make([][]int, len(sizes))
	at := 0
	for i, s := range sizes {
		parts[i] = slices.Clone(order[at : at+s])
		slices.Sort(parts[i])
		at += s
	}
	return parts
}

// rowsByClass lists the rows of every class in increasing order.
func rowsByClass(labels []int, classes int) [][]int {
	by := make([][]int, classes)
	for i, y := range labels {
		by[y] = append(by[y], i)
	}
	return by
}

// dirichletPerClass is NIID-Bench's "noniid-labeldir" split: for each class
// in turn, shuffle its rows, draw proportions p ~ Dir(alpha * 1_N), zero
// the clients that already hold n/N rows or more, renormalise, and cut the
// class at floor(cumsum(p) * n_k), the last client below the cap taking the
// rest; repeat the whole split until every client has at least MinSize
// rows.
func dirichletPerClass(r *rand.Rand, labels []int, classes int, cfg PartitionConfig) ([][]int, error) {
	n, N := len(labels), cfg.Clients
	minSize := cfg.MinSize
	if minSize == 0 {
		minSize = DefaultMinSize
	}
	if minSize*N > n {
		return nil, fmt.Errorf("data: partition dirichlet: %d clients x min_size %d needs %d rows, the training set has %d", N, minSize, minSize*N, n)
	}
	byClass := rowsByClass(labels, classes)
	capacity := float64(n) / float64(N)
	conc := make([]float64, N)
	for j := range conc {
		conc[j] = cfg.Alpha
	}
	logw := make([]float64, N)
	p := make([]float64, N)
	keep := make([]bool, N)
	smallest := 0
	for range DirichletMaxTries {
		parts := make([][]int, N)
		for k := range classes {
			idx := slices.Clone(byClass[k])
			r.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
			logDirichlet(r, conc, logw)
			if len(idx) == 0 {
				continue
			}
			for j := range keep {
				keep[j] = float64(len(parts[j])) < capacity
			}
			if !normalizeLog(logw, keep, p) {
				// Unreachable: while rows of class k are unassigned,
				// some client holds fewer than n/N rows.
				return nil, fmt.Errorf("data: partition dirichlet: every client is full with class %d unassigned", k)
			}
			// The last client still below the cap takes the rest of the
			// class. (NumPy's split gives the rest to client N-1, which
			// leaks a row to a full client when cumsum(p) rounds below 1.)
			lastOpen := N - 1
			for !keep[lastOpen] {
				lastOpen--
			}
			acc, start := 0.0, 0
			for j := range N {
				acc += p[j]
				end := int(acc * float64(len(idx)))
				if j >= lastOpen {
					end = len(idx)
				}
				end = min(max(end, start), len(idx))
				parts[j] = append(parts[j], idx[start:end]...)
				start = end
			}
		}
		smallest = n
		for _, part := range parts {
			smallest = min(smallest, len(part))
		}
		if smallest >= minSize {
			for _, part := range parts {
				slices.Sort(part)
			}
			return parts, nil
		}
	}
	return nil, fmt.Errorf("data: partition dirichlet: after %d draws a client still had fewer than min_size %d rows (%d in the last draw); raise alpha, lower min_size or use fewer clients",
		DirichletMaxTries, minSize, smallest)
}

// dirichletPerClient is Hsu et al.'s split as Flower's create_lda_partitions
// implements it: every client gets n/N rows (the first n mod N clients one
// more); client i draws q_i ~ Dir(Alpha/C, ..., Alpha/C) and then each of
// its rows' class from q_i, taking a random unused row of that class. When
// a class runs out it is zeroed and q_i renormalised, for this and every
// later client.
func dirichletPerClient(r *rand.Rand, labels []int, classes int, cfg PartitionConfig) ([][]int, error) {
	n, N := len(labels), cfg.Clients
	pools := rowsByClass(labels, classes)
	for _, pool := range pools {
		r.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	}
	open := make([]bool, classes)
	for c, pool := range pools {
		open[c] = len(pool) > 0
	}
	conc := make([]float64, classes)
	for c := range conc {
		conc[c] = cfg.Alpha / float64(classes)
	}
	logq := make([]float64, classes)
	q := make([]float64, classes)
	parts := make([][]int, N)
	for i, size := range equalSizes(n, N) {
		logDirichlet(r, conc, logq)
		normalizeLog(logq, open, q)
		part := make([]int, 0, size)
		for range size {
			c := categorical(r, q)
			if c < 0 {
				// Unreachable: the sizes add up to the rows available.
				return nil, fmt.Errorf("data: partition dirichlet-client: ran out of rows at client %d", i)
			}
			last := len(pools[c]) - 1
			part = append(part, pools[c][last])
			pools[c] = pools[c][:last]
			if last == 0 {
				open[c] = false
				normalizeLog(logq, open, q)
			}
		}
		slices.Sort(part)
		parts[i] = part
	}
	return parts, nil
}

// shardOrder returns the rows stably sorted by label and the bounds of
// numShards near-equal consecutive shards of that order (the larger ones
// first): shard s is order[bounds[s]:bounds[s+1]].
func shardOrder(labels []int, classes, numShards int) (order, bounds []int) {
	order = slices.Concat(rowsByClass(labels, classes)...)
	bounds = make([]int, numShards+1)
	for s, size := range equalSizes(len(labels), numShards) {
		bounds[s+1] = bounds[s] + size
	}
	return order, bounds
}

// shards is McMahan et al.'s pathological split: stable sort by label, cut
// into N*ShardsPerClient shards of n/(N*ShardsPerClient) rows (when that
// does not divide, the first shards take one row more) and deal them at
// random, ShardsPerClient to each client.
func shards(r *rand.Rand, labels []int, classes int, cfg PartitionConfig) ([][]int, error) {
	per := cfg.ShardsPerClient
	if per == 0 {
		per = DefaultShardsPerClient
	}
	N := cfg.Clients
	numShards := N * per
	if numShards > len(labels) {
		return nil, fmt.Errorf("data: partition shards: %d clients x %d shards = %d shards for %d training rows, want at least one row per shard",
			N, per, numShards, len(labels))
	}
	order, bounds := shardOrder(labels, classes, numShards)
	deal := r.Perm(numShards)
	parts := make([][]int, N)
	for i := range parts {
		for _, s := range deal[i*per : (i+1)*per] {
			parts[i] = append(parts[i], order[bounds[s]:bounds[s+1]]...)
		}
		slices.Sort(parts[i])
	}
	return parts, nil
}

// quantitySizes draws client sizes proportional to lognormal(0, sigma)
// weights, scaled so that they add up to n with every client at least 1:
// each client gets 1 + floor(w_i (n - N)), and the rows left over go one
// each to the largest fractional parts (ties to the lower client).
func quantitySizes(r *rand.Rand, n int, cfg PartitionConfig) []int {
	N := cfg.Clients
	logw := make([]float64, N)
	for i := range logw {
		logw[i] = cfg.Sigma * r.NormFloat64()
	}
	w := make([]float64, N)
	normalizeLog(logw, nil, w)
	sizes := make([]int, N)
	frac := make([]float64, N)
	left := n
	for i := range sizes {
		raw := w[i] * float64(n-N)
		fl := math.Floor(raw)
		sizes[i] = 1 + int(fl)
		frac[i] = raw - fl
		left -= sizes[i]
	}
	byFrac := make([]int, N)
	for i := range byFrac {
		byFrac[i] = i
	}
	slices.SortStableFunc(byFrac, func(a, b int) int { return cmp.Compare(frac[b], frac[a]) })
	for k := 0; left > 0; k = (k + 1) % N {
		sizes[byFrac[k]]++
		left--
	}
	// Rounding cannot make the floors overshoot by a whole row, but if it
	// did, take rows back from the smallest fractional parts.
	for k := N - 1; left < 0; k = (k + N - 1) % N {
		if sizes[byFrac[k]] > 1 {
			sizes[byFrac[k]]--
			left++
		}
	}
	return sizes
}

// quantity deals a random permutation of the rows into lognormal sizes.
func quantity(r *rand.Rand, n int, cfg PartitionConfig) [][]int {
	sizes := quantitySizes(r, n, cfg)
	return dealSizes(r.Perm(n), sizes)
}
