#!/usr/bin/env bash
# The built-in bottle's model end to end (#12), the recipe models/bottle/card.json records:
#   1. synthetic data: NUM (20000) training images, 500 unseen test images, and ENDS_NUM (4000)
#      more with one end hidden (ENDS_FLAGS, default "--end-occlusion 1"; the axis-occluder
#      candidate of RESULTS is "--end-occlusion 0.5 --axis-occlusion 0.5" with ENDS_SEED 66)
#   2. base: one run of kptrack train's default recipe from the shipped backbone, ITERS (40000)
#      iterations, the first half at 128 px (85 min on the 2-core Xeon VM with bf16); BASE=FILE
#      starts from that checkpoint instead (models/bottle/base/best.pt is such a run, committed so that
#      a fine-tune experiment need not repeat it)
#   3. fine-tune with the fine-tune recipe (--init), FT_ITERS (10000) iterations, seed FT_SEED (5),
#      the end images drawn one part in five (--data train:4 --data ends:1; 28 min)
#   4. export (WORK/heatmaps.onnx), and `kptrack score` on the unseen test images
#   4b. with VIS=1 (the default): VIS_NUM (4000) images with an occluder over an end or along the
#      bottle (seed 66), and `kptrack visibility` (VIS_ITERS, 2500 iterations; 27 min on one core of
#      the 2-core Xeon VM): MODEL, the heatmaps plus a visibility output; VIS=0 exports MODEL directly
#   5. track the development and held-out sequences (SEEDS, 2-17) with both presets (12 min each
#      on one core), every sequence's figures into WORK/sweep.json (refused if it exists) for
#      python -m benchmarks.sweep_compare CANDIDATE/sweep.json TWIN/sweep.json
#
#   bash benchmarks/bottle.sh [WORK]      (default WORK=runs/bottle; NUM, ENDS_NUM, ENDS_SEED, ENDS_FLAGS,
#                                          ITERS, BASE, FT_ITERS, FT_SEED, THREADS, VIS, VIS_NUM, VIS_ITERS, SEEDS,
#                                          and STAGES=all|train|track
#                                          in the environment; train is steps 1-4, track step 5)
# Two arms on a 2-core CPU: STAGES=train THREADS=1 for each, side by side (5.6 iterations a second
# together on the 2-core Xeon VM, where one run on both threads made 3.6), then STAGES=track for each.
# Step 5 alone on the shipped model:
#   STAGES=track MODEL=models/bottle/model.onnx bash benchmarks/bottle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/bottle}
NUM=${NUM:-20000}; ENDS_NUM=${ENDS_NUM:-4000}; ENDS_SEED=${ENDS_SEED:-63}; ENDS_FLAGS=${ENDS_FLAGS:---end-occlusion 1}
ITERS=${ITERS:-40000}; BASE=${BASE:-}; FT_ITERS=${FT_ITERS:-10000}; FT_SEED=${FT_SEED:-5}; THREADS=${THREADS:-2}
VIS=${VIS:-1}; VIS_NUM=${VIS_NUM:-4000}; VIS_ITERS=${VIS_ITERS:-2500}
SEEDS=${SEEDS:-2-17}; STAGES=${STAGES:-all}; MODEL=${MODEL:-$W/model.onnx}
case "$STAGES" in all|train|track) ;; *) echo "STAGES must be all, train or track, not '$STAGES'" >&2; exit 2;; esac
mkdir -p "$W"
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

if [ "$STAGES" != track ]; then
  stamp "1. synthetic data"
  [ -d "$W/data/train_synth" ] || kptrack synth --object bottle --out "$W/data" --num "$NUM" --seed 0 --workers 2
  [ -d "$W/data/test_synth" ] || kptrack synth --object bottle --out "$W/data" --num 500 --seed 777 --split test_synth --workers 2
  # shellcheck disable=SC2086  # ENDS_FLAGS is a list of flags
  [ -d "$W/ends/train_synth" ] || kptrack synth --object bottle --out "$W/ends" --num "$ENDS_NUM" --seed "$ENDS_SEED" $ENDS_FLAGS --workers 2
  if [ -z "$BASE" ]; then
    stamp "2. base ($ITERS iterations, $THREADS thread(s))"
    kptrack train --data "$W/data" --object bottle --preset lite --out "$W/base" --iters "$ITERS" --val-every 2000 \
      --val-split test_synth --log-every 200 --workers 0 --threads "$THREADS" --seed 0 --precision bf16
    BASE="$W/base/best.pt"
  fi
  stamp "3. fine-tune from $BASE ($FT_ITERS iterations, seed $FT_SEED)"
  kptrack train --data "$W/data:4" --data "$W/ends:1" --object bottle --init "$BASE" --out "$W/ft" --iters "$FT_ITERS" \
    --val-every 2000 --val-split test_synth --log-every 200 --workers 0 --threads "$THREADS" --seed "$FT_SEED" --precision bf16
  stamp "4. export and score"
  HEATMAPS=$MODEL; [ "$VIS" = 1 ] && HEATMAPS="$W/heatmaps.onnx"
  kptrack export --checkpoint "$W/ft/best.pt" --out "$HEATMAPS" --data "$W/data/test_synth"
  kptrack score --model "$HEATMAPS" --data "$W/data" --split test_synth --object bottle --device cpu --json "$W/score.json"
  if [ "$VIS" = 1 ]; then
    stamp "4b. visibility head ($VIS_ITERS iterations)"
    [ -d "$W/vis_ends/train_synth" ] || kptrack synth --object bottle --out "$W/vis_ends" --num "$VIS_NUM" --seed 66 \
      --end-occlusion 0.5 --axis-occlusion 0.5 --workers 2
    kptrack visibility --model "$HEATMAPS" --data "$W/data:4" --data "$W/ends:1" --data "$W/vis_ends:1" --object bottle \
      --out "$MODEL" --iters "$VIS_ITERS" --seed 0 --threads "$THREADS"
  fi
fi

[ "$STAGES" = train ] && { stamp "done (STAGES=train: no sequences)"; exit 0; }
stamp "5. development and held-out sequences $SEEDS, both presets"
python -m benchmarks.dev_sweep '{"accurate": {"edge_refine": true}, "fast": {}}' --objects bottle --model "bottle=$MODEL" \
  --seeds "$SEEDS" --cache "$W/sequences" --json "$W/sweep.json"
stamp "done"
