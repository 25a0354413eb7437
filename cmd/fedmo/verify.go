package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"codeberg.org/sbinet/npyio"

	"github.com/fedmo/fedmo/config"
	"github.com/fedmo/fedmo/engine"
	"github.com/fedmo/fedmo/report"
	"github.com/fedmo/fedmo/runio"
	"github.com/fedmo/fedmo/simulate"
)

func init() {
	register("verify", "re-run a finished run from its manifest and check every round's model hash", verifyCmd)
}

const verifyUsage = `fedmo verify MANIFEST

Checks a finished run: the manifest's own manifest_sha256 (a manifest edited
by hand fails), config.yaml against config_sha256, then re-runs the config
and compares the model hash and the participants of every round, the final
model hash and model.npy. It names the first round that differs and exits 1
on any difference. MANIFEST is a run's manifest.json or its directory.

`

// errMismatch marks a re-run that differs from the manifest.
var errMismatch = errors.New("does not reproduce")

// roundMismatch stops the re-run at the first round that differs.
type roundMismatch struct {
	round     int
	what      string
	want, got string
}

func (m *roundMismatch) Error() string {
	return fmt.Sprintf("round %d: the %s differs: the manifest has %s, the re-run %s", m.round, m.what, m.want, m.got)
}

func verifyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fedmo verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), verifyUsage)
		fs.PrintDefaults()
	}
	workers := fs.Int("workers", 0, "goroutines for the re-run (0 = GOMAXPROCS); the hashes do not depend on it")
	dataDir := fs.String("data-dir", "", "read the data from this directory instead of the config's data.dir (the dataset fingerprint is still checked)")
	quiet := fs.Bool("quiet", false, "print nothing but errors and the verdict")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(paths) != 1 {
		return fmt.Errorf("%w: fedmo verify MANIFEST: want one manifest.json (or run directory), got %d arguments", errUsage, len(paths))
	}
	path := paths[0]
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "manifest.json")
	}
	dir := filepath.Dir(path)
	say := func(format string, a ...any) {
		if !*quiet {
			fmt.Printf(format+"\n", a...)
		}
	}

	man, err := runio.CheckManifest(path)
	if err != nil {
		return err
	}
	say("manifest      ok: manifest_sha256 matches its content")
	if man.Status != report.StatusComplete {
		return fmt.Errorf("%s: the run did not finish (status %q); only complete runs can be verified", path, man.Status)
	}
	cpath := filepath.Join(dir, "config.yaml")
	src, err := os.ReadFile(cpath)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != man.ConfigSHA256 {
		return fmt.Errorf("%s %w: its SHA-256 is %s, the manifest's config_sha256 %s (config.yaml was changed after the run)",
			cpath, errMismatch, hex.EncodeToString(sum[:]), man.ConfigSHA256)
	}
	cfg, err := config.Parse(src, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", cpath, err)
	}
	if cfg.Hash() != man.ConfigSHA256 {
		return fmt.Errorf("%s: this fedmo resolves it to config %s, not the manifest's %s (a fedmo version with other config keys?)", cpath, cfg.Hash(), man.ConfigSHA256)
	}
	if cfg.Seed != man.Seed || len(man.Rounds) != cfg.Rounds || man.RoundsDone != cfg.Rounds {
		return fmt.Errorf("%s %w: seed %d and %d rounds (%d done), the config has seed %d and %d rounds", path, errMismatch, man.Seed, len(man.Rounds), man.RoundsDone, cfg.Seed, cfg.Rounds)
	}
	say("config.yaml   ok: SHA-256 equals config_sha256")
	if *dataDir != "" {
		cfg.Data.Dir = *dataDir
	}
	if man.FedmoVersion != fedmoVersion() {
		say("note: the run was made by fedmo %s; this is %s", man.FedmoVersion, fedmoVersion())
	}

	check := engine.ObserverFunc(func(m *engine.Metrics, _ []float64) error {
		want := man.Rounds[m.Round-1]
		if !slices.Equal(want.Participants, m.Participants) {
			return &roundMismatch{m.Round, "set of participants", fmt.Sprint(want.Participants), fmt.Sprint(m.Participants)}
		}
		if want.ModelSHA256 != m.ModelSHA256 {
			return &roundMismatch{m.Round, "model hash", want.ModelSHA256, m.ModelSHA256}
		}
		return nil
	})
	log := newLogger(*quiet)
	defer log.Sync()
	disp := display(*quiet, "verify", cfg.Rounds, log)
	// Replay the realised participants: the sampled ones in a simulated
	// run, fewer where a distributed round closed at its deadline without
	// a real client.
	replay := make([][]int, len(man.Rounds))
	for i, r := range man.Rounds {
		replay[i] = r.Participants
	}
	res, err := simulate.Run(ctx, cfg, simulate.Options{Workers: *workers, Build: buildOptions(),
		Replay: replay, Observer: engine.Observers{check, disp}})
	disp.Close()
	var mm *roundMismatch
	if errors.As(err, &mm) {
		hint := ""
		if res != nil && res.Setup != nil && res.Setup.Fingerprint != man.DatasetFingerprint {
			hint = fmt.Sprintf("; the dataset differs too (fingerprint %.12s..., the manifest's %.12s...)", res.Setup.Fingerprint, man.DatasetFingerprint)
		}
		if mm.round > 1 {
			hint += fmt.Sprintf("; rounds 1-%d agree", mm.round-1)
		}
		return fmt.Errorf("%s %w: %v%s", path, errMismatch, mm, hint)
	}
	if err != nil {
		return fmt.Errorf("%s: the re-run failed: %w", path, err)
	}
	if res.Setup.Fingerprint != man.DatasetFingerprint {
		return fmt.Errorf("%s %w: every model hash agrees, but the dataset fingerprint is %s, the manifest's %s", path, errMismatch, res.Setup.Fingerprint, man.DatasetFingerprint)
	}
	if res.Setup.Model.NumParams() != man.NumParams {
		return fmt.Errorf("%s %w: %d parameters, the manifest says %d", path, errMismatch, res.Setup.Model.NumParams(), man.NumParams)
	}
	say("rounds        ok: the model hash and participants of all %d rounds match", len(res.Rounds))
	if res.FinalSHA256 != man.FinalModelSHA256 {
		return fmt.Errorf("%s %w: the final model hash is %s, the manifest's %s", path, errMismatch, res.FinalSHA256, man.FinalModelSHA256)
	}
	say("final model   ok: sha256 %s", res.FinalSHA256)
	npy := filepath.Join(dir, "model.npy")
	x, err := readModel(npy)
	if err != nil {
		return fmt.Errorf("%s: %w", npy, err)
	}
	if h := engine.Hash(x); h != man.FinalModelSHA256 {
		return fmt.Errorf("%s %w: it hashes to %s, the manifest's final model is %s (model.npy was changed after the run)", npy, errMismatch, h, man.FinalModelSHA256)
	}
	say("model.npy     ok: equals the final model")
	fmt.Printf("verified: %s reproduces bit for bit (%d rounds, seed %d)\n", dir, len(res.Rounds), cfg.Seed)
	return nil
}

// readModel reads a model.npy (float64, one dimension).
func readModel(path string) (x []float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer func() { // npyio can panic on malformed headers
		if r := recover(); r != nil {
			err = fmt.Errorf("not a float64 NumPy array: %v", r)
		}
	}()
	if err := npyio.Read(f, &x); err != nil {
		return nil, fmt.Errorf("not a float64 NumPy array: %w", err)
	}
	return x, nil
}
