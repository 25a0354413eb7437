// Command quadratic reproduces the simulated experiment of SCAFFOLD
// (Karimireddy et al., ICML 2020, section 7): N = 2 clients with quadratic
// objectives, full gradients (sigma = 0), full participation, gradient
// heterogeneity G in {1, 10, 100} and K in {2, 10} local steps. FedAvg
// slows down as G grows; SCAFFOLD does not.
//
// The clients are the one-dimensional pair of SCAFFOLD's lower bound for
// FedAvg (Theorem II):
//
//	f_1(x) = 0.5*x^2 + G*x,   f_2(x) = -G*x,   f = (f_1 + f_2)/2 = x^2/4,
//
// so f is 1-smooth, its minimum is x* = 0 whatever G is, and G is exactly
// the heterogeneity of the clients' gradients at x* (|grad f_i(x*)| = G).
// SGD (one full-gradient step per client per round, then averaging: plain
// gradient descent on f) does not see G at all.
//
// Every method starts at x = 1 with eta_g = 1 (plain averaging; SCAFFOLD
// Option II, control variates from zero). Its local step size is tuned, as
// in the paper, on the grid Steps: the step that reaches f - f* <= Eps in
// the fewest rounds, or if none does within Rounds, the one with the lowest
// final error. The runs use fedmo's algorithms (fedavg, scaffold, the
// server) through the public API and algotest.Run, the round engine's order
// without I/O.
//
//	go run ./examples/quadratic -out docs/img
//
// writes quadratic.png (suboptimality against rounds, one panel per K) and
// prints a Markdown table of the rounds to Eps and the tuned steps.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/algotest"
	"github.com/fedmo/fedmo/algorithms/fedavg"
	"github.com/fedmo/fedmo/algorithms/scaffold"
	"github.com/fedmo/fedmo/plotting"
)

// The experiment's grid.
var (
	Gs     = []float64{1, 10, 100}
	Ks     = []int{2, 10}
	Steps  = []float64{1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5}
	Rounds = 100
	Eps    = 1e-12 // target suboptimality f(x) - f*; f(x^0) - f* = 0.25
)

// floor is the smallest suboptimality drawn on the log axis.
const floor = 1e-16

// client is f(x) = 0.5*a*x^2 + g*x with exact gradients.
type client struct{ a, g float64 }

func (c client) Grad(x []float64, _ int, grad []float64) float64 { return c.FullGrad(x, grad) }

func (c client) FullGrad(x, grad []float64) float64 {
	grad[0] = c.a*x[0] + c.g
	return 0.5*c.a*x[0]*x[0] + c.g*x[0]
}

// problem is the two clients of heterogeneity g.
type problem struct{ clients [2]client }

func newProblem(g float64) problem { return problem{[2]client{{a: 1, g: g}, {a: 0, g: -g}}} }

func (p problem) NumClients() int                   { return 2 }
func (p problem) Oracle(_, i int) algorithms.Oracle { return p.clients[i] }
func suboptimality(x float64) float64               { return x * x / 4 } // f(x) - f*, f* = 0

// Method is one algorithm of the comparison.
type Method string

// The methods.
const (
	SGD      Method = "SGD"
	FedAvg   Method = "FedAvg"
	SCAFFOLD Method = "SCAFFOLD"
)

// Run is one method's run at one step size: the suboptimality after every
// round (index 0 is x^0).
type Run struct {
	Method Method
	G      float64
	K      int // local steps (1 for SGD)
	Step   float64
	Errors []float64
	Reach  int // first round with f - f* <= Eps; 0 = never
}

// simulate runs m for Rounds rounds.
func simulate(m Method, g float64, k int, step float64) (Run, error) {
	if m == SGD {
		k = 1
	}
	l := algorithms.Local{Steps: k, LR: step, Beta: 1}
	server, err := algorithms.NewServer(algorithms.ServerConfig{Optimizer: algorithms.SGD, LR: 1, Local: l,
		Clients: 2, Scaffold: m == SCAFFOLD}, []float64{1})
	if err != nil {
		return Run{}, err
	}
	var c algorithms.Client
	if m == SCAFFOLD {
		c, err = scaffold.New(l, scaffold.OptionII)
	} else {
		c, err = fedavg.New(l)
	}
	if err != nil {
		return Run{}, err
	}
	r := Run{Method: m, G: g, K: k, Step: step, Errors: []float64{suboptimality(1)}}
	hist, err := algotest.Run(server, c, newProblem(g), algotest.Options{Rounds: Rounds})
	for i, x := range hist {
		e := suboptimality(x[0])
		if math.IsNaN(e) || math.IsInf(e, 0) {
			e = math.Inf(1)
		}
		r.Errors = append(r.Errors, e)
		if r.Reach == 0 && e <= Eps {
			r.Reach = i + 1
		}
	}
	if err != nil { // diverged: the check of a non-finite update stops the run
		for len(r.Errors) <= Rounds {
			r.Errors = append(r.Errors, math.Inf(1))
		}
	}
	return r, nil
}

// better reports whether a beats b: it reaches Eps sooner, or neither
// reaches it and a ends lower.
func better(a, b Run) bool {
	switch {
	case a.Reach > 0 && b.Reach > 0:
		return a.Reach < b.Reach
	case a.Reach > 0 || b.Reach > 0:
		return a.Reach > 0
	}
	return a.Errors[Rounds] < b.Errors[Rounds]
}

// Tuned runs m on every step of Steps and returns the best run.
func Tuned(m Method, g float64, k int) (Run, error) {
	var best Run
	for i, s := range Steps {
		r, err := simulate(m, g, k, s)
		if err != nil {
			return r, err
		}
		if i == 0 || better(r, best) {
			best = r
		}
	}
	return best, nil
}

// Results runs the whole grid: for each K, the tuned runs of SGD (once: it
// does not depend on G), then FedAvg and SCAFFOLD for each G.
func Results() (map[int][]Run, error) {
	out := map[int][]Run{}
	for _, k := range Ks {
		sgd, err := Tuned(SGD, Gs[0], k)
		if err != nil {
			return nil, err
		}
		out[k] = append(out[k], sgd)
		for _, m := range []Method{FedAvg, SCAFFOLD} {
			for _, g := range Gs {
				r, err := Tuned(m, g, k)
				if err != nil {
					return nil, err
				}
				out[k] = append(out[k], r)
			}
		}
	}
	return out, nil
}

func label(r Run) string {
	if r.Method == SGD {
		return "SGD (any G)"
	}
	return fmt.Sprintf("%s G=%s", r.Method, strconv.FormatFloat(r.G, 'g', -1, 64))
}

// Figure draws one panel per K: log suboptimality against rounds.
func Figure(path string, res map[int][]Run) error {
	var panels []plotting.Panel
	for _, k := range Ks {
		p := plotting.Panel{Title: fmt.Sprintf("K = %d local steps", k), XLabel: "round", YLabel: "f(x) - f*", LogY: true, LegendOffset: 0.3}
		for _, r := range res[k] {
			// A colour per G, solid for FedAvg, dashed for SCAFFOLD; SGD black dotted.
			s := plotting.Series{Label: label(r), Color: 1 + slices.Index(Gs, r.G)}
			switch r.Method {
			case SCAFFOLD:
				s.Dash = 1
			case SGD:
				s.Color, s.Dash = 8, 3 // grey, dotted
			}
			for i, e := range r.Errors {
				if math.IsInf(e, 0) || e > 1e6 {
					break
				}
				s.Rounds = append(s.Rounds, float64(i))
				s.Values = append(s.Values, max(e, floor))
			}
			p.Series = append(p.Series, s)
		}
		panels = append(panels, p)
	}
	title := "SCAFFOLD's simulated quadratics: N = 2, full gradients, f1 = x^2/2 + Gx, f2 = -Gx, x0 = 1\n" +
		fmt.Sprintf("local step tuned per method and setting (rounds to %g); errors below %g drawn at %g", Eps, floor, floor)
	return plotting.SaveTitled(path, title, panels...)
}

// Table writes rounds to Eps with the tuned steps, as Markdown.
func Table(res map[int][]Run) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "| K | method | G | tuned local step | rounds to f - f* <= %g | f - f* after %d rounds |\n|---|---|---|---:|---:|---:|\n", Eps, Rounds)
	for _, k := range Ks {
		for _, r := range res[k] {
			reach := fmt.Sprintf("never (> %d)", Rounds)
			if r.Reach > 0 {
				reach = strconv.Itoa(r.Reach)
			}
			g := strconv.FormatFloat(r.G, 'g', -1, 64)
			if r.Method == SGD {
				g = "any"
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %g | %s | %.2e |\n", k, r.Method, g, r.Step, reach, r.Errors[Rounds])
		}
	}
	return b.String()
}

func main() {
	out := flag.String("out", ".", "directory for quadratic.png")
	flag.Parse()
	res, err := Results()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := Figure(filepath.Join(*out, "quadratic.png"), res); err != nil {
		log.Fatal(err)
	}
	fmt.Print(Table(res))
}
