#!/usr/bin/env bash
# One training run of a new object on one CUDA GPU, start to finish in under 10 minutes (#10):
# the textured test box of benchmarks/train_curves.py, synthetic data rendered on the machine's
# cores, `kptrack train` from the shipped backbone with the recipe of models/default/card.json,
# export, score on unseen test images, and the curve. Everything it writes goes to $OUT:
#   best.pt, model.onnx, log.csv, curve.png, score.txt, run.log
#
#   OUT=/tmp/gpu_run bash benchmarks/gpu_train.sh               # the real run (CUDA machine)
#   OUT=/tmp/t NUM=64 TEST=16 ITERS=4 DEVICE=cpu bash benchmarks/gpu_train.sh   # a dry run here
#
# Knobs (environment): NUM training images (20000), TEST test images (500), ITERS (6000),
# BATCH (32), LR (2e-3: the CPU recipe's 1e-3 at batch 8, raised for the larger batch),
# WORKERS (all cores), DEVICE (cuda), WORK (scratch folder, default $OUT/work, not brought back).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
NUM=${NUM:-20000}; TEST=${TEST:-500}; ITERS=${ITERS:-6000}; BATCH=${BATCH:-32}; LR=${LR:-2e-3}
WORKERS=${WORKERS:-$(nproc)}; DEVICE=${DEVICE:-cuda}; WORK=${WORK:-$OUT/work}
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/run.log") 2>&1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

if ! python -c "import tracker, train" 2>/dev/null; then
  stamp "installing kptrack"
  python -m pip install -q -e .
fi
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

stamp "objects and data"
python -m benchmarks.train_curves objects --out "$WORK/objects"
kptrack synth --object "$WORK/objects/box" --out "$WORK/box" --num "$NUM" --seed 0 --workers "$WORKERS"
kptrack synth --object "$WORK/objects/box" --out "$WORK/box" --num "$TEST" --seed 777 --split test_synth --workers "$WORKERS"

stamp "training: $ITERS iterations x batch $BATCH on $DEVICE"
kptrack train --data "$WORK/box" --object "$WORK/objects/box" --preset lite --optimizer adam --lr "$LR" \
  --batch "$BATCH" --iters "$ITERS" --peak-weight 5 --sigma-start 4 --val-split test_synth \
  --val-every "$(( ITERS / 12 > 0 ? ITERS / 12 : 1 ))" --workers "$WORKERS" --device "$DEVICE" --out "$WORK/run"
cp "$WORK/run/best.pt" "$WORK/run/log.csv" "$OUT/"

stamp "export and score"
kptrack export --checkpoint "$WORK/run/best.pt" --out "$OUT/model.onnx"
kptrack score --model "$OUT/model.onnx" --data "$WORK/box" --split test_synth --object "$WORK/objects/box" | tee "$OUT/score.txt"
python -m benchmarks.train_curves plot "gpu=$WORK/run" --out "$OUT/curve.png"
stamp "done"
