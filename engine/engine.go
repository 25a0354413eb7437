// Package engine runs the rounds of a federated run: sample, dispatch,
// collect, order, check, aggregate, evaluate, report.
//
// The engine is the same code in every mode. It reaches clients only through
// an Executor: the simulator's executes local updates in-process, the
// coordinator's sends them to client processes. Whatever order updates
// arrive in, the engine sorts them by client id before the server adds them,
// so the global model after every round is a function of (config, seed)
// alone.
//
// # Round lifecycle
//
//	sample S of N (stream rng.Sample, round r)
//	  -> Executor.Execute(broadcast x^r, g^r, c; tasks with c_i)
//	  -> sort by client id, reject bad updates (unknown or duplicate client,
//	     wrong length, NaN or Inf) with a reason
//	  -> Server.Apply -> check x^{r+1} is finite -> evaluate if due
//	  -> Observer.Round(metrics, x^{r+1})
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/internal/le"
	"github.com/fedmo/fedmo/rng"
)

// Task is one client's share of a round.
type Task struct {
	Client int
	CI     []float64 // the client's control variate c_i (SCAFFOLD; nil means zero)
}

// Executor runs the local updates of a round.
type Executor interface {
	// Execute runs tasks against the broadcast b and returns their updates
	// in any order. The updates' buffers must stay valid until the next call.
	// A missing update (a client that did not report) is allowed; the engine
	// aggregates the updates that arrived.
	Execute(ctx context.Context, b *algorithms.Broadcast, tasks []Task) ([]*algorithms.Update, error)
}

// Evaluator measures the global model.
type Evaluator interface {
	// Evaluate returns the test loss and accuracy of x and, if train is set,
	// the loss over the whole training set.
	Evaluate(ctx context.Context, x []float64, train bool) (Evaluation, error)
}

// Evaluation is a measurement of the global model.
type Evaluation struct {
	TestLoss  float64
	TestAcc   float64
	TrainLoss *float64 // nil when not asked for
}

// Observer receives every finished round.
type Observer interface {
	Round(m *Metrics, x []float64) error
}

// Metrics describe one finished round.
type Metrics struct {
	Round        int         `json:"round"`        // 1-based: the number of finished rounds
	Participants []int       `json:"participants"` // the clients that reported, ascending
	Rejected     []Rejection `json:"rejected,omitempty"`
	LocalLoss    float64     `json:"local_loss"` // mean over reporting clients of their mean minibatch loss
	Eval         *Evaluation `json:"-"`
	ModelSHA256  string      `json:"model_sha256"`
	Seconds      float64     `json:"seconds"`
	// ExecuteSeconds is the time the executor took (local updates and their
	// transport); AggregateSeconds the server step.
	ExecuteSeconds   float64 `json:"execute_seconds"`
	AggregateSeconds float64 `json:"aggregate_seconds"`
}

// Rejection is an update the engine refused, and why.
type Rejection struct {
	Client int    `json:"client"`
	Reason string `json:"reason"`
}

// Config is what the engine needs of the run.
type Config struct {
	Seed          uint64
	Rounds        int  // R
	Participation int  // S of the server's N clients per round
	EvalEvery     int  // evaluate every this many rounds and after the last; 0 = only after the last
	TrainLoss     bool // add the global training loss to evaluations
	// Replay, if set, fixes the participants of round r to Replay[r] (the
	// realised participants of an earlier run) instead of sampling them.
	Replay [][]int
	// Strict makes any rejected update an error that stops the run. The
	// simulator computes every update itself, so a non-finite one means the
	// local training diverged.
	Strict bool
}

// Engine drives rounds.
type Engine struct {
	cfg      Config
	server   *algorithms.Server
	exec     Executor
	eval     Evaluator
	observer Observer
}

// New returns an engine over the server state s (a new run or a resumed one).
func New(cfg Config, s *algorithms.Server, exec Executor, eval Evaluator, obs Observer) (*Engine, error) {
	n := s.Config.Clients
	if cfg.Participation < 1 || cfg.Participation > n {
		return nil, fmt.Errorf("engine: participation %d, want 1 <= participation <= clients (%d)", cfg.Participation, n)
	}
	return &Engine{cfg: cfg, server: s, exec: exec, eval: eval, observer: obs}, nil
}

// Server returns the server state.
func (e *Engine) Server() *algorithms.Server { return e.server }

// Run runs rounds until the configured number is done.
func (e *Engine) Run(ctx context.Context) error {
	for e.server.Round < e.cfg.Rounds {
		if err := e.Step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Sample returns the S clients of round r out of n, ascending: uniform
// without replacement from the stream (seed, rng.Sample, r).
func Sample(seed uint64, round, n, s int) []int {
	src := rng.Stream(seed, rng.Sample, round, -1)
	pool := make([]int, n)
	for i := range pool {
		pool[i] = i
	}
	for i := 0; i < s; i++ { // partial Fisher-Yates
		j := i + src.IntN(n-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	ids := pool[:s]
	slices.Sort(ids)
	return ids
}

// Step runs one round.
func (e *Engine) Step(ctx context.Context) error {
	start := time.Now()
	s := e.server
	r := s.Round
	var ids []int
	if e.cfg.Replay != nil {
		if r >= len(e.cfg.Replay) {
			return fmt.Errorf("engine: round %d: the replayed run has only %d rounds", r+1, len(e.cfg.Replay))
		}
		ids = slices.Sorted(slices.Values(e.cfg.Replay[r]))
		for i, id := range ids {
			if id < 0 || id >= s.Config.Clients || (i > 0 && ids[i-1] == id) {
				return fmt.Errorf("engine: round %d: replayed participants %v: want distinct client ids in [0, %d)", r+1, e.cfg.Replay[r], s.Config.Clients)
			}
		}
	} else {
		ids = Sample(e.cfg.Seed, r, s.Config.Clients, e.cfg.Participation)
	}
	tasks := make([]Task, len(ids))
	for i, id := range ids {
		tasks[i] = Task{Client: id, CI: s.ClientControl(id)}
	}
	ups, err := e.exec.Execute(ctx, s.Broadcast(), tasks)
	if err != nil {
		return fmt.Errorf("engine: round %d: %w", r+1, err)
	}
	executed := time.Now()
	good, rejected := e.check(ids, ups)
	if e.cfg.Strict && len(rejected) > 0 {
		return fmt.Errorf("engine: round %d: client %d: %s; the local training diverged: lower local.lr or server.lr", r+1, rejected[0].Client, rejected[0].Reason)
	}
	m := &Metrics{Round: r + 1, Rejected: rejected}
	for _, u := range good {
		m.Participants = append(m.Participants, u.Client)
		m.LocalLoss += u.Loss / float64(len(good))
	}
	s.Apply(good)
	m.ExecuteSeconds = executed.Sub(start).Seconds()
	m.AggregateSeconds = time.Since(executed).Seconds()
	for j, v := range s.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("engine: round %d: the global model diverged (parameter %d is %v); lower local.lr or server.lr", r+1, j, v)
		}
	}
	if math.IsNaN(m.LocalLoss) || math.IsInf(m.LocalLoss, 0) {
		return fmt.Errorf("engine: round %d: the local training loss diverged (%v); lower local.lr", r+1, m.LocalLoss)
	}
	if e.due(s.Round) && e.eval != nil {
		ev, err := e.eval.Evaluate(ctx, s.X, e.cfg.TrainLoss)
		if err != nil {
			return fmt.Errorf("engine: round %d: evaluate: %w", r+1, err)
		}
		if math.IsNaN(ev.TestLoss) || math.IsInf(ev.TestLoss, 0) {
			return fmt.Errorf("engine: round %d: the test loss diverged (%v); lower local.lr or server.lr", r+1, ev.TestLoss)
		}
		m.Eval = &ev
	}
	m.ModelSHA256 = Hash(s.X)
	m.Seconds = time.Since(start).Seconds()
	if e.observer != nil {
		if err := e.observer.Round(m, s.X); err != nil {
			return fmt.Errorf("engine: round %d: %w", r+1, err)
		}
	}
	return nil
}

func (e *Engine) due(done int) bool {
	return done == e.cfg.Rounds || (e.cfg.EvalEvery > 0 && done%e.cfg.EvalEvery == 0)
}

// check sorts the updates by client id and rejects those that are not for a
// task of this round, repeat a client, or are not a finite vector of the
// model's length.
func (e *Engine) check(ids []int, ups []*algorithms.Update) (good []*algorithms.Update, rejected []Rejection) {
	n := len(e.server.X)
	scaffold := e.server.C != nil
	ups = slices.Clone(ups)
	slices.SortStableFunc(ups, func(a, b *algorithms.Update) int { return a.Client - b.Client })
	for i, u := range ups {
		reason := ""
		switch {
		case u == nil:
			continue
		case !slices.Contains(ids, u.Client):
			reason = "not sampled in this round"
		case i > 0 && ups[i-1] != nil && ups[i-1].Client == u.Client:
			reason = "a second update for the same round"
		default:
			if err := algorithms.CheckVector("delta", u.Delta, n); err != nil {
				reason = err.Error()
			} else if scaffold {
				if err := algorithms.CheckVector("delta c", u.DeltaC, n); err != nil {
					reason = err.Error()
				}
			}
			if reason == "" && (math.IsNaN(u.Loss) || u.Samples < 1) {
				reason = fmt.Sprintf("loss %v over %d samples", u.Loss, u.Samples)
			}
		}
		if reason != "" {
			rejected = append(rejected, Rejection{Client: u.Client, Reason: reason})
			continue
		}
		good = append(good, u)
	}
	return good, rejected
}

// Hash is the SHA-256 (hex) of x's little-endian float64 bytes: the model
// hash that runs compare.
func Hash(x []float64) string {
	h := sha256.New()
	le.Write(h, x) // a hash never fails to write
	return hex.EncodeToString(h.Sum(nil))
}

// Observers fans a round out to several observers, in order.
type Observers []Observer

// Round implements Observer.
func (os Observers) Round(m *Metrics, x []float64) error {
	for _, o := range os {
		if o == nil {
			continue
		}
		if err := o.Round(m, x); err != nil {
			return err
		}
	}
	return nil
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(m *Metrics, x []float64) error

// Round implements Observer.
func (f ObserverFunc) Round(m *Metrics, x []float64) error { return f(m, x) }
