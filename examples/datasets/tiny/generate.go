//go:build ignore

// Generate writes the tiny NumPy dataset of examples/datasets/npy.yaml:
// three Gaussian blobs in four dimensions, 300 training and 90 test rows,
// and parts.json, a partition of the training rows over six clients, two
// classes each. Run from the repository root:
//
//	go run examples/datasets/tiny/generate.go
package main

import (
	"encoding/json"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"codeberg.org/sbinet/npyio"
	"gonum.org/v1/gonum/mat"
)

const dir = "examples/datasets/tiny"

func blobs(r *rand.Rand, n int) ([][]float64, []int64) {
	centres := [][]float64{{2, 0, 0, 1}, {-1, 2, 0, -1}, {-1, -2, 1, 0}}
	x := make([][]float64, n)
	y := make([]int64, n)
	for i := range n {
		c := i % 3
		y[i] = int64(c)
		x[i] = make([]float64, 4)
		for j := range x[i] {
			x[i][j] = centres[c][j] + r.NormFloat64()
		}
	}
	return x, y
}

func write(name string, v any) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		log.Fatal(err)
	}
	if err := npyio.Write(f, v); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

func flat(x [][]float64) []float64 {
	var out []float64
	for _, row := range x {
		out = append(out, row...)
	}
	return out
}

func main() {
	r := rand.New(rand.NewPCG(2024, 12))
	trX, trY := blobs(r, 300)
	teX, teY := blobs(r, 90)
	// npyio writes a slice as one dimension and a mat.Dense as (rows, cols).
	write("train_x.npy", mat.NewDense(300, 4, flat(trX)))
	write("train_y.npy", trY)
	write("test_x.npy", mat.NewDense(90, 4, flat(teX)))
	write("test_y.npy", teY)
	// Six clients, two classes each: client k holds classes k%3 and
	// (k+1)%3; each class's rows are dealt in turn to the four clients
	// that hold it.
	parts := make([][]int, 6)
	next := make([]int, 3)
	for i, y := range trY {
		c := int(y)
		var holders []int
		for k := range 6 {
			if k%3 == c || (k+1)%3 == c {
				holders = append(holders, k)
			}
		}
		k := holders[next[c]%len(holders)]
		next[c]++
		parts[k] = append(parts[k], i)
	}
	b, err := json.Marshal(parts)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "parts.json"), append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
