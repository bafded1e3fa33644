#!/usr/bin/env bash
# Why did LEWEL_B's maps not localise at the demo budget? Variants of the demo recipe as it was before #13
# (configs/demo_lewel_b.yaml's data and schedule with EMAN and LARS lr 0.2: ResNet-18, 4,096 scenes at 128 px, batch 32, 3 epochs = 384
# steps), each changing one thing, in two stages:
#   1. screen: every variant runs the first SCREEN steps of its schedule (default 128 = one epoch) and is scored
#      by the map monitor (object-maps AUROC on validation-side scenes);
#   2. finish: the best screened variant (never the base) runs the rest of its schedule (--resume auto) and is
#      profiled against the random control (`lewel profile`: 256 + 256 scenes at 224 px, control seed 0).
# The comparison goes to docs/lewel_b_sweep.json (tables in docs/demo_models.md).
#
#   ./scripts/lewel_b_sweep.sh
#   VARIANTS="base lr1.0" FINISH="base lr1.0" ./scripts/lewel_b_sweep.sh
#
# Re-running continues interrupted runs and skips finished profiles.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/lewel_b_sweep}
LEWEL=.venv/bin/lewel
VARIANTS=${VARIANTS:-"base lr1.0 plain w0.25"}
SCREEN=${SCREEN:-128}
mkdir -p "$OUT"

options() {  # variant -> its options (the recipe gives the rest)
  case "$1" in
    base) echo "--method lewel_b_eman --lr 0.2" ;;                        # the recipe before #13: EMAN, LARS lr 0.2
    lr1.0) echo "--method lewel_b_eman --lr 1.0" ;;                       # learning rate x5 (warm-up 0.5 epoch)
    plain) echo "--method lewel_b --lr 0.2" ;;                            # plain momentum target instead of EMAN
    w0.25) echo "--method lewel_b_eman --lr 0.2 --loss-weight 0.25" ;;    # more weight on the aligned loss
    sgd) echo "--method lewel_b_eman --optimizer sgd --lr 0.06 --weight-decay 1e-4" ;;  # LEWEL_M's optimiser
    m0.996) echo "--method lewel_b_eman --lr 0.2 --base-momentum 0.996" ;;  # slower target
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

train() {  # variant, extra options
  local out="$OUT/lewel_b_$1"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=${THREADS:-1} "$LEWEL" train --config configs/demo_lewel_b.yaml --out "$out" --resume auto \
    $(options "$1") "${@:2}" >> "$out.log" 2>&1
}

finish() {  # variant
  train "$1"
  [ -f "$OUT/lewel_b_$1/profile.json" ] || OMP_NUM_THREADS=${THREADS:-1} "$LEWEL" profile \
    --checkpoint "$OUT/lewel_b_$1/last.pt" --out "$OUT/lewel_b_$1/profile.json" --quiet
}

for variant in $VARIANTS; do train "$variant" --stop-after-steps "$SCREEN" & done
wait
FINISH=${FINISH:-$(.venv/bin/python scripts/summarize_sweep.py "$OUT"/lewel_b_*/ --best-at "$SCREEN")}
for variant in $FINISH; do finish "$variant" & done
wait
.venv/bin/python scripts/summarize_sweep.py "$OUT"/lewel_b_*/ --out docs/lewel_b_sweep.json
