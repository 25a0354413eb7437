package sweep

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"

	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/progress"
)

// Display shows a sweep's progress. Run calls Start once, then RunStarted,
// Round (for every round) and RunFinished from the goroutine of each run,
// several runs at a time; implementations must be safe for concurrent use
// and must not block.
type Display interface {
	// Start: total runs in the sweep, done already, to run now, and the
	// rounds those will run.
	Start(total, done, todo, rounds int)
	RunStarted(name string, rounds int)
	Round(name string, m *engine.Metrics)
	// RunFinished: acc is the last test accuracy (nil if never evaluated),
	// err why the run stopped early.
	RunFinished(name string, st State, acc *float64, err error)
	Close()
}

type nopDisplay struct{}

func (nopDisplay) Start(int, int, int, int)                   {}
func (nopDisplay) RunStarted(string, int)                     {}
func (nopDisplay) Round(string, *engine.Metrics)              {}
func (nopDisplay) RunFinished(string, State, *float64, error) {}
func (nopDisplay) Close()                                     {}

// NewDisplay returns the display for a mode of package progress: a bar on w
// over all the rounds to run, described by the runs done, running and
// left (progress.Bar); one log line as each run starts and ends
// (progress.Log); or nothing (progress.Quiet).
func NewDisplay(mode progress.Mode, w io.Writer, log *zap.Logger) Display {
	switch mode {
	case progress.Bar:
		return &barDisplay{w: w}
	case progress.Log:
		if log == nil {
			log = zap.NewNop()
		}
		return &logDisplay{log: log}
	}
	return nopDisplay{}
}

// counts are the runs done, running and left; shared by the displays.
type counts struct {
	total, done, running, left int
}

func (c counts) String() string {
	return fmt.Sprintf("runs: %d/%d done, %d running, %d left", c.done, c.total, c.running, c.left)
}

type barDisplay struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
	c   counts
}

func (d *barDisplay) Start(total, done, todo, rounds int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c = counts{total: total, done: done, left: todo}
	d.bar = progressbar.NewOptions(max(rounds, 1),
		progressbar.OptionSetWriter(d.w),
		progressbar.OptionSetDescription(d.c.String()),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (d *barDisplay) RunStarted(name string, _ int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.running++
	d.c.left--
	d.bar.Describe(d.c.String())
}

func (d *barDisplay) Round(string, *engine.Metrics) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bar.Add(1)
}

func (d *barDisplay) RunFinished(name string, st State, _ *float64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.running--
	if st != Cancelled {
		d.c.done++
	}
	d.bar.Describe(d.c.String())
	if err != nil && st != Cancelled {
		d.bar.Clear()
		fmt.Fprintf(d.w, "\rsweep: %s %s: %v\n", name, st, err)
	}
}

func (d *barDisplay) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil {
		d.bar.Finish()
	}
}

type logDisplay struct {
	mu  sync.Mutex
	log *zap.Logger
	c   counts
}

func (d *logDisplay) Start(total, done, todo, rounds int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c = counts{total: total, done: done, left: todo}
	d.log.Info("sweep: start", zap.Int("runs", total), zap.Int("complete_already", done), zap.Int("to_run", todo), zap.Int("rounds_to_run", rounds))
}

func (d *logDisplay) RunStarted(name string, rounds int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.running++
	d.c.left--
	d.log.Info("sweep: run started", zap.String("run", name), zap.Int("rounds", rounds), zap.Int("done", d.c.done),
		zap.Int("running", d.c.running), zap.Int("left", d.c.left))
}

func (d *logDisplay) Round(string, *engine.Metrics) {}

func (d *logDisplay) RunFinished(name string, st State, acc *float64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.running--
	if st != Cancelled {
		d.c.done++
	}
	f := []zap.Field{zap.String("run", name), zap.Stringer("state", st), zap.Int("done", d.c.done), zap.Int("total", d.c.total),
		zap.Int("running", d.c.running), zap.Int("left", d.c.left)}
	if acc != nil {
		f = append(f, zap.Float64("test_acc", *acc))
	}
	if err != nil {
		d.log.Warn("sweep: run stopped", append(f, zap.Error(err))...)
		return
	}
	d.log.Info("sweep: run finished", f...)
}

func (d *logDisplay) Close() {}
