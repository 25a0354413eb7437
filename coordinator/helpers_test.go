package coordinator

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"

	"github.com/fedmo/fedmo/client/process"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/experiment"
	fedmov1 "github.com/fedmo/fedmo/proto/fedmo/v1"
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

// trainer is a client process's Train service for setup's run.
func trainer(t *testing.T, setup *experiment.Setup, workers int) *process.Trainer {
	t.Helper()
	rt, err := setup.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	return process.NewTrainer(setup, rt, workers, nil)
}

// listen serves svc on 127.0.0.1:0 until the test ends, as the process
// name of virtual clients.
func listen(t *testing.T, name string, svc fedmov1.ClientServiceServer) (Host, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	fedmov1.RegisterClientServiceServer(s, svc)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return Host{Name: name, Addr: lis.Addr().String(), Real: -1}, s
}
