package data

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testLabels returns n labels over classes, shuffled by a fixed stream.
// Class c has roughly weight (1 + c/classes) so counts are unequal.
func testLabels(n, classes int, balanced bool) []int {
	y := make([]int, n)
	if balanced {
		for i := range y {
			y[i] = i % classes
		}
	} else {
		total := 0.0
		for c := range classes {
			total += 1 + float64(c)/float64(classes)
		}
		i := 0
		for c := range classes {
			k := int(float64(n) * (1 + float64(c)/float64(classes)) / total)
			for ; k > 0 && i < n; k-- {
				y[i] = c
				i++
			}
		}
		for ; i < n; i++ {
			y[i] = classes - 1
		}
	}
	r := rand.New(rand.NewPCG(7, 11))
	r.Shuffle(n, func(a, b int) { y[a], y[b] = y[b], y[a] })
	return y
}

// checkCover fails unless parts are sorted, non-empty, and assign every row
// in [0, n) exactly once, and the per-class counts add up to the dataset's.
func checkCover(t *testing.T, parts [][]int, labels []int, classes, clients int) {
	t.Helper()
	if len(parts) != clients {
		t.Fatalf("%d parts, want %d", len(parts), clients)
	}
	seen := make([]int, len(labels))
	sum := make([]int, classes)
	for i, p := range parts {
		if len(p) == 0 {
			t.Fatalf("client %d is empty", i)
		}
		if !slices.IsSorted(p) {
			t.Fatalf("client %d's rows are not sorted", i)
		}
		for _, x := range p {
			if x < 0 || x >= len(labels) {
				t.Fatalf("client %d has row %d outside [0, %d)", i, x, len(labels))
			}
			seen[x]++
			sum[labels[x]]++
		}
	}
	for x, k := range seen {
		if k != 1 {
			t.Fatalf("row %d assigned %d times, want exactly once", x, k)
		}
	}
	if want := classCounts(labels, classes); !slices.Equal(sum, want) {
		t.Fatalf("per-class counts summed over clients %v, want the dataset's %v", sum, want)
	}
}

func partitionConfigs(clients int) []PartitionConfig {
	return []PartitionConfig{
		{Method: "iid", Clients: clients},
		{Method: "dirichlet", Clients: clients, Alpha: 0.3},
		{Method: "dirichlet-client", Clients: clients, Alpha: 1},
		{Method: "shards", Clients: clients},
		{Method: "shards", Clients: clients, ShardsPerClient: 3},
		{Method: "quantity", Clients: clients, Sigma: 1},
	}
}

func TestPartitionCoversEveryRowOnceAndIsDeterministic(t *testing.T) {
	const classes = 10
	for _, n := range []int{6000, 6007} {
		labels := testLabels(n, classes, false)
		for _, cfg := range partitionConfigs(30) {
			a, err := Partition(labels, classes, cfg, 42)
			if err != nil {
				t.Fatalf("%+v: %v", cfg, err)
			}
			checkCover(t, a, labels, classes, cfg.Clients)
			b, err := Partition(labels, classes, cfg, 42)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: the same seed gave different partitions", cfg.Method)
			}
			c, err := Partition(labels, classes, cfg, 43)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(a, c) {
				t.Fatalf("%s: seeds 42 and 43 gave the same partition", cfg.Method)
			}
		}
	}
}

func TestPartitionIIDSizes(t *testing.T) {
	labels := testLabels(6007, 10, false)
	parts, err := Partition(labels, 10, PartitionConfig{Method: "iid", Clients: 20}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		want := 300
		if i < 7 {
			want = 301
		}
		if len(p) != want {
			t.Fatalf("client %d has %d rows, want %d", i, len(p), want)
		}
	}
	// IID content: every client sees most classes.
	for i, p := range parts {
		if k := numLabels(p, labels); k < 8 {
			t.Fatalf("iid client %d has only %d labels", i, k)
		}
	}
}

func numLabels(part, labels []int) int {
	seen := map[int]bool{}
	for _, x := range part {
		seen[labels[x]] = true
	}
	return len(seen)
}

// meanTV is the mean over clients of the total-variation distance between
// the client's class histogram and the uniform one.
func meanTV(parts [][]int, labels []int, classes int) (mean, worst float64) {
	for _, p := range parts {
		h := make([]float64, classes)
		for _, x := range p {
			h[labels[x]]++
		}
		tv := 0.0
		for _, v := range h {
			tv += math.Abs(v/float64(len(p)) - 1/float64(classes))
		}
		tv /= 2
		mean += tv
		worst = max(worst, tv)
	}
	return mean / float64(len(parts)), worst
}

func TestPartitionDirichletMinSize(t *testing.T) {
	const classes = 10
	labels := testLabels(6000, classes, false)
	for _, tc := range []struct {
		alpha   float64
		minSize int
		want    int
	}{{0.1, 0, 10}, {0.5, 0, 10}, {0.3, 40, 40}} {
		cfg := PartitionConfig{Method: "dirichlet", Clients: 50, Alpha: tc.alpha, MinSize: tc.minSize}
		parts, err := Partition(labels, classes, cfg, 5)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		checkCover(t, parts, labels, classes, 50)
		sizes := map[int]bool{}
		for i, p := range parts {
			if len(p) < tc.want {
				t.Fatalf("alpha %v: client %d has %d rows, want >= %d", tc.alpha, i, len(p), tc.want)
			}
			sizes[len(p)] = true
		}
		if len(sizes) < 5 {
			t.Fatalf("alpha %v: only %d distinct client sizes; the per-class split should skew quantities", tc.alpha, len(sizes))
		}
	}
}

func TestPartitionDirichletHeterogeneity(t *testing.T) {
	const classes = 10
	labels := testLabels(10000, classes, true)
	skew := func(alpha float64) float64 {
		parts, err := Partition(labels, classes, PartitionConfig{Method: "dirichlet", Clients: 20, Alpha: alpha}, 9)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := meanTV(parts, labels, classes)
		return m
	}
	low, high := skew(0.1), skew(1000)
	if !(low > 0.5 && high < 0.1) {
		t.Fatalf("mean TV from uniform: alpha 0.1 gives %.3f (want > 0.5), alpha 1000 gives %.3f (want < 0.1)", low, high)
	}
}

func TestPartitionDirichletFailsClearly(t *testing.T) {
	labels := testLabels(2000, 10, false)
	// Tiny alpha gives each class to about one client: 100 clients can
	// never all reach 10 rows.
	_, err := Partition(labels, 10, PartitionConfig{Method: "dirichlet", Clients: 100, Alpha: 1e-4}, 1)
	if err == nil || !strings.Contains(err.Error(), "after 1000 draws") || !strings.HasPrefix(err.Error(), "data: ") {
		t.Fatalf("error %v, want one saying the 1000 draws failed", err)
	}
	_, err = Partition(labels, 10, PartitionConfig{Method: "dirichlet", Clients: 100, Alpha: 1, MinSize: 30}, 1)
	if err == nil || !strings.Contains(err.Error(), "needs 3000 rows") {
		t.Fatalf("error %v, want one saying 100 x 30 rows exceed the training set", err)
	}
}

func TestPartitionDirichletClient(t *testing.T) {
	const classes = 10
	labels := testLabels(6000, classes, true)

	// Equal sizes, the remainder one each to the first clients.
	odd := testLabels(6013, classes, false)
	parts, err := Partition(odd, classes, PartitionConfig{Method: "dirichlet-client", Clients: 20, Alpha: 0.5}, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkCover(t, parts, odd, classes, 20)
	for i, p := range parts {
		want := 300
		if i < 13 {
			want = 301
		}
		if len(p) != want {
			t.Fatalf("client %d has %d rows, want %d", i, len(p), want)
		}
	}

	// alpha -> inf: q is uniform, so the histograms differ from uniform only
	// by sampling noise, as much as an iid split's do. The last clients
	// take what is left when classes run out, so leave them out.
	iid, err := Partition(labels, classes, PartitionConfig{Method: "iid", Clients: 20}, 3)
	if err != nil {
		t.Fatal(err)
	}
	iidTV, _ := meanTV(iid, labels, classes)
	parts, err = Partition(labels, classes, PartitionConfig{Method: "dirichlet-client", Clients: 20, Alpha: 1e6}, 3)
	if err != nil {
		t.Fatal(err)
	}
	bigTV, _ := meanTV(parts[:17], labels, classes)
	if bigTV > 1.3*iidTV+0.01 {
		t.Fatalf("alpha 1e6: mean TV from uniform %.3f, want about the iid split's %.3f", bigTV, iidTV)
	}

	// alpha -> 0: one class per client, except the few clients that were
	// drawing when a class ran out (at most one per class).
	const clients = 100
	parts, err = Partition(labels, classes, PartitionConfig{Method: "dirichlet-client", Clients: clients, Alpha: 1e-4}, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkCover(t, parts, labels, classes, clients)
	multi := 0
	for _, p := range parts {
		if numLabels(p, labels) > 1 {
			multi++
		}
	}
	if multi > classes-1 {
		t.Fatalf("alpha 1e-4: %d of %d clients hold more than one class, want at most %d", multi, clients, classes-1)
	}
	// The per-class concentration is alpha/C: alpha 1 is Dir(0.1, ...),
	// whose mean TV from uniform is about 0.7 (Dir(1, ...), the Flower
	// scaling, gives about 0.35).
	parts, err = Partition(labels, classes, PartitionConfig{Method: "dirichlet-client", Clients: 20, Alpha: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := meanTV(parts, labels, classes); m < 0.55 {
		t.Fatalf("alpha 1 (0.1 per class): mean TV %.3f, want the skew of Dir(0.1) (> 0.55)", m)
	} else {
		t.Logf("mean TV from uniform: iid %.3f, alpha 1e6 %.3f, alpha 1 %.3f", iidTV, bigTV, m)
	}
}

// checkShardStructure checks that every client's rows are exactly `per`
// whole shards of the stable label order.
func checkShardStructure(t *testing.T, parts [][]int, labels []int, classes, per int) {
	t.Helper()
	order, bounds := shardOrder(labels, classes, len(parts)*per)
	shardOf := make([]int, len(labels))
	for s := 0; s+1 < len(bounds); s++ {
		for _, x := range order[bounds[s]:bounds[s+1]] {
			shardOf[x] = s
		}
	}
	for i, p := range parts {
		count := map[int]int{}
		for _, x := range p {
			count[shardOf[x]]++
		}
		if len(count) != per {
			t.Fatalf("client %d holds pieces of %d shards, want %d", i, len(count), per)
		}
		for s, k := range count {
			if k != bounds[s+1]-bounds[s] {
				t.Fatalf("client %d holds %d rows of shard %d, want the whole shard (%d)", i, k, s, bounds[s+1]-bounds[s])
			}
		}
	}
}

func TestPartitionShardsSynthetic(t *testing.T) {
	const classes = 10
	for _, n := range []int{6000, 6001} {
		labels := testLabels(n, classes, false)
		for _, per := range []int{0, 2, 3} {
			cfg := PartitionConfig{Method: "shards", Clients: 50, ShardsPerClient: per}
			parts, err := Partition(labels, classes, cfg, 8)
			if err != nil {
				t.Fatal(err)
			}
			checkCover(t, parts, labels, classes, 50)
			if per == 0 {
				per = 2
			}
			checkShardStructure(t, parts, labels, classes, per)
		}
	}
	// Shards are contiguous in the stable sort: within a shard, rows of the
	// same label keep their original order.
	labels := testLabels(100, 2, false)
	order, _ := shardOrder(labels, 2, 4)
	for k := 1; k < len(order); k++ {
		a, b := order[k-1], order[k]
		if labels[a] > labels[b] || (labels[a] == labels[b] && a > b) {
			t.Fatalf("shard order is not a stable sort by label at %d", k)
		}
	}
	if _, err := Partition(labels, 2, PartitionConfig{Method: "shards", Clients: 60}, 1); err == nil {
		t.Fatal("no error for 120 shards of 100 rows")
	}
}

func TestPartitionShardsRealMNIST(t *testing.T) {
	labels := realMNISTTrainLabels(t)
	const clients, per = 100, 2
	_, bounds := shardOrder(labels, 10, clients*per)
	order, _ := shardOrder(labels, 10, clients*per)
	twoLabel := 0
	for s := 0; s < clients*per; s++ {
		if bounds[s+1]-bounds[s] != 300 {
			t.Fatalf("shard %d has %d rows, want 300", s, bounds[s+1]-bounds[s])
		}
		switch k := numLabels(order[bounds[s]:bounds[s+1]], labels); k {
		case 1:
		case 2:
			twoLabel++
		default:
			t.Fatalf("shard %d holds %d labels", s, k)
		}
	}
	if twoLabel != 9 {
		t.Fatalf("%d shards hold 2 labels, want exactly 9 (ALGORITHMS.md 3.3)", twoLabel)
	}
	parts, err := Partition(labels, 10, PartitionConfig{Method: "shards", Clients: clients}, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkCover(t, parts, labels, 10, clients)
	checkShardStructure(t, parts, labels, 10, per)
	most := 0
	for i, p := range parts {
		if len(p) != 600 {
			t.Fatalf("client %d has %d rows, want 600", i, len(p))
		}
		k := numLabels(p, labels)
		if k < 1 || k > 4 {
			t.Fatalf("client %d has %d labels, want 1..4", i, k)
		}
		most = max(most, k)
	}
	if most <= 2 {
		t.Fatalf("no client has more than 2 labels with seed 1; the 9 straddling shards should show (P18)")
	}
}

func TestPartitionQuantity(t *testing.T) {
	labels := testLabels(5000, 10, false)
	spread := func(sigma float64, seed uint64) (cv float64, sizes []int) {
		parts, err := Partition(labels, 10, PartitionConfig{Method: "quantity", Clients: 40, Sigma: sigma}, seed)
		if err != nil {
			t.Fatal(err)
		}
		checkCover(t, parts, labels, 10, 40)
		mean := 5000.0 / 40
		for _, p := range parts {
			sizes = append(sizes, len(p))
			cv += (float64(len(p)) - mean) * (float64(len(p)) - mean)
		}
		return math.Sqrt(cv/40) / mean, sizes
	}
	small, large := 0.0, 0.0
	for seed := range uint64(5) {
		a, _ := spread(0.2, seed)
		b, sizes := spread(2, seed)
		small += a
		large += b
		if slices.Min(sizes) < 1 {
			t.Fatalf("a client got %d rows, want at least 1", slices.Min(sizes))
		}
	}
	if !(small > 0.05 && large > 2*small) {
		t.Fatalf("size coefficient of variation: sigma 0.2 gives %.3f, sigma 2 gives %.3f; want unequal sizes growing with sigma", small/5, large/5)
	}
	// Extreme sigma: every client still gets a row.
	parts, err := Partition(labels[:100], 10, PartitionConfig{Method: "quantity", Clients: 100, Sigma: 50}, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkCover(t, parts, labels[:100], 10, 100)
}

func TestPartitionValidate(t *testing.T) {
	bad := []struct {
		cfg  PartitionConfig
		want string
	}{
		{PartitionConfig{Method: "lda", Clients: 2}, "iid, dirichlet, dirichlet-client, shards, quantity, natural, file"},
		{PartitionConfig{Method: "iid"}, "0 clients"},
		{PartitionConfig{Method: "dirichlet", Clients: 2}, "alpha 0"},
		{PartitionConfig{Method: "dirichlet-client", Clients: 2, Alpha: math.NaN()}, "alpha NaN"},
		{PartitionConfig{Method: "dirichlet", Clients: 2, Alpha: math.Inf(1)}, "alpha +Inf"},
		{PartitionConfig{Method: "dirichlet", Clients: 2, Alpha: 1, MinSize: -1}, "min_size -1"},
		{PartitionConfig{Method: "shards", Clients: 2, ShardsPerClient: -2}, "-2 shards"},
		{PartitionConfig{Method: "quantity", Clients: 2}, "sigma 0"},
		{PartitionConfig{Method: "file", Clients: 2}, "no file name"},
		{PartitionConfig{Method: "file", Clients: -1, File: "x"}, "-1 clients"},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "data: ") || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want one containing %q", b.cfg, err, b.want)
		}
		if _, err := Partition([]int{0, 1, 0, 1}, 2, b.cfg, 1); err == nil {
			t.Errorf("%+v: Partition accepted an invalid config", b.cfg)
		}
	}
	for _, cfg := range partitionConfigs(3) {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestPartitionBadInput(t *testing.T) {
	cfg := PartitionConfig{Method: "iid", Clients: 3}
	for _, tc := range []struct {
		labels  []int
		classes int
		want    string
	}{
		{[]int{0, 1, 2, 1}, 2, "label 2 of row 2"},
		{[]int{0, -1, 1, 1}, 2, "label -1 of row 1"},
		{[]int{0, 1}, 2, "3 clients for 2 training rows"},
		{nil, 2, "empty"},
		{[]int{0, 0, 0}, 0, "0 classes"},
		{[]int{0, 0, 0}, 1 << 40, "1099511627776 classes"},
	} {
		_, err := Partition(tc.labels, tc.classes, cfg, 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("labels %v: error %v, want one containing %q", tc.labels, err, tc.want)
		}
	}
	if _, err := Partition([]int{0, 1}, 2, PartitionConfig{Method: "natural"}, 1); err == nil {
		t.Error("Partition computed a natural partition from labels")
	}
}

func TestSetPartition(t *testing.T) {
	labels := testLabels(200, 4, false)
	f := &Federated{Name: "toy", Train: &Dataset{X: make([]float64, 200), Y: labels, D: 1, Classes: 4}}
	if err := f.SetPartition(PartitionConfig{Method: "natural"}, 1); err == nil {
		t.Fatal("natural accepted a dataset without users")
	}
	if err := f.SetPartition(PartitionConfig{Method: "dirichlet", Clients: 5, Alpha: 1}, 1); err != nil {
		t.Fatal(err)
	}
	checkCover(t, f.Parts, labels, 4, 5)
	if err := f.SetPartition(PartitionConfig{Method: "natural", Clients: 5}, 1); err != nil {
		t.Fatalf("natural with the generator's 5 users: %v", err)
	}
	if err := f.SetPartition(PartitionConfig{Method: "natural", Clients: 6}, 1); err == nil {
		t.Fatal("natural accepted 6 clients for 5 users")
	}
}

func TestPartitionFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "parts.json")
	labels := testLabels(500, 5, false)
	parts, err := Partition(labels, 5, PartitionConfig{Method: "dirichlet", Clients: 7, Alpha: 0.5}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePartitionFile(path, parts); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "[[") || !strings.HasSuffix(string(raw), "]]\n") || strings.Contains(string(raw), " ") {
		t.Fatalf("file starts %q and ends %q, want the compact [[...],...] form", raw[:10], raw[len(raw)-5:])
	}
	for _, clients := range []int{0, 7} {
		got, err := Partition(labels, 5, PartitionConfig{Method: "file", Clients: clients, File: path}, 99)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, parts) {
			t.Fatal("the partition read back differs from the one written")
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the directory after an atomic write, want 1", len(entries))
	}
	// Unsorted lists are fine and come back sorted; unassigned rows too.
	writeFile(t, path, []byte(`[[3,1],[0]]`))
	got, err := ReadPartitionFile(path, 5, 2)
	if err != nil || !reflect.DeepEqual(got, [][]int{{1, 3}, {0}}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := WritePartitionFile(path, [][]int{{0, -1}}); err == nil {
		t.Fatal("WritePartitionFile accepted a negative index")
	}
	if err := WritePartitionFile(filepath.Join(dir, "no", "such", "dir.json"), parts); err == nil {
		t.Fatal("WritePartitionFile into a missing directory succeeded")
	}
}

func TestPartitionFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		body    string
		clients int
		want    string
	}{
		{`[[0,1],[2,9]]`, 0, "client 1 lists row 9, want an index in [0, 5)"},
		{`[[0,1],[-1]]`, 0, "row -1"},
		{`[[0,1],[1,2]]`, 0, "row 1 is in clients 0 and 1"},
		{`[[0,1,0]]`, 0, "client 0 lists row 0 twice"},
		{`[[0,1],[]]`, 0, "client 1 has no rows"},
		{`[[0,1],null]`, 0, "client 1 has no rows"},
		{`[[0,1],[2]]`, 3, "lists 2 clients, want 3"},
		{`[]`, 0, "no clients"},
		{`{"a":1}`, 0, "want a JSON list of lists"},
		{`[[0,1.5]]`, 0, "want a JSON list of lists"},
		{`[[0,1]`, 0, "want a JSON list of lists"},
		{``, 0, "want a JSON list of lists"},
		{`[[0,1]] [[2]]`, 0, "unexpected data after"},
	} {
		path := filepath.Join(dir, "p.json")
		writeFile(t, path, []byte(tc.body))
		_, err := ReadPartitionFile(path, 5, tc.clients)
		if err == nil || !strings.HasPrefix(err.Error(), "data: partition file") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.body, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v does not name the file", tc.body, err)
		}
	}
	if _, err := ReadPartitionFile(filepath.Join(dir, "missing.json"), 5, 0); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestSamplers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, a := range []float64{0.05, 0.5, 1, 3} {
		const k = 40000
		sum := 0.0
		for range k {
			sum += math.Exp(logGamma(r, a))
		}
		mean := sum / k
		// Gamma(a, 1) has mean a and sd sqrt(a): 5 standard errors.
		if tol := 5 * math.Sqrt(a/k); math.Abs(mean-a) > tol {
			t.Errorf("Gamma(%v) sample mean %v, want %v +- %v", a, mean, a, tol)
		}
	}
	// Tiny shapes: finite log weights and a one-hot Dirichlet.
	logw := make([]float64, 10)
	p := make([]float64, 10)
	conc := slices.Repeat([]float64{1e-5}, 10)
	logDirichlet(r, conc, logw)
	for _, l := range logw {
		if math.IsInf(l, 0) || math.IsNaN(l) {
			t.Fatalf("log weight %v for shape 1e-5", l)
		}
	}
	normalizeLog(logw, nil, p)
	if slices.Max(p) != 1 {
		t.Fatalf("Dirichlet(1e-5) draw %v, want one-hot", p)
	}
	keep := make([]bool, 10)
	if normalizeLog(logw, keep, p) {
		t.Fatal("normalizeLog with nothing kept reported success")
	}
	// categorical follows p and never picks a zero.
	q := []float64{0.2, 0, 0.5, 0.3}
	hits := make([]float64, 4)
	for range 20000 {
		hits[categorical(r, q)]++
	}
	for i := range q {
		if math.Abs(hits[i]/20000-q[i]) > 0.02 {
			t.Fatalf("categorical frequencies %v, want about %v", hits, q)
		}
	}
}

// TestPartitionDirichletBalanceCap checks NIID-Bench's cap: classes are
// split in order 0, 1, ..., and a client that already holds n/N rows gets
// nothing of the later classes.
func TestPartitionDirichletBalanceCap(t *testing.T) {
	const classes, clients = 10, 20
	labels := testLabels(8000, classes, false)
	capacity := float64(len(labels)) / clients
	for _, alpha := range []float64{0.05, 0.3} {
		parts, err := Partition(labels, classes, PartitionConfig{Method: "dirichlet", Clients: clients, Alpha: alpha}, 4)
		if err != nil {
			t.Fatal(err)
		}
		capped := 0
		for i, p := range parts {
			h := make([]int, classes)
			for _, x := range p {
				h[labels[x]]++
			}
			held := 0
			for k := range classes {
				if float64(held) >= capacity {
					capped++
					if h[k] > 0 {
						t.Fatalf("alpha %v: client %d held %d >= n/N = %v rows before class %d but got %d of it", alpha, i, held, capacity, k, h[k])
					}
				}
				held += h[k]
			}
		}
		if alpha == 0.05 && capped == 0 {
			t.Fatalf("alpha %v: no client reached the cap; the test checks nothing", alpha)
		}
	}
}
