package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fedmo/fedmo/config"
)

// Point is one setting of an experiment: the runs that differ only in
// their seed.
type Point struct {
	Label  string   // the legend label
	Values []string // the point's value of each of Points.Keys
	Runs   []Run
}

// Points are runs grouped into points, with what tables and titles show of
// them.
type Points struct {
	Keys   []string // the table columns that tell the points apart
	Points []Point
	Common string // what every point shares, for titles; "" if unknown
}

// KeyValue is one leaf of a config: its dotted key (as --set takes it) and
// its value in YAML flow syntax.
type KeyValue struct{ Key, Value string }

// Flatten lists every key of c in the order of the config file, with its
// value in YAML flow syntax (lists as [a, b]).
func Flatten(c config.Config) []KeyValue {
	var doc yaml.Node
	if err := yaml.Unmarshal(c.YAML(), &doc); err != nil || len(doc.Content) == 0 {
		return nil // unreachable: the config's own YAML parses
	}
	var out []KeyValue
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(n.Content[i+1], k)
			}
			return
		}
		out = append(out, KeyValue{prefix, FlowYAML(n)})
	}
	walk(doc.Content[0], "")
	return out
}

// FlowYAML writes a YAML node in flow syntax on one line: a scalar as its
// text, a list as [a, b], a mapping as {k: v}.
func FlowYAML(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	c := *n
	setFlow(&c)
	b, err := yaml.Marshal(&c)
	if err != nil {
		return n.Value
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for i, c := range n.Content {
		cc := *c
		setFlow(&cc)
		n.Content[i] = &cc
	}
}

// isAlgorithmKey reports whether a key selects the algorithm (rather than
// a hyperparameter of the run), so that AlgorithmName tells its values apart.
func isAlgorithmKey(k string) bool {
	switch k {
	case "algorithm.name", "algorithm.option", "algorithm.momentum.beta", "algorithm.momentum.vr", "algorithm.prox_mu",
		"algorithm.weighting", "local.momentum", "server.optimizer", "server.momentum", "server.nesterov":
		return true
	}
	return false
}

// AlgorithmName names the algorithm of c as the papers do: FedAvg,
// FedProx, SCAFFOLD, FedAvg-M, SCAFFOLD-M-VR, ..., with the server
// optimizer and the parameters that set it apart, for example
// "FedAvg-M (beta=0.1) + server Nesterov 0.9".
func AlgorithmName(c config.Config) string {
	a := c.Algorithm
	name := "FedAvg"
	if a.Name == "scaffold" {
		name = "SCAFFOLD"
	}
	var params, extras []string
	if a.Momentum.Beta < 1 {
		name += "-M"
		if a.Momentum.VR {
			name += "-VR"
		}
		params = append(params, "beta="+num(a.Momentum.Beta))
	}
	if a.Name == "fedavg" && a.ProxMu > 0 {
		if a.Momentum.Beta < 1 {
			extras = append(extras, "prox")
		} else {
			name = "FedProx"
		}
		params = append(params, "mu="+num(a.ProxMu))
	}
	if a.Name == "scaffold" && a.Option == "I" {
		params = append(params, "option I")
	}
	if a.Weighting == "samples" {
		params = append(params, "n_i weights")
	}
	if c.Local.Momentum > 0 {
		extras = append(extras, "local heavy ball "+num(c.Local.Momentum))
	}
	switch s := c.Server; s.Optimizer {
	case "adam":
		extras = append(extras, "FedAdam")
	case "yogi":
		extras = append(extras, "FedYogi")
	case "adagrad":
		extras = append(extras, "FedAdagrad")
	default:
		if s.Momentum > 0 {
			kind := "heavy ball"
			if s.Nesterov {
				kind = "Nesterov"
			}
			extras = append(extras, "server "+kind+" "+num(s.Momentum))
		}
	}
	if len(params) > 0 {
		name += " (" + strings.Join(params, ", ") + ")"
	}
	for _, e := range extras {
		name += " + " + e
	}
	return name
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// ByConfig groups runs that differ only in their seed into points. The
// table keys are the config keys whose values differ between points; a
// point's label is AlgorithmName when the algorithm keys differ, followed
// by key=value for the other keys that differ. Points are sorted by their
// values (numbers numerically), runs within a point by seed. Runs without
// a config are grouped by their label.
func ByConfig(runs []Run) Points {
	type group struct {
		key  string
		cfg  *config.Config
		flat map[string]string
		runs []Run
	}
	var groups []*group
	index := map[string]*group{}
	for _, r := range runs {
		key := "label:" + r.Label
		if r.Config != nil {
			c := *r.Config
			c.Seed = 0
			key = "config:" + c.Hash()
		}
		g, ok := index[key]
		if !ok {
			g = &group{key: key, cfg: r.Config}
			index[key] = g
			groups = append(groups, g)
		}
		g.runs = append(g.runs, r)
	}
	var order []string // every key, in config order
	have := map[string]bool{}
	for _, g := range groups {
		g.flat = map[string]string{}
		if g.cfg == nil {
			continue
		}
		for _, kv := range Flatten(*g.cfg) {
			g.flat[kv.Key] = kv.Value
			if !have[kv.Key] {
				have[kv.Key] = true
				order = append(order, kv.Key)
			}
		}
	}
	var ps Points
	differs := map[string]bool{}
	for _, k := range order {
		if k == "seed" {
			continue
		}
		for _, g := range groups[1:] {
			if g.flat[k] != groups[0].flat[k] {
				differs[k] = true
				ps.Keys = append(ps.Keys, k)
				break
			}
		}
	}
	algoDiffers := slices.ContainsFunc(ps.Keys, isAlgorithmKey)
	for _, g := range groups {
		p := Point{Runs: g.runs}
		var parts []string
		if g.cfg != nil && (algoDiffers || len(ps.Keys) == 0) {
			parts = append(parts, AlgorithmName(*g.cfg))
		}
		for _, k := range ps.Keys {
			p.Values = append(p.Values, g.flat[k])
			if !isAlgorithmKey(k) {
				parts = append(parts, k+"="+g.flat[k])
			}
		}
		p.Label = strings.Join(parts, ", ")
		if g.cfg == nil {
			p.Label = g.runs[0].Label
		}
		slices.SortStableFunc(p.Runs, func(a, b Run) int { return cmp.Compare(seedOf(a), seedOf(b)) })
		ps.Points = append(ps.Points, p)
	}
	slices.SortStableFunc(ps.Points, func(a, b Point) int {
		for i := range a.Values {
			if c := CompareValues(a.Values[i], b.Values[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	if len(groups) > 0 && groups[0].cfg != nil {
		ps.Common = Describe(*groups[0].cfg, differs)
	}
	return ps
}

func seedOf(r Run) uint64 {
	if r.Config == nil {
		return 0
	}
	return r.Config.Seed
}

// CompareValues orders two config values: numerically when both are
// numbers, as strings otherwise.
func CompareValues(a, b string) int {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// Describe says in one line what a run of c is, leaving out the parts that
// depend on a key in skip (they differ between the runs being described):
// the data and its partition, the model, N, S, K, B, the learning rate,
// the rounds and the algorithm.
func Describe(c config.Config, skip map[string]bool) string {
	anySkipped := func(keys ...string) bool {
		for _, k := range keys {
			if skip[k] {
				return true
			}
		}
		return false
	}
	var items []string
	add := func(s string, keys ...string) {
		if !anySkipped(keys...) {
			items = append(items, s)
		}
	}
	d := c.Data
	switch d.Name {
	case "synthetic":
		s := fmt.Sprintf("Synthetic(%s, %s)", num(d.Synthetic.Alpha), num(d.Synthetic.Beta))
		if d.Synthetic.IID {
			s = "Synthetic IID"
		}
		add(s, "data.name", "data.synthetic.alpha", "data.synthetic.beta", "data.synthetic.iid")
	case "mnist":
		add("MNIST", "data.name")
	default:
		add(d.Name, "data.name")
	}
	switch d.Partition {
	case "dirichlet", "dirichlet-client":
		add(d.Partition+" alpha="+num(d.Alpha), "data.partition", "data.alpha")
	case "shards":
		add(fmt.Sprintf("shards (%d per client)", d.ShardsPerClient), "data.partition", "data.shards_per_client")
	case "quantity":
		add("quantity sigma="+num(d.Sigma), "data.partition", "data.sigma")
	case "similarity":
		add(fmt.Sprintf("%s%% similarity", num(100*d.Similarity)), "data.partition", "data.similarity")
	case "natural":
	default:
		add(d.Partition, "data.partition")
	}
	if c.Model.Name == "mlp" {
		h := make([]string, len(c.Model.Hidden))
		for i, w := range c.Model.Hidden {
			h[i] = strconv.Itoa(w)
		}
		add("MLP ["+strings.Join(h, ", ")+"]", "model.name", "model.hidden")
	} else {
		add("softmax regression", "model.name")
	}
	add(fmt.Sprintf("N=%d", c.Clients), "clients")
	add(fmt.Sprintf("S=%d", c.Participation), "participation")
	add(fmt.Sprintf("K=%d", c.Local.Steps), "local.steps")
	if c.Local.Batch == 0 {
		add("full batch", "local.batch")
	} else {
		add(fmt.Sprintf("B=%d", c.Local.Batch), "local.batch")
	}
	add("lr="+num(c.Local.LR), "local.lr")
	if c.Server.LR != 1 {
		add("server lr="+num(c.Server.LR), "server.lr")
	}
	add(fmt.Sprintf("R=%d", c.Rounds), "rounds")
	algoKeys := []string{"algorithm.name", "algorithm.option", "algorithm.momentum.beta", "algorithm.momentum.vr", "algorithm.prox_mu",
		"algorithm.weighting", "local.momentum", "server.optimizer", "server.momentum", "server.nesterov"}
	add(AlgorithmName(c), algoKeys...)
	return strings.Join(items, ", ")
}
