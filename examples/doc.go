// Package examples holds no code: it is the directory of fedmo's example
// experiments, one YAML file per algorithm, option, dataset and partition
// (algorithms/, datasets/), the sweep files of the reproductions in
// docs/reproductions.md (sweeps/), and the SCAFFOLD quadratic experiment
// as a program (quadratic/). Its test parses every example and runs it
// for two rounds. See README.md.
package examples
