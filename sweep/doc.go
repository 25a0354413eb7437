// Package sweep runs a grid of experiments: the cartesian product of axes
// of config values, each point once per seed, several runs at a time, into
// one directory, and summarises it over seeds.
//
// A Spec comes from flags (ParseGrid, ParseSeeds) or a sweep file
// (LoadSpec). Plan resolves every run's config before anything runs, so a
// bad value fails the sweep at once and names the run. Run executes the
// plan into DIR/<run name>, one directory per run, named from the point
// and the seed (RunName: "algorithm.name=fedavg,local.lr=0.05,seed=3"),
// and records the spec and the runs in DIR/sweep.json. Summary and Points
// read a sweep directory back for tables, figures and reports.
//
// # Resuming
//
// Run skips a run whose directory already holds a complete run of the same
// config (by the manifest's config_sha256, and only if the manifest passes
// its self-check), and a run that diverged (it would diverge again). It
// removes and re-runs a directory that holds an interrupted run. So an
// interrupted sweep, run again with the same command, resumes; a sweep run
// again with more seeds or values adds only the new runs. A directory that
// holds a run of a different config, or files a run does not write, stops
// the sweep before it changes anything.
//
// # Determinism
//
// Every run is simulate.Run of its config with a fixed number of workers
// (1 by default), so its per-round model hashes are those of a standalone
// `fedmo simulate` of the same config: the runs in parallel share nothing
// but the machine. Plans, directory names and tables depend only on the
// spec; nothing ranges over a map.
package sweep
