package algorithms_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/fedavg"
	"github.com/fedmo/fedmo/algorithms/scaffold"
)

var nan, inf = math.NaN(), math.Inf(1)

// goodServer is a valid configuration that each case below breaks in one
// field.
func goodServer() algorithms.ServerConfig {
	return algorithms.ServerConfig{
		Optimizer: algorithms.SGD, LR: 1,
		Beta1: 0.9, Beta2: 0.99, Tau: 1e-3,
		Local:   algorithms.Local{Steps: 5, LR: 0.1, Beta: 1},
		Clients: 10,
	}
}

// TestServerConfigValidate: every forbidden combination is a configuration
// error "that says why" (ALGORITHMS.md convention 9): the message names the
// offending field.
func TestServerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*algorithms.ServerConfig)
		want string // "" means valid
	}{
		{"valid sgd", func(c *algorithms.ServerConfig) {}, ""},
		{"valid heavy ball", func(c *algorithms.ServerConfig) { c.Momentum = 0.9 }, ""},
		{"valid nesterov", func(c *algorithms.ServerConfig) { c.Momentum, c.Nesterov = 0.9, true }, ""},
		{"valid adam", func(c *algorithms.ServerConfig) { c.Optimizer = algorithms.Adam }, ""},
		{"valid yogi", func(c *algorithms.ServerConfig) { c.Optimizer = algorithms.Yogi }, ""},
		{"valid adagrad ignores beta2", func(c *algorithms.ServerConfig) { c.Optimizer, c.Beta2 = algorithms.Adagrad, 7 }, ""},
		{"valid sgd ignores adaptive fields", func(c *algorithms.ServerConfig) { c.Beta1, c.Beta2, c.Tau = 5, -1, nan }, ""},
		{"valid FedAvg-M-VR", func(c *algorithms.ServerConfig) { c.Local.Beta, c.Local.VR = 0.1, true }, ""},
		{"valid SCAFFOLD-M", func(c *algorithms.ServerConfig) { c.Local.Beta, c.Scaffold = 0.1, true }, ""},
		{"valid beta = 1", func(c *algorithms.ServerConfig) { c.Local.Beta = 1 }, ""},

		{"lr 0", func(c *algorithms.ServerConfig) { c.LR = 0 }, "server lr"},
		{"lr < 0", func(c *algorithms.ServerConfig) { c.LR = -1 }, "server lr"},
		{"lr NaN", func(c *algorithms.ServerConfig) { c.LR = nan }, "server lr"},
		{"lr Inf", func(c *algorithms.ServerConfig) { c.LR = inf }, "server lr"},
		{"no clients", func(c *algorithms.ServerConfig) { c.Clients = 0 }, "clients"},
		{"unknown optimizer", func(c *algorithms.ServerConfig) { c.Optimizer = "adamw" }, `server optimizer "adamw" is unknown`},
		{"empty optimizer", func(c *algorithms.ServerConfig) { c.Optimizer = "" }, "server optimizer"},
		{"momentum 1", func(c *algorithms.ServerConfig) { c.Momentum = 1 }, "server momentum"},
		{"momentum < 0", func(c *algorithms.ServerConfig) { c.Momentum = -0.1 }, "server momentum"},
		{"momentum NaN", func(c *algorithms.ServerConfig) { c.Momentum = nan }, "server momentum"},
		{"nesterov with momentum 0", func(c *algorithms.ServerConfig) { c.Nesterov = true }, "nesterov"},
		{"momentum with adam", func(c *algorithms.ServerConfig) { c.Optimizer, c.Momentum = algorithms.Adam, 0.9 }, "server momentum"},
		{"nesterov with yogi", func(c *algorithms.ServerConfig) { c.Optimizer, c.Nesterov = algorithms.Yogi, true }, "nesterov"},
		{"beta1 1", func(c *algorithms.ServerConfig) { c.Optimizer, c.Beta1 = algorithms.Adam, 1 }, "beta1"},
		{"beta1 NaN", func(c *algorithms.ServerConfig) { c.Optimizer, c.Beta1 = algorithms.Adagrad, nan }, "beta1"},
		{"beta2 1", func(c *algorithms.ServerConfig) { c.Optimizer, c.Beta2 = algorithms.Yogi, 1 }, "beta2"},
		{"beta2 < 0", func(c *algorithms.ServerConfig) { c.Optimizer, c.Beta2 = algorithms.Adam, -0.5 }, "beta2"},
		{"beta2 NaN", func(c *algorithms.ServerConfig) { c.Optimizer, c.Beta2 = algorithms.Adam, nan }, "beta2"},
		{"tau 0", func(c *algorithms.ServerConfig) { c.Optimizer, c.Tau = algorithms.Adam, 0 }, "tau"},
		{"tau NaN", func(c *algorithms.ServerConfig) { c.Optimizer, c.Tau = algorithms.Adam, nan }, "tau"},
		{"tau Inf", func(c *algorithms.ServerConfig) { c.Optimizer, c.Tau = algorithms.Adagrad, inf }, "tau"},
		{"VR with beta 1", func(c *algorithms.ServerConfig) { c.Local.VR = true }, "vr"},
		{"VR with beta 1, scaffold", func(c *algorithms.ServerConfig) { c.Local.VR, c.Scaffold = true, true }, "vr"},
		{"invalid local update", func(c *algorithms.ServerConfig) { c.Local.Steps = 0 }, "local steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := goodServer()
			tc.edit(&cfg)
			checkErr(t, cfg.Validate(), tc.want)
			s, err := algorithms.NewServer(cfg, []float64{1})
			checkErr(t, err, tc.want)
			if (s == nil) != (tc.want != "") {
				t.Errorf("NewServer = %v, %v", s, err)
			}
		})
	}
}

// TestLocalValidate checks the ranges of the local update, which also
// guard fedavg.New and scaffold.New.
func TestLocalValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    algorithms.Local
		want string
	}{
		{"valid FedAvg", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1}, ""},
		{"valid FedAvg-M", algorithms.Local{Steps: 1, LR: 0.1, Beta: 0.01}, ""},
		{"valid FedProx", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, ProxMu: 0.5}, ""},
		{"valid local heavy ball", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, HeavyBall: 0.9}, ""},

		{"steps 0", algorithms.Local{Steps: 0, LR: 0.1, Beta: 1}, "local steps"},
		{"lr 0", algorithms.Local{Steps: 1, LR: 0, Beta: 1}, "local learning rate"},
		{"lr < 0", algorithms.Local{Steps: 1, LR: -0.1, Beta: 1}, "local learning rate"},
		{"lr NaN", algorithms.Local{Steps: 1, LR: nan, Beta: 1}, "local learning rate"},
		{"lr Inf", algorithms.Local{Steps: 1, LR: inf, Beta: 1}, "local learning rate"},
		{"beta 0 (the zero value)", algorithms.Local{Steps: 1, LR: 0.1}, "momentum beta"},
		{"beta > 1", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1.5}, "momentum beta"},
		{"beta < 0", algorithms.Local{Steps: 1, LR: 0.1, Beta: -0.5}, "momentum beta"},
		{"beta NaN", algorithms.Local{Steps: 1, LR: 0.1, Beta: nan}, "momentum beta"},
		{"prox mu < 0", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, ProxMu: -1}, "prox_mu"},
		{"prox mu NaN", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, ProxMu: nan}, "prox_mu"},
		{"prox mu Inf", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, ProxMu: inf}, "prox_mu"},
		{"heavy ball 1", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, HeavyBall: 1}, "heavy-ball"},
		{"heavy ball NaN", algorithms.Local{Steps: 1, LR: 0.1, Beta: 1, HeavyBall: nan}, "heavy-ball"},
		{"heavy ball with beta < 1 (P11)", algorithms.Local{Steps: 1, LR: 0.1, Beta: 0.5, HeavyBall: 0.9}, "heavy-ball momentum 0.9 with client momentum beta 0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.l.Validate(), tc.want)
			c, err := fedavg.New(tc.l)
			checkErr(t, err, tc.want)
			if (c == nil) != (tc.want != "") {
				t.Errorf("fedavg.New = %v, %v", c, err)
			}
		})
	}
}

// TestScaffoldNew: SCAFFOLD forbids the proximal term (convention 10: it
// is a FedAvg option) and local heavy ball (Option II assumes plain SGD
// steps), and knows two options.
func TestScaffoldNew(t *testing.T) {
	ok := algorithms.Local{Steps: 2, LR: 0.1, Beta: 1}
	for _, tc := range []struct {
		name string
		edit func(*algorithms.Local)
		opt  scaffold.Option
		want string
	}{
		{"valid Option II", func(*algorithms.Local) {}, scaffold.OptionII, ""},
		{"valid Option I", func(*algorithms.Local) {}, scaffold.OptionI, ""},
		{"valid SCAFFOLD-M-VR", func(l *algorithms.Local) { l.Beta, l.VR = 0.2, true }, scaffold.OptionII, ""},
		{"prox", func(l *algorithms.Local) { l.ProxMu = 0.1 }, scaffold.OptionII, "prox_mu"},
		{"heavy ball", func(l *algorithms.Local) { l.HeavyBall = 0.5 }, scaffold.OptionI, "heavy-ball"},
		{"unknown option", func(*algorithms.Local) {}, scaffold.Option(2), "scaffold option 2 is unknown"},
		{"negative option", func(*algorithms.Local) {}, scaffold.Option(-1), "scaffold option"},
		{"invalid local", func(l *algorithms.Local) { l.LR = nan }, scaffold.OptionII, "local learning rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ok
			tc.edit(&l)
			c, err := scaffold.New(l, tc.opt)
			checkErr(t, err, tc.want)
			if (c == nil) != (tc.want != "") {
				t.Errorf("scaffold.New = %v, %v", c, err)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("error %q, want none", err)
	case want != "" && err == nil:
		t.Errorf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not name %q", err, want)
	}
}

// TestCheckVector catches wrong lengths and every non-finite value, and
// names the vector and the element.
func TestCheckVector(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
		want string
	}{
		{"ok", []float64{0, -1, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}, ""},
		{"too short", []float64{1, 2, 3, 4}, "delta has 4 elements, want 5"},
		{"too long", make([]float64, 6), "delta has 6 elements, want 5"},
		{"nil", nil, "delta has 0 elements, want 5"},
		{"NaN", []float64{0, 0, nan, 0, 0}, "delta[2] = NaN"},
		{"+Inf", []float64{inf, 0, 0, 0, 0}, "delta[0] = +Inf"},
		{"-Inf", []float64{0, 0, 0, 0, -inf}, "delta[4] = -Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, algorithms.CheckVector("delta", tc.v, 5), tc.want)
		})
	}
}

// TestNewServerState checks the state NewServer allocates: exactly what
// the configuration needs, every control variate and buffer at zero, v at
// tau^2 (section 4), x^{-1} = x^0, and x0 copied, not aliased.
func TestNewServerState(t *testing.T) {
	x0 := []float64{1, 2}
	cfg := goodServer()
	cfg.Optimizer, cfg.Tau = algorithms.Yogi, 0.01
	cfg.Local.Beta, cfg.Local.VR, cfg.Scaffold = 0.5, true, true
	s := newServer(t, cfg, x0...)
	x0[0] = 99
	nearVec(t, "x", s.X, []float64{1, 2}, 0)
	nearVec(t, "x_prev", s.XPrev, []float64{1, 2}, 0)
	nearVec(t, "g", s.G, []float64{0, 0}, 0)
	nearVec(t, "c", s.C, []float64{0, 0}, 0)
	nearVec(t, "m", s.M, []float64{0, 0}, 0)
	nearVec(t, "v", s.V, []float64{1e-4, 1e-4}, 0)
	if len(s.CI) != 10 || slices.ContainsFunc(s.CI, func(c []float64) bool { return c != nil }) {
		t.Errorf("ledger = %v, want 10 nil entries", s.CI)
	}
	if s.Round != 0 {
		t.Errorf("round = %d, want 0", s.Round)
	}
	b := s.Broadcast()
	if &b.X[0] != &s.X[0] || &b.G[0] != &s.G[0] || &b.C[0] != &s.C[0] || &b.XPrev[0] != &s.XPrev[0] {
		t.Error("the broadcast does not alias the server state")
	}

	plain := newServer(t, goodServer(), 1, 2)
	if plain.XPrev != nil || plain.G != nil || plain.C != nil || plain.CI != nil || plain.M != nil || plain.V != nil {
		t.Errorf("plain FedAvg keeps state it does not need: %+v", plain)
	}
	if plain.ClientControl(3) != nil {
		t.Error("ClientControl without SCAFFOLD is not nil")
	}
}
