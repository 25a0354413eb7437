// Package progress shows a run's rounds to a person: a progress bar with the
// round, the losses, the accuracy and the time left on a terminal, one
// structured log line per round elsewhere, or nothing.
package progress

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"

	"github.com/fedmo/fedmo/engine"
)

// Mode selects the display.
type Mode int

// Display modes.
const (
	Quiet Mode = iota // nothing
	Log               // one zap line per round
	Bar               // a progress bar (for a terminal)
)

// Display is an engine.Observer that shows progress.
type Display struct {
	mode   Mode
	log    *zap.Logger
	bar    *progressbar.ProgressBar
	label  string
	acc    string
	rounds int
}

// New returns a display for a run of the given number of rounds. The bar is
// drawn on w; log lines go to log.
func New(mode Mode, label string, rounds int, w io.Writer, log *zap.Logger) *Display {
	d := &Display{mode: mode, log: log, label: label, rounds: rounds, acc: "-"}
	if mode == Bar {
		d.bar = progressbar.NewOptions(rounds,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return d
}

// Round implements engine.Observer.
func (d *Display) Round(m *engine.Metrics, _ []float64) error {
	if m.Eval != nil {
		d.acc = fmt.Sprintf("%.4f", m.Eval.TestAcc)
	}
	switch d.mode {
	case Bar:
		d.bar.Describe(fmt.Sprintf("%s round %d/%d loss %.4f acc %s", d.label, m.Round, d.rounds, m.LocalLoss, d.acc))
		d.bar.Set(m.Round)
	case Log:
		f := []zap.Field{zap.String("run", d.label), zap.Int("round", m.Round), zap.Int("rounds", d.rounds),
			zap.Float64("local_loss", m.LocalLoss), zap.Int("participants", len(m.Participants)),
			zap.Float64("seconds", m.Seconds)}
		if m.Eval != nil {
			f = append(f, zap.Float64("test_loss", m.Eval.TestLoss), zap.Float64("test_acc", m.Eval.TestAcc))
			if m.Eval.TrainLoss != nil {
				f = append(f, zap.Float64("train_loss", *m.Eval.TrainLoss))
			}
		}
		if len(m.Rejected) > 0 {
			f = append(f, zap.Any("rejected", m.Rejected))
		}
		d.log.Info("round", f...)
	}
	return nil
}

// Close removes the bar.
func (d *Display) Close() {
	if d.bar != nil {
		d.bar.Finish()
	}
}
