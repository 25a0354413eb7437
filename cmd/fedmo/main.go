// Command fedmo runs federated-learning experiments.
//
//	fedmo simulate    --config exp.yaml --out runs/exp1 [--set key=value]... [--workers N] [--quiet]
//	fedmo demo        [--out runs/demo]                    the default experiment, four algorithms
//	fedmo partition   --config exp.yaml --out parts.json  the partition a config produces
//	fedmo coordinator --config exp.yaml --out runs/exp1 --listen ADDR --gossip ADDR
//	fedmo client      --join GOSSIP_ADDR [--data DIR --id I]
//	fedmo local       --procs P --config exp.yaml --out runs/exp1
//	fedmo certs       DIR                                   development TLS certificates and a token
//	fedmo sweep       --config base.yaml --grid key=v1,v2 --seeds 1-5 --out runs/sweep1
//	fedmo plot        RUN_OR_SWEEP_DIR... -o fig.png
//	fedmo report      SWEEP_DIR
//	fedmo verify      MANIFEST
//	fedmo version
//
// Each subcommand lives in its own file and registers itself (register).
// Exit codes: 0 success, 1 the run failed, 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/progress"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = ""

// errUsage marks errors in how fedmo was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("FEDMO_CPUPROFILE"); path != "" { // for performance work: a CPU profile per process
		if f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid())); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	err := run(ctx, os.Args[1:])
	if err == nil {
		return
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fedmo:", strings.TrimPrefix(err.Error(), "usage: "))
	}
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	os.Exit(1)
}

// command is one subcommand. Each file of this package registers its own
// in an init function.
type command struct {
	run     func(ctx context.Context, args []string) error
	summary string
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{run: run, summary: summary}
}

func init() {
	register("version", "print the fedmo version", func(context.Context, []string) error {
		fmt.Println(fedmoVersion())
		return nil
	})
}

func run(ctx context.Context, args []string) error {
	names := slices.Sorted(maps.Keys(commands))
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "\n  %-11s %s", n, commands[n].summary)
		}
		return fmt.Errorf("%w: fedmo COMMAND [flags] (fedmo COMMAND -h for its flags); commands:%s", errUsage, b.String())
	}
	c, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown command %q; want one of %s", errUsage, args[0], strings.Join(names, ", "))
	}
	return c.run(ctx, args[1:])
}

// common are the flags every experiment command takes.
type common struct {
	config   string
	sets     setFlags
	mnistDir string
	workers  int
	quiet    bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "experiment YAML file (empty: the defaults)")
	fs.Var(&c.sets, "set", "override one key, e.g. --set local.lr=0.05 (repeatable)")
	fs.StringVar(&c.mnistDir, "mnist-dir", "", "directory of the MNIST IDX files (default: data.dir, else the GoMNIST module in the Go module cache)")
	fs.IntVar(&c.workers, "workers", 0, "goroutines for local updates (0 = GOMAXPROCS); the results do not depend on it")
	fs.BoolVar(&c.quiet, "quiet", false, "print nothing but errors and the summary")
}

// load resolves the config: the file, then --set, then --mnist-dir.
func (c *common) load() (config.Config, error) {
	sets := c.sets
	if c.mnistDir != "" {
		sets = append(sets, "data.dir="+c.mnistDir)
	}
	cfg, err := config.Load(c.config, sets)
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, " ") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// buildOptions finds what a build needs from the machine.
func buildOptions() experiment.Options {
	return experiment.Options{GoModCache: goModCache()}
}

// goModCache finds the Go module cache: $GOMODCACHE, `go env GOMODCACHE`,
// $GOPATH/pkg/mod or ~/go/pkg/mod.
func goModCache() string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			return d
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "pkg", "mod")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "pkg", "mod")
}

func fedmoVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "devel"
}

// display picks the progress display: a bar on a terminal, log lines
// elsewhere, nothing with --quiet.
func display(quiet bool, label string, rounds int, log *zap.Logger) *progress.Display {
	mode := progress.Log
	switch {
	case quiet:
		mode = progress.Quiet
	case term.IsTerminal(int(os.Stderr.Fd())):
		mode = progress.Bar
	}
	return progress.New(mode, label, rounds, os.Stderr, log)
}

// newLogger logs to stderr in a readable form; --quiet keeps warnings only.
func newLogger(quiet bool) *zap.Logger {
	cfg := zap.NewDevelopmentConfig()
	cfg.DisableStacktrace = true
	cfg.DisableCaller = true
	cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	if quiet {
		cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	}
	log, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return log
}
