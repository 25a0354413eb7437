// Package experiment turns a config into the parts of a run: the federated
// dataset, the model, the algorithm's client and server sides, the initial
// model and the evaluator. The simulator, the coordinator and the client
// processes all build their parts here, so the same config means the same
// run in every mode.
package experiment

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/fedmo/fedmo/algorithms"
	"github.com/fedmo/fedmo/algorithms/fedavg"
	"github.com/fedmo/fedmo/algorithms/scaffold"
	"github.com/fedmo/fedmo/client"
	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/model"
	"github.com/fedmo/fedmo/rng"
)

// Options are the inputs of a build that are not part of the experiment.
type Options struct {
	// GoModCache is the Go module cache, where MNIST is found when
	// data.dir is empty (the GoMNIST module ships the IDX files).
	GoModCache string
	// Cache, if set, shares the datasets read from files (MNIST, NumPy)
	// and their fingerprints between builds, as a sweep builds many runs
	// of the same data. nil reads the files every time.
	Cache *DataCache
}

// Setup is everything a run is built from.
type Setup struct {
	Config      config.Config
	Data        *data.Federated
	Fingerprint string // of the training and test sets
	Model       model.Model
	Client      algorithms.Client
	Server      algorithms.ServerConfig
}

// Build validates cfg and builds its parts.
func Build(cfg config.Config, opts Options) (*Setup, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fd, err := Dataset(cfg, opts)
	if err != nil {
		return nil, err
	}
	return withData(cfg, fd, opts.Cache.fingerprint(fd.Train, fd.Test))
}

// WithData builds cfg's parts over a dataset the caller loaded: a real
// client's own data, with its rows as its one part.
func WithData(cfg config.Config, fd *data.Federated) (*Setup, error) {
	return withData(cfg, fd, "")
}

// withData is WithData with the datasets' fingerprint if known ("": compute it).
func withData(cfg config.Config, fd *data.Federated, fingerprint string) (*Setup, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fingerprint == "" {
		fingerprint = data.Fingerprint(fd.Train, fd.Test)
	}
	s := &Setup{Config: cfg, Data: fd, Fingerprint: fingerprint}
	var err error
	if s.Model, err = Model(cfg.Model, fd.Train.D, fd.Train.Classes); err != nil {
		return nil, err
	}
	local := algorithms.Local{
		Steps: cfg.Local.Steps, LR: cfg.Local.LR, Beta: cfg.Algorithm.Momentum.Beta,
		VR: cfg.Algorithm.Momentum.VR, ProxMu: cfg.Algorithm.ProxMu, HeavyBall: cfg.Local.Momentum,
	}
	switch cfg.Algorithm.Name {
	case "fedavg":
		s.Client, err = fedavg.New(local)
	case "scaffold":
		opt := scaffold.OptionII
		if cfg.Algorithm.Option == "I" {
			opt = scaffold.OptionI
		}
		s.Client, err = scaffold.New(local, opt)
	default:
		err = fmt.Errorf("algorithm.name %q is unknown, want fedavg or scaffold", cfg.Algorithm.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	sv := cfg.Server
	s.Server = algorithms.ServerConfig{
		Optimizer: sv.Optimizer, LR: sv.LR, Momentum: sv.Momentum, Nesterov: sv.Nesterov,
		Beta1: sv.Beta1, Beta2: sv.Beta2, Tau: sv.Tau,
		Local: local, Scaffold: cfg.Algorithm.Name == "scaffold", Clients: cfg.Clients,
		SampleWeighted: cfg.Algorithm.Weighting == "samples",
	}
	if err := s.Server.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return s, nil
}

// Dataset loads the configured data and partitions it across cfg.Clients.
func Dataset(cfg config.Config, opts Options) (*data.Federated, error) {
	d := cfg.Data
	fd := &data.Federated{Name: d.Name}
	var err error
	switch d.Name {
	case "mnist":
		dir := d.Dir
		if dir == "" {
			if dir, err = data.MNISTModuleDir(opts.GoModCache); err != nil {
				return nil, fmt.Errorf("data.dir is empty and %w", err)
			}
		}
		fd.Train, fd.Test, err = opts.Cache.load("mnist", dir, data.LoadMNIST)
	case "npy":
		fd.Train, fd.Test, err = opts.Cache.load("npy", d.Dir, data.LoadNPY)
	case "synthetic":
		var syn *data.Federated
		syn, err = data.Synthetic(data.SyntheticConfig{Alpha: d.Synthetic.Alpha, Beta: d.Synthetic.Beta, IID: d.Synthetic.IID, Users: cfg.Clients}, cfg.Seed)
		if err == nil {
			fd = syn
		}
	}
	if err != nil {
		return nil, err
	}
	pc := data.PartitionConfig{Method: d.Partition, Clients: cfg.Clients, Alpha: d.Alpha, MinSize: d.MinSize,
		ShardsPerClient: d.ShardsPerClient, Sigma: d.Sigma, File: d.PartitionFile, Similarity: d.Similarity}
	if err := fd.SetPartition(pc, cfg.Seed); err != nil {
		return nil, err
	}
	return fd, nil
}

// RealClient is the federated dataset of a process that serves one real
// client, id, with its own data: its training rows are client id's part,
// and every other client's part is empty (nil: not hosted here).
func RealClient(cfg config.Config, id int, train, test *data.Dataset) (*data.Federated, error) {
	if id < 0 || id >= cfg.Clients {
		return nil, fmt.Errorf("real client id %d is not in [0, clients = %d)", id, cfg.Clients)
	}
	if train.Len() == 0 {
		return nil, fmt.Errorf("real client %d has no training examples", id)
	}
	fd := &data.Federated{Name: "real", Train: train, Test: test, Parts: make([][]int, cfg.Clients)}
	fd.Parts[id] = make([]int, train.Len())
	for i := range fd.Parts[id] {
		fd.Parts[id][i] = i
	}
	return fd, nil
}

// Model builds the configured model for d features and the given classes.
func Model(m config.Model, d, classes int) (model.Model, error) {
	init, err := model.ParseInit(m.Init)
	if err != nil {
		return nil, fmt.Errorf("config: model.init: %w", err)
	}
	switch m.Name {
	case "softmax":
		return model.NewSoftmax(d, classes, m.L2, init), nil
	case "mlp":
		return model.NewMLP(d, m.Hidden, classes, init), nil
	}
	return nil, fmt.Errorf("config: model.name %q is unknown, want mlp or softmax", m.Name)
}

// InitialModel returns x^0, drawn from the stream (seed, rng.Init).
func (s *Setup) InitialModel() []float64 {
	x := make([]float64, s.Model.NumParams())
	s.Model.Init(x, rng.Stream(s.Config.Seed, rng.Init, -1, -1))
	return x
}

// Runtime returns the client runtime that runs local updates.
func (s *Setup) Runtime() (*client.Runtime, error) {
	c := s.Config
	return client.New(c.Seed, s.Data, s.Model, s.Client, c.Local.Steps, c.Local.Batch,
		c.Algorithm.Name == "scaffold" && c.Algorithm.Option == "I")
}

// EngineConfig returns the round engine's configuration.
func (s *Setup) EngineConfig() engine.Config {
	c := s.Config
	return engine.Config{Seed: c.Seed, Rounds: c.Rounds, Participation: c.Participation,
		EvalEvery: c.Eval.Every, TrainLoss: c.Eval.TrainLoss}
}

// evalChunk is the number of rows one evaluation task covers. It is fixed,
// so the sums do not depend on the number of workers.
const evalChunk = 2000

// Evaluator measures the global model on the test set (and the training
// set) with a pool of workers goroutines.
type Evaluator struct {
	setup   *Setup
	scratch chan model.Scratch
	workers int
}

// Evaluator returns an evaluator with the given number of workers.
func (s *Setup) Evaluator(workers int) *Evaluator {
	workers = max(workers, 1)
	e := &Evaluator{setup: s, scratch: make(chan model.Scratch, workers), workers: workers}
	for range workers {
		e.scratch <- s.Model.NewScratch(evalChunk)
	}
	return e
}

// Evaluate implements engine.Evaluator.
func (e *Evaluator) Evaluate(ctx context.Context, x []float64, train bool) (engine.Evaluation, error) {
	loss, acc, err := e.measure(ctx, x, e.setup.Data.Test)
	ev := engine.Evaluation{TestLoss: loss, TestAcc: acc}
	if err == nil && train {
		var tl float64
		tl, _, err = e.measure(ctx, x, e.setup.Data.Train)
		ev.TrainLoss = &tl
	}
	return ev, err
}

// measure returns the mean loss and the accuracy of x on ds, summing the
// chunks in order.
func (e *Evaluator) measure(ctx context.Context, x []float64, ds *data.Dataset) (float64, float64, error) {
	n := ds.Len()
	chunks := (n + evalChunk - 1) / evalChunk
	losses, correct := make([]float64, chunks), make([]int, chunks)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(e.workers)
	for c := range chunks {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := <-e.scratch
			defer func() { e.scratch <- s }()
			lo, hi := c*evalChunk, min(n, (c+1)*evalChunk)
			losses[c], correct[c] = s.Eval(x, ds.X[lo*ds.D:hi*ds.D], ds.Y[lo:hi])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	var loss float64
	var right int
	for c := range chunks {
		loss += losses[c]
		right += correct[c]
	}
	return loss / float64(n), float64(right) / float64(n), nil
}
