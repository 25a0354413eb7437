package simulate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedmo/fedmo/data"
	"github.com/fedmo/fedmo/experiment"
)

// TestUserDataReproducesTheRun exports a generated dataset and its
// partition as NumPy files and a partition file, runs on those, and expects
// the run of the generated data, bit for bit.
func TestUserDataReproducesTheRun(t *testing.T) {
	cfg := parse(t, small, "data.partition=dirichlet", "data.alpha=0.5", "data.min_size=2", "algorithm.name=scaffold")
	want := run(t, cfg, 2, "")

	fd, err := experiment.Dataset(cfg, experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := data.WriteNPYDir(dir, fd.Train, fd.Test); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, "parts.json")
	if err := data.WritePartitionFile(pf, fd.Parts); err != nil {
		t.Fatal(err)
	}

	npy := parse(t, small, "data.name=npy", "data.dir="+dir, "data.partition=file", "data.partition_file="+pf, "algorithm.name=scaffold")
	got := run(t, npy, 2, "")
	if strings.Join(hashes(got), ",") != strings.Join(hashes(want), ",") {
		t.Fatalf("the exported data and partition give hashes %v, want %v", hashes(got), hashes(want))
	}
	if got.Setup.Fingerprint != want.Setup.Fingerprint {
		t.Errorf("dataset fingerprints differ: %s vs %s", got.Setup.Fingerprint, want.Setup.Fingerprint)
	}
}

func TestBadDataIsAnError(t *testing.T) {
	dir := t.TempDir()
	for _, sets := range [][]string{
		{"data.name=npy", "data.dir=" + dir, "data.partition=iid"},
		{"data.partition=file", "data.partition_file=" + filepath.Join(dir, "missing.json")},
		{"data.name=mnist", "data.dir=" + dir, "data.partition=iid"},
		{"algorithm.name=scaffold", "algorithm.prox_mu=1"},
		{"local.momentum=0.5", "algorithm.momentum.beta=0.5"},
		{"server.optimizer=adam", "server.momentum=0.9"},
	} {
		if _, err := Run(t.Context(), parse(t, small, sets...), Options{}); err == nil {
			t.Errorf("%v: the run started, want an error", sets)
		} else {
			t.Logf("%v: %v", sets, err)
		}
	}
}
