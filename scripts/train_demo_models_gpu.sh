#!/usr/bin/env bash
# GPU variant of scripts/train_demo_models.sh in one call: the same recipes at 224 px (7x7 feature maps during
# training), batch 256, bf16, more data and epochs, the map monitor once per epoch; then the same scoring,
# shipping and cards. LEWEL_M twice (seeds 0 and 1), each method's baseline at its budget.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo_gpu}
GPU="--data scenes:20000 --val-data scenes:2000 --image-size 224 --batch-size 256 --epochs 30 --workers 8 --amp bf16 --maps-every 78"
for run in "lewel_m_s0 lewel_m --seed 0" "lewel_m_s1 lewel_m --seed 1" "mocov2 mocov2" "lewel_b_plain_s0 lewel_b_plain --seed 0" \
  "lewel_b_plain_s1 lewel_b_plain --seed 1" "byol_plain byol_plain" "lewel_b_eman_384 lewel_b_plain --method lewel_b_eman --stop-after-steps 384"; do
  set -- $run
  name=$1 recipe=$2
  shift 2
  # shellcheck disable=SC2086
  .venv/bin/lewel train --config "configs/demo_$recipe.yaml" --out "$OUT/$name" --resume auto $GPU "$@"
done
.venv/bin/python scripts/evaluate_demo_models.py --runs "$OUT" --out docs/demo_models.json --size 224
.venv/bin/python scripts/write_demo_model_cards.py
