#!/usr/bin/env bash
# A textureless, discrete-symmetric box end to end (#12): the object every face of which looks
# alike but for its edge lengths, where a network's corner labels are least reliable.
#   1. object: 80 x 60 x 40 mm, one uniform grey, --symmetry box (the three half turns)
#   2. synthetic training and test images (canonical labels per view)
#   3. train from the shipped backbone
#   4. export, and `kptrack score` on the unseen test images
#   5. track its development sequences (seeds 2-5; seed 1 shown for reference) with the tracker's
#      symmetric-object options off and on, same model, same run
#
#   bash benchmarks/plainbox.sh [WORK]      (default WORK=runs/plainbox; ITERS, NUM, THREADS and
#                                            STAGES=all|track in the environment)
# The model this made, with its card, ships as models/plainbox/ (object in models/plainbox/object);
# STAGES=track WORK=... with W/model.onnx and W/object in place re-runs step 5 alone.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/plainbox}
ITERS=${ITERS:-10000}; NUM=${NUM:-20000}; THREADS=${THREADS:-2}; STAGES=${STAGES:-all}
mkdir -p "$W"
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

if [ "$STAGES" = all ]; then
  stamp "1. object"
  python -c "import cv2, numpy as np; cv2.imwrite('$W/plain.png', np.full((256, 256, 3), 150, np.uint8))"
  kptrack object init --box 80x60x40 --texture "$W/plain.png" --symmetry box --name plainbox --out "$W/object"
  stamp "2. synthetic data"
  kptrack synth --object "$W/object" --out "$W/data" --num "$NUM" --seed 0 --workers 2
  kptrack synth --object "$W/object" --out "$W/data" --num 500 --seed 777 --split test_synth --workers 2
  stamp "3. train ($ITERS iterations, $THREADS thread(s))"
  kptrack train --data "$W/data" --object "$W/object" --preset lite --optimizer adam --lr 1e-3 \
    --peak-weight 5 --sigma-start 4 --iters "$ITERS" --val-every 1000 --val-split test_synth --log-every 100 \
    --workers 1 --threads "$THREADS" --seed 0 --out "$W/run"
  stamp "4. export and score"
  kptrack export --checkpoint "$W/run/best.pt" --out "$W/model.onnx"
  kptrack score --model "$W/model.onnx" --data "$W/data" --split test_synth --object "$W/object" --json "$W/score.json"
fi

stamp "5. development sequences: symmetric-object options off, then each added"
python -m benchmarks.dev_sweep \
  '{"labels only": {"associate": false, "confusable": false, "peak_cold": false},
    "+ matched peaks": {"confusable": false, "peak_cold": false},
    "+ confusable turns": {"peak_cold": false},
    "+ cold RANSAC on peaks (default)": {}}' \
  --objects "$W/object" --model "$W/object=$W/model.onnx" --cache "$W/sequences"
stamp "done"
