package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/term"

	"github.com/fedmo/fedmo/client/process"
	"github.com/fedmo/fedmo/coordinator"
	"github.com/fedmo/fedmo/membership"
	"github.com/fedmo/fedmo/progress"
	"github.com/fedmo/fedmo/runner"
	"github.com/fedmo/fedmo/security"
	"github.com/fedmo/fedmo/wire/shm"
)

func init() {
	register("coordinator", "serve a run to client processes (gRPC + gossip)", coordinatorCmd)
	register("client", "a client process: join the cluster and train the clients the coordinator sends", clientCmd)
	register("local", "a coordinator and --procs client processes on 127.0.0.1, in one command", localCmd)
}

// netFlags are the transport and membership flags of every process.
type netFlags struct {
	listen, gossip, profile, key, label string
	shared                              string
	join                                setFlags
	sec                                 security.Options
}

func (n *netFlags) register(fs *flag.FlagSet, listen, gossip string) {
	fs.StringVar(&n.listen, "listen", listen, "gRPC address to serve on (port 0 picks one)")
	fs.StringVar(&n.gossip, "gossip", gossip, "gossip (memberlist) address to bind (port 0 picks one)")
	fs.Var(&n.join, "join", "gossip address of a cluster member to join (repeatable)")
	fs.StringVar(&n.profile, "profile", membership.ProfileLAN, "failure detection: lan (memberlist defaults) or local (fast, for one machine)")
	fs.StringVar(&n.key, "gossip-key", "", "file with the gossip encryption key (16, 24 or 32 bytes, raw or base64)")
	fs.StringVar(&n.label, "cluster", "", "cluster label: keeps clusters on one network apart")
	fs.StringVar(&n.sec.CertFile, "tls-cert", "", "TLS certificate (PEM) of this process")
	fs.StringVar(&n.sec.KeyFile, "tls-key", "", "TLS private key (PEM) of this process")
	fs.StringVar(&n.sec.CAFile, "tls-ca", "", "CA (PEM) that signs the peers' certificates: enables verification, and mutual TLS with --tls-cert")
	fs.StringVar(&n.sec.TokenFile, "token-file", "", "file with the shared token every RPC must carry")
	fs.StringVar(&n.shared, "shm", "", "directory on this host (best on tmpfs, /dev/shm) through which vectors go between the coordinator and the client processes given the same one, instead of through gRPC")
}

// security returns the gRPC security options: plaintext unless a TLS flag
// is given (the examples run on loopback without certificates).
func (n *netFlags) security() security.Options {
	o := n.sec
	o.Insecure = o.CertFile == "" && o.KeyFile == "" && o.CAFile == ""
	return o
}

func (n *netFlags) membership() membership.Config {
	return membership.Config{Bind: n.gossip, Seeds: n.join, Profile: n.profile, KeyFile: n.key, Label: n.label}
}

func coordinatorCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo coordinator", flag.ContinueOnError)
	var c common
	c.register(fs)
	var n netFlags
	n.register(fs, "127.0.0.1:7070", "127.0.0.1:7946")
	out := fs.String("out", "", "run directory (as fedmo simulate writes it, plus checkpoints/)")
	resume := fs.Bool("resume", false, "continue the run in --out from its checkpoint (its config.yaml unless --config is given)")
	timeout := fs.Duration("round-timeout", 10*time.Minute, "a round's deadline")
	quorum := fs.Float64("quorum", 1, "fraction of a round's clients that must report for it to close at the deadline without missing real clients")
	waitProcs := fs.Int("wait-procs", 1, "client processes to wait for before the first round")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out DIR is required", errUsage)
	}
	if *resume && c.config == "" {
		c.config = filepath.Join(*out, "config.yaml")
	}
	if !(*quorum >= 0 && *quorum <= 1) {
		return fmt.Errorf("%w: --quorum %v, want a fraction in [0, 1]", errUsage, *quorum)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	log := newLogger(c.quiet)
	defer log.Sync()
	disp := display(true, "", cfg.Rounds, log) // the coordinator logs a line per round itself
	res, err := coordinator.Run(ctx, cfg, buildOptions(), coordinator.Options{
		Listen: n.listen, Gossip: n.membership(), Security: n.security(),
		Run:          runner.Options{Out: *out, Resume: *resume, Version: fedmoVersion(), Workers: c.workers, Observer: disp, Logger: log},
		RoundTimeout: *timeout, Quorum: *quorum, WaitProcs: *waitProcs, SharedDir: n.shared,
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d rounds in %.1fs; final model sha256 %s; wrote %s\n", len(res.Rounds), res.Seconds, res.FinalSHA256, *out)
	return nil
}

func clientCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo client", flag.ContinueOnError)
	var c common
	c.register(fs)
	var n netFlags
	n.register(fs, "127.0.0.1:0", "127.0.0.1:0")
	dataDir := fs.String("data", "", "a real client: directory of its own train_x.npy, train_y.npy, test_x.npy, test_y.npy")
	id := fs.Int("id", -1, "a real client: its client id (with --data)")
	wait := fs.Duration("coordinator-wait", time.Minute, "how long to wait for a coordinator (at start and after one failed)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(n.join) == 0 {
		return fmt.Errorf("%w: --join ADDR (a cluster member's gossip address) is required", errUsage)
	}
	if (*dataDir == "") != (*id < 0) {
		return fmt.Errorf("%w: a real client needs both --data DIR and --id I", errUsage)
	}
	expect := ""
	if c.config != "" {
		cfg, err := c.load()
		if err != nil {
			return err
		}
		expect = cfg.Hash()
	}
	log := newLogger(c.quiet)
	defer log.Sync()
	return process.Run(ctx, process.Options{
		Listen: n.listen, Gossip: n.membership(), Security: n.security(), Workers: c.workers, Expect: expect,
		RealID: *id, RealDir: *dataDir, Build: buildOptions(), CoordinatorWait: *wait, Logger: log, SharedDir: n.shared,
	})
}

func localCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo local", flag.ContinueOnError)
	var c common
	c.register(fs)
	out := fs.String("out", "", "run directory")
	procs := fs.Int("procs", 2, "client processes to start (tasks run on as few of them as the machine's cores allow; the others stand by)")
	transport := fs.String("transport", "shm", "how vectors move: shm (files in a shared directory, /dev/shm) or grpc (streamed, as between machines)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *transport != "shm" && *transport != "grpc" {
		return fmt.Errorf("%w: --transport %q, want shm or grpc", errUsage, *transport)
	}
	if *out == "" {
		return fmt.Errorf("%w: --out DIR is required", errUsage)
	}
	if *procs < 1 {
		return fmt.Errorf("%w: --procs %d, want at least 1", errUsage, *procs)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Each process may run as many tasks as the machine has cores; the
	// coordinator keeps no more than that running over all of them, on as
	// few processes as it can (RemoteConfig.MaxInFlight): one process
	// running two tasks is faster than two running one each (measured in
	// BENCHMARKS.md), and the others stand by for the rounds' failures.
	workers := c.workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	log := newLogger(c.quiet)
	defer log.Sync()
	if err := os.MkdirAll(filepath.Join(*out, "procs"), 0o755); err != nil {
		return err
	}
	// With shared memory the process called gets all of the round's tasks
	// at once: one process does the work (see above), so nothing is held
	// back from another, and its pool spreads them over its workers with
	// no round trip to the coordinator in between. Streamed updates need
	// those workers' threads to go out, so then none are queued.
	shared, queue := "", 0
	if *transport == "shm" {
		queue = cfg.Participation
		if shared, err = os.MkdirTemp(shm.DefaultParent(), "fedmo-"); err != nil {
			return err
		}
		defer os.RemoveAll(shared)
	}
	var children []*exec.Cmd
	defer func() {
		for _, ch := range children {
			waitOrKill(ch, 10*time.Second)
		}
	}()
	var startErr error
	ready := func(_, gossipAddr string) {
		for i := range *procs {
			args := []string{"client", "--join", gossipAddr, "--profile", membership.ProfileLocal,
				"--workers", fmt.Sprint(workers), "--coordinator-wait", "10s"}
			if c.mnistDir != "" {
				args = append(args, "--mnist-dir", c.mnistDir)
			}
			if shared != "" {
				args = append(args, "--shm", shared)
			}
			ch := exec.Command(self, args...)
			f, err := os.Create(filepath.Join(*out, "procs", fmt.Sprintf("client-%d.log", i)))
			if err != nil {
				startErr = err
				return
			}
			ch.Stdout, ch.Stderr = f, f
			if err := ch.Start(); err != nil {
				startErr = err
				return
			}
			children = append(children, ch)
		}
	}
	// On a terminal: the simulator's progress bar, and only warnings logged.
	// Elsewhere: the coordinator's structured line per round.
	mode, runLog := progress.Quiet, log
	if !c.quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		mode, runLog = progress.Bar, newLogger(true)
	}
	disp := progress.New(mode, cfg.Algorithm.Name, cfg.Rounds, os.Stderr, runLog)
	res, err := coordinator.Run(ctx, cfg, buildOptions(), coordinator.Options{
		Listen: "127.0.0.1:0", Gossip: membership.Config{Bind: "127.0.0.1:0", Profile: membership.ProfileLocal},
		Security:     security.Options{Insecure: true},
		Run:          runner.Options{Out: *out, Version: fedmoVersion(), Workers: runtime.GOMAXPROCS(0), Observer: disp, Logger: runLog},
		RoundTimeout: 10 * time.Minute, Quorum: 1, WaitProcs: *procs, WaitTimeout: time.Minute, Ready: ready, SharedDir: shared,
		MaxInFlight: runtime.NumCPU(), // the processes share this machine's cores: more tasks at once only time-share them
		Queue:       queue,
	})
	disp.Close()
	if startErr != nil {
		return errors.Join(startErr, err)
	}
	if err != nil {
		return err
	}
	acc := "-"
	if k := len(res.Rounds); k > 0 && res.Rounds[k-1].Eval != nil {
		acc = fmt.Sprintf("%.4f", res.Rounds[k-1].Eval.TestAcc)
	}
	fmt.Printf("%d rounds over %d processes in %.1fs; test accuracy %s; final model sha256 %s; wrote %s\n",
		len(res.Rounds), *procs, res.Seconds, acc, res.FinalSHA256, *out)
	return nil
}

// waitOrKill asks a child to stop (SIGINT: it leaves the cluster), waits
// for it, and kills it after d.
func waitOrKill(c *exec.Cmd, d time.Duration) {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	c.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(d):
		c.Process.Kill()
		<-done
	}
	if f, ok := c.Stdout.(*os.File); ok {
		f.Close()
	}
}
