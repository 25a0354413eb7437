package sweep

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseGrid(t *testing.T) {
	for _, tc := range []struct {
		in     string
		key    string
		labels []string
	}{
		{"algorithm.name=fedavg,scaffold", "algorithm.name", []string{"fedavg", "scaffold"}},
		{"local.lr= 0.01, 0.05 ", "local.lr", []string{"0.01", "0.05"}},
		{"model.hidden=[64],[64, 32],[200]", "model.hidden", []string{"[64]", "[64, 32]", "[200]"}},
		{`data.dir="a,b",c`, "data.dir", []string{`"a,b"`, "c"}},
		{"server={lr: 1, momentum: 0.9},{lr: 0.5}", "server", []string{"{lr: 1, momentum: 0.9}", "{lr: 0.5}"}},
	} {
		a, err := ParseGrid(tc.in)
		if err != nil {
			t.Errorf("ParseGrid(%q): %v", tc.in, err)
			continue
		}
		var labels []string
		for _, v := range a.Values {
			labels = append(labels, v.Label)
			if len(v.Sets) != 1 || v.Sets[0] != tc.key+"="+v.Label {
				t.Errorf("ParseGrid(%q): value %q sets %v, want [%s=%s]", tc.in, v.Label, v.Sets, tc.key, v.Label)
			}
		}
		if a.Name != tc.key || !slices.Equal(labels, tc.labels) {
			t.Errorf("ParseGrid(%q) = %s %q, want %s %q", tc.in, a.Name, labels, tc.key, tc.labels)
		}
		if !a.plain() {
			t.Errorf("ParseGrid(%q) is not a plain axis", tc.in)
		}
	}
	for _, bad := range []string{"", "fedavg", "=1,2", "a b=1", "local.lr=0.1,,0.2", "local.lr=", "model.hidden=[64,[32]", "x=1]", `x="a`, "x=[1, 2"} {
		if _, err := ParseGrid(bad); err == nil || !strings.Contains(err.Error(), "--grid") {
			t.Errorf("ParseGrid(%q): err = %v, want an error naming --grid", bad, err)
		}
	}
}

func TestParseSeeds(t *testing.T) {
	for in, want := range map[string][]uint64{
		"1-5":     {1, 2, 3, 4, 5},
		"1,3,7":   {1, 3, 7},
		"1-3,10":  {1, 2, 3, 10},
		" 0 ":     {0},
		"4-4,2-3": {4, 2, 3},
	} {
		got, err := ParseSeeds(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseSeeds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "5-1", "1,1", "1-3,2", "-1", "1-", "1..3", "0-20000", "1.5"} {
		if _, err := ParseSeeds(bad); err == nil || !strings.Contains(err.Error(), "seeds") {
			t.Errorf("ParseSeeds(%q): err = %v, want an error about seeds", bad, err)
		}
	}
}

func TestLoadSpec(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("rounds: 7\n"), 0o644)
	path := filepath.Join(dir, "s.yaml")
	os.WriteFile(path, []byte(`
config: base.yaml
set: [eval.every=1]
grid:
  local.lr: [0.01, 0.05]
  method:
    FedAvg: {algorithm.name: fedavg}
    FedAvg-M-VR: {algorithm.name: fedavg, algorithm.momentum.beta: 0.1, algorithm.momentum.vr: true}
  model.hidden: [[64], [64, 32]]
seeds: [1, 2]
target: 0.5
out: runs/x
`), 0o644)
	s, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Base != "rounds: 7\n" || s.BasePath != filepath.Join(dir, "base.yaml") || !slices.Equal(s.Sets, []string{"eval.every=1"}) ||
		!slices.Equal(s.Seeds, []uint64{1, 2}) || s.Target != 0.5 || s.Out != "runs/x" || len(s.Axes) != 3 {
		t.Fatalf("spec %+v", s)
	}
	if a := s.Axes[1]; a.Name != "method" || a.plain() || a.Values[1].Label != "FedAvg-M-VR" ||
		!slices.Equal(a.Values[1].Sets, []string{"algorithm.name=fedavg", "algorithm.momentum.beta=0.1", "algorithm.momentum.vr=true"}) {
		t.Errorf("named axis %+v", a)
	}
	if got := s.Axes[1].Keys(); !slices.Equal(got, []string{"algorithm.name", "algorithm.momentum.beta", "algorithm.momentum.vr"}) {
		t.Errorf("Keys = %v", got)
	}
	if a := s.Axes[2]; !a.plain() || a.Values[1].Label != "[64, 32]" {
		t.Errorf("list axis %+v", a)
	}
	plan, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 2*2*2*2 {
		t.Fatalf("%d runs, want 16", len(plan))
	}
	p := plan[3] // seed 1, lr 0.01, FedAvg-M-VR, [64, 32]
	if p.Config.Rounds != 7 || p.Config.Eval.Every != 1 || p.Config.Local.LR != 0.01 || !p.Config.Algorithm.Momentum.VR ||
		!slices.Equal(p.Config.Model.Hidden, []int{64, 32}) || p.Seed != 1 || p.Config.Seed != 1 {
		t.Errorf("run 3 = %s %+v", p.Name, p.Config)
	}
	if plan[8].Seed != 2 || plan[8].Point != 0 {
		t.Errorf("run 8 is seed %d point %d, want seed 2's first point (seed-major order)", plan[8].Seed, plan[8].Point)
	}

	inline := filepath.Join(dir, "inline.yaml")
	os.WriteFile(inline, []byte("base: {rounds: 3, clients: 4}\nseeds: 5\n"), 0o644)
	if s, err := LoadSpec(inline); err != nil || !strings.Contains(s.Base, "clients: 4") || !slices.Equal(s.Seeds, []uint64{5}) || s.Target != DefaultTarget {
		t.Errorf("inline base: %+v, %v", s, err)
	}
}

func TestLoadSpecErrors(t *testing.T) {
	dir := t.TempDir()
	for src, want := range map[string]string{
		"grid: {local.lr: [0.1]}\nseed: 1\n":        "unknown key seed",
		"config: nowhere.yaml\n":                    "nowhere.yaml",
		"base: {rounds: 1}\nconfig: x.yaml\n":       "x.yaml",
		"base: 5\n":                                 "base: want a config mapping",
		"grid: [a, b]\n":                            "grid: want a mapping",
		"grid: {local.lr: 0.1}\n":                   "grid.local.lr",
		"grid: {m: {A: 1}}\n":                       "grid.m.A",
		"seeds: 3-1\n":                              "seeds",
		"target: high\n":                            "target",
		"set: local.lr=1\n":                         "set:",
		"- 1\n":                                     "mapping",
		"grid: {local.lr: [0.1]}\ngrid: {x: [1]}\n": "given twice",
		"out: \n":                                   "out",
		"grid: {local.lr: [0.1, 0.2\n":              "",
		"":                                          "empty",
		"config: base.yaml\nbase: {rounds: 1}\n":    "both config and base",
	} {
		path := filepath.Join(dir, "s.yaml")
		os.WriteFile(path, []byte(src), 0o644)
		os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("rounds: 2\n"), 0o644)
		_, err := LoadSpec(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("spec %q: err = %v, want one with %q and the file name", src, err, want)
		}
	}
}

func TestValidateAndPlanErrors(t *testing.T) {
	lr, _ := ParseGrid("local.lr=0.1,0.2")
	seedAxis, _ := ParseGrid("seed=1,2")
	twice, _ := ParseGrid("local.lr=0.1,0.1")
	bad, _ := ParseGrid("algorithm.name=fedavg,fedsgd")
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Target: 0.5}, "no seeds"},
		{Spec{Seeds: []uint64{1}, Target: 0}, "target"},
		{Spec{Seeds: []uint64{1}, Target: 1.5}, "target"},
		{Spec{Seeds: []uint64{1}, Target: 0.5, Axes: []Axis{lr, lr}}, "two axes named local.lr"},
		{Spec{Seeds: []uint64{1}, Target: 0.5, Axes: []Axis{{Name: "x"}}}, "no values"},
		{Spec{Seeds: []uint64{1}, Target: 0.5, Axes: []Axis{seedAxis}}, "--seeds"},
		{Spec{Seeds: []uint64{1}, Target: 0.5, Axes: []Axis{twice}}, "twice"},
		{Spec{Seeds: []uint64{1}, Target: 0.5, Axes: []Axis{lr}, Sets: []string{"local.lr=0.3"}}, "both set"},
		{Spec{Seeds: []uint64{1, 2}, Target: 0.5, Axes: []Axis{lr, bad}}, "run local.lr=0.1,algorithm.name=fedsgd,seed=1: config: algorithm.name"},
		{Spec{Seeds: []uint64{1}, Target: 0.5, Base: "rounds: [\n"}, "run seed=1"},
	} {
		_, err := tc.spec.Plan()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one with %q", tc.spec, err, tc.want)
		}
	}
}

func TestRunName(t *testing.T) {
	axes := []Axis{
		{Name: "algorithm.name", Values: []Value{{Label: "fedavg"}}},
		{Name: "model.hidden", Values: []Value{{Label: "[64, 32]"}, {Label: "[64,32]"}, {Label: "[64_32]"}}},
		{Name: "method", Values: []Value{{Label: "FedAvg-M"}, {Label: "../../etc"}, {Label: strings.Repeat("x", 300)}}},
	}
	name := func(v1, v2 int, seed uint64) string { return RunName(axes, Point{Index: []int{0, v1, v2}}, seed) }
	if got, want := name(0, 0, 3), "algorithm.name=fedavg,model.hidden=_64__32_~"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ",method=FedAvg-M,seed=3") {
		t.Errorf("RunName = %q, want %q...,method=FedAvg-M,seed=3", got, want)
	}
	if first, again := name(0, 0, 3), name(0, 0, 3); first != again {
		t.Error("RunName is not stable")
	}
	seen := map[string]bool{}
	for v1 := range 3 {
		for v2 := range 3 {
			for _, seed := range []uint64{1, 10} {
				n := name(v1, v2, seed)
				if seen[n] {
					t.Errorf("two points share the name %s", n)
				}
				seen[n] = true
				if len(n) > maxNameLen || strings.ContainsAny(n, "/\\ :*?\"<>|[]{}") || strings.HasPrefix(n, ".") {
					t.Errorf("unsafe or long name %q (%d bytes)", n, len(n))
				}
			}
		}
	}
	if got := RunName(nil, Point{}, 7); got != "seed=7" {
		t.Errorf("RunName without axes = %q, want seed=7", got)
	}
}
