package coordinator

import (
	"context"
	"testing"

	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	"github.com/fedmo/fedmo/runner"
	"github.com/fedmo/fedmo/simulate"
	"github.com/fedmo/fedmo/wire/shm"
)

// simulated runs setup's config in the simulator: the run a remote one
// must equal.
func simulated(t *testing.T, setup *experiment.Setup) *runner.Result {
	t.Helper()
	want, err := simulate.Run(context.Background(), setup.Config, simulate.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// sharedDir opens a shared directory for the test.
func sharedDir(t *testing.T) *shm.Dir {
	t.Helper()
	d, err := shm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func observerFunc(f func(round int)) engine.Observer {
	return engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		f(m.Round)
		return nil
	})
}
