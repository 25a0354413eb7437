// Package coordinator runs a federated run over real client processes: it
// serves the run's configuration, watches the gossip membership for client
// processes, and executes each round's local updates on them over gRPC
// (Remote), with the same round engine, run directory and checkpoints as
// the simulator (package runner). For the same config and seed the global
// model after every round is bit-identical to the simulator's, however many
// processes there are, whichever hosts which client, and after failures the
// run survives.
//
// Each round is a work queue (see Remote): processes take tasks as their
// workers free up, so the faster ones run more, and vectors go through a
// shared directory (package wire/shm) instead of the gRPC stream to the
// processes on the coordinator's machine that opened the same one.
//
// # Failures
//
//   - A client process that dies mid-round is noticed by its RPC error (or
//     drops out of gossip); its virtual clients are re-hosted on the live
//     processes and the round completes with the same result.
//   - A real client (its own data, not re-hostable) that is gone at the
//     round deadline is left out if the quorum reported; the manifest
//     records the realised participants, and `fedmo simulate --replay`
//     reproduces the run.
//   - The coordinator checkpoints after every round; `--resume` continues
//     to the same final model.
//   - Bad updates (wrong length, NaN or Inf, an unknown client) are rejected
//     with a reason, logged and counted; a corrupted stream is retried.
package coordinator
