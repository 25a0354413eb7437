package coordinator

import "github.com/fedmo/fedmo/engine"

func observerFunc(f func(round int)) engine.Observer {
	return engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		f(m.Round)
		return nil
	})
}
