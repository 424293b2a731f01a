#!/usr/bin/env bash
# The synthetic TCLR ablation of docs/results.md: random init, IC, IC + LL + GL, three seeds
# each, then TCLR's nearest-neighbour protocol. Usage: scripts/tclr_ablation.sh [WORK_DIR]
# (about 20 minutes on 2 cores). Prints one JSON line per run: backbone, seed, R@k.
set -euo pipefail
work=${1:-/tmp/tclr-ablation}
recipe="$(dirname "$0")/../recipes/tclr_synthetic.yaml"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -d "$work/data/actions" ] || tempclr synth "$work/data" --videos 0 --class-by motion --class-videos 16 --fps 24 --size 48 -q
data=(--set "data.root=$work/data/actions" --set "data.annotations=$work/data/actions")
declare -A variant=(
  [random]="--set train.epochs=1 --set optim.lr=0"
  [ic]="--set loss.local_local=0 --set loss.global_local=0"
  [tclr]=""
)
for seed in 0 1 2; do
  for name in random ic tclr; do
    run="$work/runs/${name}_s$seed"
    # shellcheck disable=SC2086
    tempclr train "$recipe" "${data[@]}" --seed "$seed" ${variant[$name]} --run-dir "$run" -q > /dev/null
    tempclr retrieve "$work/data/actions" --task nn --format ucf101 --annotations "$work/data/actions" \
      --checkpoint "$run/last.pt" --json --device cpu \
      | python -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'backbone': '$name', 'seed': $seed, **{k: v for k, v in r.items() if k.startswith('R@')}}))"
  done
done
