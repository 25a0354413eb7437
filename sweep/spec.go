package sweep

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fedmo/fedmo/report"
)

// Spec is a sweep: a base config, overrides for every run, the grid's axes
// and the seeds. Every run's config is the base, then Sets, then its
// point's overrides, then its seed.
type Spec struct {
	BasePath string   `json:"base_path,omitempty"` // where Base came from ("" for the defaults or an inline base)
	Base     string   `json:"base"`                // the base config, YAML ("" = the defaults)
	Sets     []string `json:"sets,omitempty"`      // key=value overrides for every run
	Axes     []Axis   `json:"axes"`                // the grid: the cartesian product of the axes, the first varying slowest
	Seeds    []uint64 `json:"seeds"`               // every point runs once per seed
	Target   float64  `json:"target"`              // the accuracy whose first round the summary reports
	Out      string   `json:"-"`                   // the sweep directory a spec file asks for ("" = none)
}

// Axis is one dimension of the grid. A plain axis varies one config key:
// its Name is the key and each value sets it. A named axis (from a spec
// file) gives each value a label and any number of overrides.
type Axis struct {
	Name   string  `json:"name"`
	Values []Value `json:"values"`
}

// Value is one value of an axis.
type Value struct {
	Label string   `json:"label"` // shown in tables, legends and directory names
	Sets  []string `json:"sets"`  // key=value overrides (value in YAML syntax)
}

// DefaultTarget is the target accuracy when none is given.
const DefaultTarget = 0.85

// maxSeeds bounds a seed list, so that a typo (1-100000000) fails fast.
const maxSeeds = 10000

// ParseGrid parses a --grid flag, "key=v1,v2,...": each value is in YAML
// syntax and the commas inside brackets, braces or quotes do not split, so
// model.hidden=[64],[64,64] has two values.
func ParseGrid(s string) (Axis, error) {
	key, vals, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" || strings.ContainsAny(key, " \t,=") {
		return Axis{}, fmt.Errorf("sweep: --grid %q: want key=value1,value2,... (e.g. local.lr=0.01,0.05)", s)
	}
	parts, err := splitTop(vals)
	if err != nil {
		return Axis{}, fmt.Errorf("sweep: --grid %s: %w", key, err)
	}
	a := Axis{Name: key}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return Axis{}, fmt.Errorf("sweep: --grid %s: an empty value in %q", key, vals)
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(p), &n); err != nil {
			return Axis{}, fmt.Errorf("sweep: --grid %s: value %q is not YAML: %v", key, p, err)
		}
		a.Values = append(a.Values, Value{Label: p, Sets: []string{key + "=" + p}})
	}
	return a, nil
}

// splitTop splits s at the commas outside brackets, braces, parentheses
// and quotes.
func splitTop(s string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	var quote rune
	for i, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '{' || c == '(':
			depth++
		case c == ']' || c == '}' || c == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced %q in %q", c, s)
			}
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 || quote != 0 {
		return nil, fmt.Errorf("unclosed bracket or quote in %q", s)
	}
	return append(parts, s[start:]), nil
}

// ParseSeeds parses a seed list: numbers and inclusive ranges separated by
// commas, e.g. "1-5", "1,3,7" or "1-3,10". Seeds must not repeat.
func ParseSeeds(s string) ([]uint64, error) {
	var seeds []uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, errA := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		b, errB := a, error(nil)
		if isRange {
			b, errB = strconv.ParseUint(strings.TrimSpace(hi), 10, 64)
		}
		if errA != nil || errB != nil || b < a {
			return nil, fmt.Errorf("sweep: seeds %q: %q is not a seed or a range lo-hi of non-negative integers with lo <= hi (e.g. 1-5 or 1,3,7)", s, part)
		}
		if b-a >= maxSeeds || len(seeds)+int(b-a) >= maxSeeds {
			return nil, fmt.Errorf("sweep: seeds %q: more than %d seeds", s, maxSeeds)
		}
		for x := a; ; x++ {
			if slices.Contains(seeds, x) {
				return nil, fmt.Errorf("sweep: seeds %q: seed %d is given twice", s, x)
			}
			seeds = append(seeds, x)
			if x == b {
				break
			}
		}
	}
	return seeds, nil
}

// LoadSpec reads a sweep file:
//
//	config: base.yaml          # the base config, relative to this file; or
//	base: {rounds: 50, ...}    # the base config inline (not both)
//	set: [eval.every=1]        # overrides for every run
//	grid:                      # axes, the first varying slowest
//	  local.lr: [0.01, 0.05]   # a plain axis: a config key and its values
//	  method:                  # a named axis: labelled sets of overrides
//	    FedAvg:   {algorithm.name: fedavg}
//	    FedAvg-M: {algorithm.name: fedavg, algorithm.momentum.beta: 0.1}
//	seeds: 1-3                 # or a list [1, 2, 3]
//	target: 0.85               # the accuracy of "rounds to target"
//	out: runs/name             # the default sweep directory
//
// Unknown keys are errors that name the key and the file.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("sweep: %w", err)
	}
	s, err := parseSpec(b, filepath.Dir(path))
	if err != nil {
		return s, fmt.Errorf("sweep: %s: %w", path, err)
	}
	return s, nil
}

// parseSpec decodes a sweep file whose relative paths start at dir.
func parseSpec(b []byte, dir string) (Spec, error) {
	s := Spec{Target: DefaultTarget}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return s, err
	}
	if len(doc.Content) == 0 {
		return s, fmt.Errorf("empty; want a mapping with config or base, grid, seeds, ...")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return s, fmt.Errorf("want a mapping with config or base, grid, seeds, ... at the top level")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		if seen[k] {
			return s, fmt.Errorf("line %d: %s is given twice", root.Content[i].Line, k)
		}
		seen[k] = true
		var err error
		switch k {
		case "config":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return s, fmt.Errorf("line %d: config: want the path of a config file", v.Line)
			}
			s.BasePath = v.Value
			if !filepath.IsAbs(s.BasePath) {
				s.BasePath = filepath.Join(dir, s.BasePath)
			}
			var base []byte
			if base, err = os.ReadFile(s.BasePath); err != nil {
				return s, fmt.Errorf("config: %w", err)
			}
			s.Base = string(base)
		case "base":
			if v.Kind != yaml.MappingNode {
				return s, fmt.Errorf("line %d: base: want a config mapping (seed, rounds, ...)", v.Line)
			}
			var out []byte
			if out, err = yaml.Marshal(v); err == nil {
				s.Base = string(out)
			}
		case "set":
			err = v.Decode(&s.Sets)
			if err != nil {
				err = fmt.Errorf("line %d: set: want a list of key=value strings", v.Line)
			}
		case "grid":
			s.Axes, err = parseAxes(v)
		case "seeds":
			s.Seeds, err = parseSeedsNode(v)
		case "target":
			if err = v.Decode(&s.Target); err != nil {
				err = fmt.Errorf("line %d: target: want a number, the accuracy to reach", v.Line)
			}
		case "out":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return s, fmt.Errorf("line %d: out: want a directory", v.Line)
			}
			s.Out = v.Value
		default:
			return s, fmt.Errorf("line %d: unknown key %s; a sweep file takes config, base, set, grid, seeds, target, out", root.Content[i].Line, k)
		}
		if err != nil {
			return s, err
		}
	}
	if seen["config"] && seen["base"] {
		return s, fmt.Errorf("both config and base: give the base config one way")
	}
	return s, nil
}

// parseAxes reads the grid mapping, keeping its order.
func parseAxes(n *yaml.Node) ([]Axis, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: grid: want a mapping of axes (key: [values] or name: {label: {key: value}})", n.Line)
	}
	var axes []Axis
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := n.Content[i].Value, n.Content[i+1]
		a := Axis{Name: name}
		switch v.Kind {
		case yaml.SequenceNode:
			for _, item := range v.Content {
				text := report.FlowYAML(item)
				a.Values = append(a.Values, Value{Label: text, Sets: []string{name + "=" + text}})
			}
		case yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				label, sets := v.Content[j].Value, v.Content[j+1]
				if sets.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("line %d: grid.%s.%s: want a mapping of overrides {key: value, ...}", sets.Line, name, label)
				}
				val := Value{Label: label}
				for k := 0; k+1 < len(sets.Content); k += 2 {
					val.Sets = append(val.Sets, sets.Content[k].Value+"="+report.FlowYAML(sets.Content[k+1]))
				}
				a.Values = append(a.Values, val)
			}
		default:
			return nil, fmt.Errorf("line %d: grid.%s: want a list of values or a mapping of labelled overrides", v.Line, name)
		}
		axes = append(axes, a)
	}
	return axes, nil
}

func parseSeedsNode(n *yaml.Node) ([]uint64, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return ParseSeeds(n.Value)
	case yaml.SequenceNode:
		var parts []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: seeds: want a list of integers", c.Line)
			}
			parts = append(parts, c.Value)
		}
		return ParseSeeds(strings.Join(parts, ","))
	}
	return nil, fmt.Errorf("line %d: seeds: want a range (1-5), a list (1,3,7) or a YAML list", n.Line)
}

// Validate checks the spec's own rules: distinct axis names, at least one
// value per axis and distinct labels, no axis on the seed, no --set of a
// key that an axis varies, at least one seed and a target in (0, 1].
func (s Spec) Validate() error {
	if len(s.Seeds) == 0 {
		return fmt.Errorf("sweep: no seeds; give --seeds (e.g. 1-5)")
	}
	if !(s.Target > 0 && s.Target <= 1) || math.IsNaN(s.Target) {
		return fmt.Errorf("sweep: target %v, want an accuracy 0 < target <= 1", s.Target)
	}
	setKeys := map[string]bool{}
	for _, kv := range s.Sets {
		k, _, _ := strings.Cut(kv, "=")
		setKeys[strings.TrimSpace(k)] = true
	}
	names := map[string]bool{}
	for _, a := range s.Axes {
		if names[a.Name] {
			return fmt.Errorf("sweep: the grid has two axes named %s", a.Name)
		}
		names[a.Name] = true
		if len(a.Values) == 0 {
			return fmt.Errorf("sweep: grid axis %s has no values", a.Name)
		}
		labels := map[string]bool{}
		for _, v := range a.Values {
			if labels[v.Label] {
				return fmt.Errorf("sweep: grid axis %s has the value %s twice", a.Name, v.Label)
			}
			labels[v.Label] = true
			for _, kv := range v.Sets {
				k, _, _ := strings.Cut(kv, "=")
				k = strings.TrimSpace(k)
				if k == "seed" {
					return fmt.Errorf("sweep: grid axis %s sets the seed; give the seeds with --seeds (or seeds: in a sweep file)", a.Name)
				}
				if setKeys[k] {
					return fmt.Errorf("sweep: %s is both set for every run (--set or set:) and varied by grid axis %s; drop one", k, a.Name)
				}
			}
		}
	}
	return nil
}

// Keys returns the config keys an axis sets, in order of first appearance.
func (a Axis) Keys() []string {
	var keys []string
	for _, v := range a.Values {
		for _, kv := range v.Sets {
			k, _, _ := strings.Cut(kv, "=")
			if k = strings.TrimSpace(k); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// plain reports whether the axis is a --grid style axis: one key, and each
// value sets exactly it to its label.
func (a Axis) plain() bool {
	for _, v := range a.Values {
		if len(v.Sets) != 1 || v.Sets[0] != a.Name+"="+v.Label {
			return false
		}
	}
	return true
}
