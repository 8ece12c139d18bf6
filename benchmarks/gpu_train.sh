#!/usr/bin/env bash
# Training on one CUDA GPU, start to finish in one call of under 10 minutes (#10). Each run starts
# from the shipped backbone; runs share the GPU side by side, each with an equal share of the CPU
# cores for its data (the data processes, not the GPU, set the pace). The runs (RUNS):
#   box          the textured test box of benchmarks/train_curves.py (an object pretraining never
#                saw), with the recipe of models/default/card.json: the "new object in <= 5 minutes" figure;
#   drill        the built-in drill with the recipe of the drill candidates (--context 2
#                --hidden-peak 0.25, model coordinates at their default);
#   drill_plain  the drill without those two: the shipped drill's network and hidden targets, whose
#                demo the candidates with --hidden-peak 0.25 have all lost 2D on (RESULTS.md);
#   drill_wide   the drill's candidate recipe on a network 1.5x as wide (--width 1.5, from scratch: the
#                backbone is width 1.0's): whether the drill's 90 % PCK@5px target needs capacity, as its
#                plateau at 82.5 % on both the GPU and the CPU chains suggests (RESULTS.md);
#   bottle       the built-in bottle, with its card's recipe;
#   plainbox     models/plainbox/object with its card's recipe (--context 2 --hidden-peak 0.25).
# Synthetic data is rendered there on all cores, once per object. A short calibration run of each
# measures the step rate under the same sharing, and each real run gets the iterations that fill
# TRAIN_S seconds (so the cosine schedule ends where the time does), under a timeout guard. Each
# run is exported and scored on its unseen test images. What comes back through $OUT (the device
# brings back 8 files, so at most 3 runs a call):
#   <run>_best.pt  <run>_log.csv  (per run)  curve.png  run.log
# Figures and the commands behind them: benchmarks/RESULTS.md, "Training on one GPU".
#
#   OUT=$OUT bash benchmarks/gpu_train.sh                                 # the box and the drill
#   OUT=$OUT RUNS=box bash benchmarks/gpu_train.sh                        # the box alone
#   OUT=$OUT RUNS="drill drill_plain" bash benchmarks/gpu_train.sh        # the two drill recipes
#   OUT=/tmp/t NUM=64 NUM_DRILL=64 TEST=16 TRAIN_S=20 CAL=6 DEVICE=cpu bash benchmarks/gpu_train.sh  # dry run
#
# Knobs (environment): RUNS ("box drill"), NUM_DRILL (30000) and NUM (20000, the other objects)
# training images, TEST test images (500; twice that for the drill), TRAIN_S training seconds per
# run (270), CAL calibration iterations (150), BATCH (32), LR (2e-3: the CPU recipe's 1e-3 at
# batch 8, raised for the larger batch), DEVICE (cuda), WORK (scratch, default
# /tmp/kptrack_gpu_work, removed at the end). On a machine without the package's dependencies
# installed, the wheels in .whl/ (kptrack, trimesh, xatlas; see benchmarks/RESULTS.md) are
# installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
NUM=${NUM:-20000}; NUM_DRILL=${NUM_DRILL:-30000}; TEST=${TEST:-500}; TRAIN_S=${TRAIN_S:-270}; CAL=${CAL:-150}
BATCH=${BATCH:-32}; LR=${LR:-2e-3}; DEVICE=${DEVICE:-cuda}; WORK=${WORK:-/tmp/kptrack_gpu_work}
RUNS=${RUNS:-box drill}; read -r -a runs <<< "$RUNS"
# run -> object, data set, recipe options beyond the common ones
declare -A object=([box]="$WORK/objects/box" [drill]=default [drill_plain]=default [drill_wide]=default [bottle]=bottle [plainbox]=models/plainbox/object)
declare -A dataset=([box]=box [drill]=drill [drill_plain]=drill [drill_wide]=drill [bottle]=bottle [plainbox]=plainbox)
declare -A options=([box]="" [drill]="--context 2 --hidden-peak 0.25" [drill_plain]="" [drill_wide]="--width 1.5 --context 2 --hidden-peak 0.25" [bottle]="" [plainbox]="--context 2 --hidden-peak 0.25")
for n in "${runs[@]}"; do
  [ -n "${dataset[$n]+x}" ] || { echo "RUNS: unknown run '$n'; use any of: ${!dataset[*]}" >&2; exit 2; }
done
[ "${#runs[@]}" -le 3 ] || { echo "RUNS: ${#runs[@]} runs; at most 3 a call (the device brings back 8 files)" >&2; exit 2; }
CORES=$(nproc); spare=$(( CORES > 4 ? CORES - 2 : 2 ))
per_run=$(( spare / ${#runs[@]} > 0 ? spare / ${#runs[@]} : 1 ))
sets=(); for n in "${runs[@]}"; do [[ " ${sets[*]} " == *" ${dataset[$n]} "* ]] || sets+=("${dataset[$n]}"); done
declare -A set_object=()
for n in "${runs[@]}"; do set_object[${dataset[$n]}]=${object[$n]}; done
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/run.log") 2>&1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }
export TQDM_DISABLE=1 PYTHONUNBUFFERED=1
each() {  # each NAME... -- CMD...: run "CMD NAME" for every NAME, side by side, and wait for all
  local names=() pids=() n p rc=0
  while [ "$1" != -- ]; do names+=("$1"); shift; done; shift
  for n in "${names[@]}"; do "$@" "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  return $rc
}

if ! python3 -c "import tracker.cli, trimesh, xatlas" 2>/dev/null || ! command -v kptrack >/dev/null; then
  stamp "installing kptrack and its missing dependencies from .whl/"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PATH="/tmp/site/bin:$PATH"
fi
python3 -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''); print('onnxruntime', o.__version__, o.get_available_providers())"
echo "cores $CORES; runs: ${runs[*]}, $per_run data processes each; data sets: ${sets[*]}"

stamp "objects and data"
python3 -m benchmarks.train_curves objects --out "$WORK/objects"
synth() {  # split seed count data-set
  kptrack synth --object "${set_object[$4]}" --out "$WORK/$4" --num "$3" --seed "$2" --split "$1" \
    --workers $(( CORES / ${#sets[@]} > 0 ? CORES / ${#sets[@]} : 1 )) > "$WORK/synth_$4_$1.log" 2>&1
}
synth_train() { synth train_synth 0 "$([ "$1" = drill ] && echo "$NUM_DRILL" || echo "$NUM")" "$1"; }
synth_test() { synth test_synth 777 "$([ "$1" = drill ] && echo $(( 2 * TEST )) || echo "$TEST")" "$1"; }
each "${sets[@]}" -- synth_train
each "${sets[@]}" -- synth_test

recipe() {  # the run's arguments, without --iters/--out/--val-every, into the caller's array ARGS
  local n=$1 extra
  read -r -a extra <<< "${options[$n]}"
  ARGS=(--recipe seed --object "${object[$n]}" --data "$WORK/${dataset[$n]}" --preset lite --optimizer adam --lr "$LR" --batch "$BATCH"
        --peak-weight 5 --sigma-start 4 --workers "$per_run" --device "$DEVICE" "${extra[@]}")
}
calibrate() {
  local ARGS; recipe "$1"
  kptrack train "${ARGS[@]}" --iters "$CAL" --val-every 100000 --log-every $(( CAL / 3 )) --out "$WORK/cal_$1" > "$WORK/cal_$1.log" 2>&1
}
iters_for() {  # the iterations that fill TRAIN_S at the rate of the calibration's last window, 10 % kept for validation
  python3 - "$WORK/cal_$1/log.csv" "$TRAIN_S" "$BATCH" <<'EOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["images_per_s"]]
ips = float(rows[-1]["images_per_s"])
print(max(100, int(0.9 * float(sys.argv[2]) * ips / int(sys.argv[3])) // 100 * 100))
EOF
}
train() {  # under a guard, so a slow run cannot eat the call: its last validation's checkpoints stay
  local n=$1 it ARGS; it=$(iters_for "$n"); recipe "$n"
  stamp "$n: $it iterations x batch $BATCH on $DEVICE"
  timeout $(( TRAIN_S + 90 )) kptrack train "${ARGS[@]}" --iters "$it" --val-every $(( it / 10 > 0 ? it / 10 : 1 )) \
    --out "$WORK/${n}_run" > "$WORK/${n}_train.log" 2>&1 || echo "$n training ended with status $?"
}

stamp "calibration: $CAL iterations of each run, side by side"
each "${runs[@]}" -- calibrate
stamp "training"
each "${runs[@]}" -- train
for n in "${runs[@]}"; do
  tail -n 3 "$WORK/${n}_train.log"
  for f in best.pt log.csv; do [ ! -f "$WORK/${n}_run/$f" ] || cp "$WORK/${n}_run/$f" "$OUT/${n}_$f"; done
done

stamp "export and score"
curves=()
for n in "${runs[@]}"; do
  ck="$WORK/${n}_run/best.pt"; [ -f "$ck" ] || ck="$WORK/${n}_run/last.pt"
  kptrack export --checkpoint "$ck" --out "$WORK/${n}.onnx" > "$WORK/${n}_export.log" 2>&1 || tail -n 5 "$WORK/${n}_export.log"
  echo "== $n: score on unseen test images"
  kptrack score --model "$WORK/${n}.onnx" --data "$WORK/${dataset[$n]}" --split test_synth --object "${object[$n]}" 2>&1 | tail -n 4
  curves+=("gpu $n=$WORK/${n}_run")
done
python3 -m benchmarks.train_curves plot "${curves[@]}" --out "$OUT/curve.png" || true
for n in "${runs[@]}"; do echo "== $n validation"; awk -F, 'NR == 1 || $5 != ""' "$WORK/${n}_run/log.csv"; done
rm -rf "$WORK"
stamp "done"
