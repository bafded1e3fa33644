#!/usr/bin/env bash
# Train the demo models and their baselines, then score, pick, ship and document them:
#   LEWEL_M (configs/demo_lewel_m.yaml, two training seeds) and MoCo v2 at the same budget (8 epochs = 1,024 steps);
#   LEWEL_B with the plain momentum target (configs/demo_lewel_b_plain.yaml, two training seeds) and BYOL at the
#   same recipe (configs/demo_byol_plain.yaml), also 1,024 steps, and the controlled EMAN comparison (384 steps);
# all ResNet-18 on 4,096 generated scenes at 128 px, batch 32, the map monitor on for the LEWEL runs. Then
# scripts/evaluate_demo_models.py (kNN, map profiles, the seed with the better monitor score is shipped to
# models/ with its profile sidecar, LEWEL_B only over its bar: localises, held-out AUROC >= 0.80) and scripts/write_demo_model_cards.py (cards and table).
#
#   ./scripts/train_demo_models.sh              # CPU: two runs at a time, one thread each (about 5 h on 2 cores)
#
# Re-running continues interrupted runs (--resume auto). scripts/train_demo_models_gpu.sh is the GPU variant.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
EXTRA=${EXTRA:-}
LEWEL=.venv/bin/lewel
mkdir -p "$OUT"

train() {  # run name, recipe, options...
  local name=$1 recipe=$2
  shift 2
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=${THREADS:-1} "$LEWEL" train --config "configs/demo_$recipe.yaml" --out "$OUT/$name" --resume auto "$@" $EXTRA \
    > "$OUT/$name.log" 2>&1
  echo "trained $name: $(tail -n 1 "$OUT/$name.log")"
}

start=$(date +%s)
train lewel_m_s0 lewel_m --seed 0 & train lewel_m_s1 lewel_m --seed 1 & wait
train lewel_b_plain_s0 lewel_b_plain --seed 0 & train lewel_b_plain_s1 lewel_b_plain --seed 1 & wait
train mocov2 mocov2 & train byol_plain byol_plain & wait
# the controlled comparison: the plain recipe with only the target changed to EMAN, same seed, 384 steps
train lewel_b_eman_384 lewel_b_plain --method lewel_b_eman --stop-after-steps 384
echo "training wall time: $(( $(date +%s) - start )) s" | tee "$OUT/wall_time.txt"

.venv/bin/python scripts/evaluate_demo_models.py --runs "$OUT" --out docs/demo_models.json
.venv/bin/python scripts/write_demo_model_cards.py
