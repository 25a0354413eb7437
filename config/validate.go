package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Names accepted by the string keys.
var (
	DataNames   = []string{"mnist", "synthetic", "npy"}
	Partitions  = []string{"iid", "dirichlet", "dirichlet-client", "shards", "quantity", "natural", "file", "similarity"}
	ModelNames  = []string{"mlp", "softmax"}
	InitNames   = []string{"zeros", "glorot", "he"}
	AlgoNames   = []string{"fedavg", "scaffold"}
	OptionNames = []string{"I", "II"}
	Weightings  = []string{"uniform", "samples"}
	Optimizers  = []string{"sgd", "adam", "yogi", "adagrad"}
)

// Validate checks every key's range and the combinations of keys that the
// config alone can judge. It names the key and what is allowed.
func (c Config) Validate() error {
	var errs []string
	bad := func(key string, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	oneOf := func(key, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			bad(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	positive := func(key string, x float64) {
		if !(x > 0) || !finite(x) {
			bad(key, "%v, want a finite number above 0", x)
		}
	}
	nonNegative := func(key string, x float64) {
		if !(x >= 0) || !finite(x) {
			bad(key, "%v, want a finite number >= 0", x)
		}
	}
	unit := func(key string, x float64) { // [0, 1)
		if !(x >= 0 && x < 1) {
			bad(key, "%v, want 0 <= %s < 1", x, key[strings.LastIndex(key, ".")+1:])
		}
	}

	if c.Rounds < 1 {
		bad("rounds", "%d, want at least 1", c.Rounds)
	}
	if c.Clients < 1 {
		bad("clients", "%d, want at least 1", c.Clients)
	}
	if c.Participation < 1 || c.Participation > c.Clients {
		bad("participation", "%d, want 1 <= participation <= clients (%d)", c.Participation, c.Clients)
	}

	d := c.Data
	oneOf("data.name", d.Name, DataNames)
	oneOf("data.partition", d.Partition, Partitions)
	switch d.Partition {
	case "dirichlet", "dirichlet-client":
		positive("data.alpha", d.Alpha)
	case "file":
		if d.PartitionFile == "" {
			bad("data.partition_file", "missing: partition: file needs the path of a JSON list of index lists")
		}
	case "natural":
		if d.Name != "synthetic" {
			bad("data.partition", "natural is the generator's own users and needs data.name: synthetic")
		}
	case "shards":
		if d.ShardsPerClient < 1 {
			bad("data.shards_per_client", "%d, want at least 1", d.ShardsPerClient)
		}
	case "quantity":
		positive("data.sigma", d.Sigma)
	case "similarity":
		if !(d.Similarity >= 0 && d.Similarity <= 1) {
			bad("data.similarity", "%v, want a share 0 <= similarity <= 1 (0.1 = 10%% of every client's rows iid)", d.Similarity)
		}
	}
	if d.MinSize < 1 {
		bad("data.min_size", "%d, want at least 1", d.MinSize)
	}
	if d.Name == "npy" && d.Dir == "" {
		bad("data.dir", "missing: data.name npy reads train_x.npy, train_y.npy, test_x.npy and test_y.npy from this directory")
	}
	if d.Name == "synthetic" {
		nonNegative("data.synthetic.alpha", d.Synthetic.Alpha)
		nonNegative("data.synthetic.beta", d.Synthetic.Beta)
	}

	m := c.Model
	oneOf("model.name", m.Name, ModelNames)
	oneOf("model.init", m.Init, InitNames)
	for i, h := range m.Hidden {
		if h < 1 {
			bad(fmt.Sprintf("model.hidden[%d]", i), "%d, want at least 1 unit", h)
		}
	}
	if m.Name == "mlp" && len(m.Hidden) == 0 {
		bad("model.hidden", "empty: an mlp needs at least one hidden layer (use model.name: softmax for none)")
	}
	nonNegative("model.l2", m.L2)

	l := c.Local
	if l.Steps < 1 {
		bad("local.steps", "%d, want at least 1", l.Steps)
	}
	if l.Batch < 0 {
		bad("local.batch", "%d, want 0 (the whole shard) or a positive batch size", l.Batch)
	}
	positive("local.lr", l.LR)
	unit("local.momentum", l.Momentum)

	a := c.Algorithm
	oneOf("algorithm.name", a.Name, AlgoNames)
	oneOf("algorithm.option", a.Option, OptionNames)
	oneOf("algorithm.weighting", a.Weighting, Weightings)
	if !(a.Momentum.Beta > 0 && a.Momentum.Beta <= 1) {
		bad("algorithm.momentum.beta", "%v, want 0 < beta <= 1 (beta weights the fresh gradient; 1 = no client momentum)", a.Momentum.Beta)
	}
	nonNegative("algorithm.prox_mu", a.ProxMu)

	s := c.Server
	oneOf("server.optimizer", s.Optimizer, Optimizers)
	positive("server.lr", s.LR)
	unit("server.momentum", s.Momentum)
	unit("server.beta1", s.Beta1)
	unit("server.beta2", s.Beta2)
	positive("server.tau", s.Tau)

	if c.Eval.Every < 0 {
		bad("eval.every", "%d, want 0 (only after the last round) or a positive number of rounds", c.Eval.Every)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}
