package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/fedmo/fedmo/config"
)

// Planned is one run of a sweep.
type Planned struct {
	Name   string        // the run directory's name inside the sweep directory
	Point  int           // the grid point's index, in Spec.Points order
	Labels []string      // the point's value label on each axis
	Seed   uint64        // the run's seed
	Config config.Config // the resolved config
}

// Point is one combination of axis values: Index[i] is the value of axis i.
type Point struct{ Index []int }

// Points lists the grid's points in order, the first axis varying slowest
// (a grid without axes has one point).
func (s Spec) Points() []Point {
	pts := []Point{{}}
	for _, a := range s.Axes {
		var next []Point
		for _, p := range pts {
			for j := range a.Values {
				idx := append(append([]int(nil), p.Index...), j)
				next = append(next, Point{Index: idx})
			}
		}
		pts = next
	}
	return pts
}

// Plan resolves every run of the sweep, seed by seed and point by point
// within a seed (so that an interrupted sweep has whole seeds of the grid),
// and checks every config. The error names the run whose config is wrong.
func (s Spec) Plan() ([]Planned, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	pts := s.Points()
	var runs []Planned
	names := map[string]string{}
	for _, seed := range s.Seeds {
		for pi, p := range pts {
			sets := append([]string(nil), s.Sets...)
			labels := make([]string, len(p.Index))
			for ai, vi := range p.Index {
				v := s.Axes[ai].Values[vi]
				labels[ai] = v.Label
				sets = append(sets, v.Sets...)
			}
			sets = append(sets, "seed="+strconv.FormatUint(seed, 10))
			name := RunName(s.Axes, p, seed)
			cfg, err := config.Parse([]byte(s.Base), sets)
			if err != nil {
				return nil, fmt.Errorf("sweep: run %s: %w", name, err)
			}
			if other, ok := names[name]; ok {
				return nil, fmt.Errorf("sweep: runs %s and %s get the same directory name", other, name)
			}
			names[name] = name
			runs = append(runs, Planned{Name: name, Point: pi, Labels: labels, Seed: seed, Config: cfg})
		}
	}
	return runs, nil
}

// maxNameLen bounds a run directory's name (file systems allow 255 bytes).
const maxNameLen = 200

// RunName is the directory name of a point and seed: "axis=label" for each
// axis, then "seed=N", joined by commas, e.g.
// "algorithm.name=fedavg,local.lr=0.05,seed=3". The name is stable (a
// function of the names, labels and seed alone) and safe on every file
// system: characters other than letters, digits and . _ + - = become "_",
// and a part that had to change, or a name longer than 200 bytes, gets "~"
// and 8 hex digits of the SHA-256 of the original, so that different
// points never share a name.
func RunName(axes []Axis, p Point, seed uint64) string {
	parts := make([]string, 0, len(p.Index)+1)
	for ai, vi := range p.Index {
		parts = append(parts, safe(axes[ai].Name+"="+axes[ai].Values[vi].Label))
	}
	parts = append(parts, "seed="+strconv.FormatUint(seed, 10))
	name := strings.Join(parts, ",")
	if len(name) > maxNameLen {
		name = name[:maxNameLen-9] + "~" + shortHash(name)
	}
	return name
}

// safe replaces the characters a file name should not have and marks the
// change with a hash of the original.
func safe(s string) string {
	var b strings.Builder
	changed := false
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("._+-=", c):
			b.WriteRune(c)
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	out := b.String()
	if strings.HasPrefix(out, ".") || strings.HasPrefix(out, "-") {
		out, changed = "_"+out, true
	}
	if changed {
		out += "~" + shortHash(s)
	}
	return out
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}
