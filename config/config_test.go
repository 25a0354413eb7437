package config

import (
	"strings"
	"testing"
)

// The example of the simulator issue, verbatim.
const example = `
seed: 1
rounds: 100
clients: 100             # N
participation: 10        # S, sampled per round
data: {name: mnist, partition: dirichlet, alpha: 0.1}
model: {name: mlp, hidden: [200], init: glorot}
local: {steps: 10, batch: 32, lr: 0.05}
algorithm:
  name: scaffold         # fedavg | scaffold
  option: II             # SCAFFOLD control-variate update: I | II
  momentum: {beta: 0.1, vr: false}   # client side, Cheng et al.; beta weights the fresh gradient, 1 = off
  prox_mu: 0.0           # FedProx term (fedavg)
  weighting: uniform     # uniform | samples
server: {lr: 1.0, optimizer: sgd, momentum: 0.0, nesterov: false}   # lr is eta_g; optimizer: sgd | adam | yogi | adagrad
eval: {every: 5}
`

func TestParseExample(t *testing.T) {
	c, err := Parse([]byte(example), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Algorithm.Name != "scaffold" || c.Algorithm.Momentum.Beta != 0.1 || c.Data.Alpha != 0.1 ||
		c.Participation != 10 || len(c.Model.Hidden) != 1 || c.Model.Hidden[0] != 200 || c.Eval.Every != 5 {
		t.Fatalf("decoded %+v", c)
	}
	if c.Server.Tau != Default().Server.Tau {
		t.Errorf("server.tau = %v, want the default %v kept", c.Server.Tau, Default().Server.Tau)
	}
}

func TestOverrides(t *testing.T) {
	c, err := Parse([]byte(example), []string{"local.lr=0.01", "model.hidden=[64, 32]", "algorithm.momentum.vr=true", "eval.train_loss=true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Local.LR != 0.01 || len(c.Model.Hidden) != 2 || c.Model.Hidden[1] != 32 || !c.Algorithm.Momentum.VR || !c.Eval.TrainLoss {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

func TestRoundTrip(t *testing.T) {
	c, err := Parse([]byte(example), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(c.YAML(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() != d.Hash() {
		t.Fatalf("resolved config does not round-trip:\n%s\n%s", c.YAML(), d.YAML())
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		src, set string
		want     []string
	}{
		{src: "rounds: 5\nfoo: 1", want: []string{"unknown key foo", "seed, rounds"}},
		{src: "data: {name: mnist, alpa: 0.1}", want: []string{"unknown key data.alpa", "alpha"}},
		{src: "local: {lr: fast}", want: []string{"local.lr", "want a number", "fast"}},
		{src: "model: {hidden: 200}", want: []string{"model.hidden", "list"}},
		{src: "rounds: -1", want: []string{"rounds", "at least 1"}},
		{src: "participation: 200", want: []string{"participation", "clients (100)"}},
		{src: "algorithm: {name: fedsgd}", want: []string{"algorithm.name", "fedavg, scaffold"}},
		{src: "server: {optimizer: rmsprop}", want: []string{"server.optimizer", "sgd, adam"}},
		{src: "algorithm: {momentum: {beta: 0}}", want: []string{"algorithm.momentum.beta", "0 < beta <= 1"}},
		{src: "local: {lr: .nan}", want: []string{"local.lr", "finite"}},
		{src: "data: {partition: file}", want: []string{"data.partition_file", "missing"}},
		{src: "data: {partition: similarity, similarity: 10}", want: []string{"data.similarity", "0 <= similarity <= 1"}},
		{src: "data: {partition: similar}", want: []string{"data.partition", "similarity"}},
		{src: "- 1\n- 2", want: []string{"top level", "mapping"}},
		{src: "rounds: [", want: []string{"config:"}},
		{set: "local.lr", want: []string{"--set", "key=value"}},
		{set: "local.steps.x=1", want: []string{"local.steps", "want an integer"}},
		{src: "local: {steps: 3}", set: "local.steps.x=1", want: []string{"local.steps", "not a mapping"}},
		{set: "local.stpes=3", want: []string{"unknown key local.stpes"}},
		{src: "seed: 1\nseed: 2", want: []string{"seed is given twice"}},
	} {
		var sets []string
		if tc.set != "" {
			sets = []string{tc.set}
		}
		_, err := Parse([]byte(tc.src), sets)
		if err == nil {
			t.Errorf("Parse(%q, %q) succeeded, want an error", tc.src, tc.set)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q, %q) = %q, want it to mention %q", tc.src, tc.set, err, w)
			}
		}
	}
}
