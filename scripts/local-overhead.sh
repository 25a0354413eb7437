#!/usr/bin/env bash
# The overhead of `fedmo local --procs P` over `fedmo simulate` on the demo
# workload (cmd/fedmo/demo.yaml, FedAvg, evaluation only after the last
# round), interleaved REPEATS times because these machines drift.
#
#   scripts/local-overhead.sh [PROCS] [REPEATS] [--set key=value ...]
#   LOCAL_ARGS="--transport grpc" scripts/local-overhead.sh 4 3   # flags for local only
#
# Prints one JSON line per repeat: the seconds of the 100 rounds (the
# manifest's "seconds": rounds, evaluation, run-directory writes and, for
# local, the coordinator's checkpoints; process start-up and the wait for
# the client processes excluded on both sides), and the ratio
# local/simulate.
set -euo pipefail
cd "$(dirname "$0")/.."
PROCS=${1:-4}
REPEATS=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
OUT=runs/local-overhead
make -s build
mkdir -p "$OUT"
secs() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$1/manifest.json"; }
for i in $(seq "$REPEATS"); do
  rm -rf "$OUT/sim" "$OUT/local"
  bin/fedmo simulate --config cmd/fedmo/demo.yaml --out "$OUT/sim" --quiet --set eval.every=0 "$@" >/dev/null
  bin/fedmo local --procs "$PROCS" ${LOCAL_ARGS:-} --config cmd/fedmo/demo.yaml --out "$OUT/local" --quiet --set eval.every=0 "$@" >/dev/null
  s=$(secs "$OUT/sim"); l=$(secs "$OUT/local")
  same=$(/usr/bin/python3 -c 'import json,sys; a,b=(json.load(open(p))["final_model_sha256"] for p in sys.argv[1:]); print(a==b)' "$OUT/sim/manifest.json" "$OUT/local/manifest.json")
  /usr/bin/python3 -c "import json; print(json.dumps({'procs': $PROCS, 'simulate_s': round($s,3), 'local_s': round($l,3), 'ratio': round($l/$s,2), 'same_final_hash': $same}))"
done
