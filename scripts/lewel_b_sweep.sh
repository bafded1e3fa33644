#!/usr/bin/env bash
# Why do LEWEL_B's maps not localise at the demo budget? Train a small set of variants of
# configs/demo_lewel_b_eman.yaml (ResNet-18, 4,096 scenes at 128 px, batch 32, 3 epochs = 384 steps), each
# changing one thing, profile every run against the same random control (`lewel profile`, 256 + 256 scenes
# at 224 px, control seed 0) and write the comparison to docs/lewel_b_sweep.json (see docs/demo_models.md).
#
#   ./scripts/lewel_b_sweep.sh                      # all variants, two at a time, one thread each
#   VARIANTS="base lr1.0" ./scripts/lewel_b_sweep.sh
#
# Re-running continues interrupted runs (--resume auto) and skips finished profiles.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/lewel_b_sweep}
LEWEL=.venv/bin/lewel
VARIANTS=${VARIANTS:-"base lr1.0 plain sgd"}
mkdir -p "$OUT"

options() {  # variant -> the options it changes (the recipe gives the rest)
  case "$1" in
    base) echo "" ;;                                                      # the demo recipe: EMAN, LARS lr 0.2
    lr1.0) echo "--lr 1.0" ;;                                             # learning rate x5 (warm-up 0.5 epoch)
    plain) echo "--method lewel_b" ;;                                     # plain momentum target instead of EMAN
    sgd) echo "--optimizer sgd --lr 0.06 --weight-decay 1e-4" ;;          # LEWEL_M's optimiser and learning rate
    w0.25) echo "--loss-weight 0.25" ;;                                   # more weight on the aligned loss
    m0.996) echo "--base-momentum 0.996" ;;                               # slower target
    long) echo "--epochs 8" ;;                                            # LEWEL_M's new budget, 1,024 steps
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

run() {  # variant
  local out="$OUT/lewel_b_$1"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=${THREADS:-1} "$LEWEL" train --config configs/demo_lewel_b_eman.yaml --out "$out" --resume auto \
    $(options "$1") > "$out.log" 2>&1
  [ -f "$out/profile.json" ] || OMP_NUM_THREADS=${THREADS:-1} "$LEWEL" profile --checkpoint "$out/last.pt" \
    --out "$out/profile.json" --quiet
  echo "done $1"
}

set -- $VARIANTS
while [ $# -gt 0 ]; do
  run "$1" &
  [ $# -gt 1 ] && run "$2" &
  wait
  shift $(( $# > 1 ? 2 : 1 ))
done
.venv/bin/python scripts/summarize_sweep.py "$OUT"/lewel_b_*/ --out docs/lewel_b_sweep.json
