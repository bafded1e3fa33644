#!/usr/bin/env bash
# Train the demo models (LEWEL_B, LEWEL_M) and their baselines (BYOL, MoCo v2) with one shared budget
# (configs/demo_*.yaml: ResNet-18, 4,096 generated scenes at 128 px, batch 32, 384 steps), export the two
# LEWEL models to models/ (float16 safetensors) and score all four against randomly initialised networks.
#
#   ./scripts/train_demo_models.sh              # CPU: two runs at a time, one thread each
#   OUT=runs/demo EXTRA="--epochs 6" ./scripts/train_demo_models.sh
#
# Re-running continues interrupted runs (--resume auto). scripts/train_demo_models_gpu.sh is the GPU variant.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
EXTRA=${EXTRA:-}
LEWEL=.venv/bin/lewel
mkdir -p "$OUT"

train() {  # method
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=${THREADS:-1} "$LEWEL" train --config "configs/demo_$1.yaml" --out "$OUT/$1" --resume auto $EXTRA \
    > "$OUT/$1.log" 2>&1
  echo "trained $1: $(tail -n 1 "$OUT/$1.log")"
}

start=$(date +%s)
train lewel_b_eman & train byol & wait
train lewel_m & train mocov2 & wait
echo "training wall time: $(( $(date +%s) - start )) s" | tee "$OUT/wall_time.txt"

mkdir -p models
"$LEWEL" export "$OUT/lewel_b_eman/last.pt" --format safetensors --half --out models/lewel_b_demo.safetensors
"$LEWEL" export "$OUT/lewel_m/last.pt" --format safetensors --half --out models/lewel_m_demo.safetensors
.venv/bin/python scripts/evaluate_demo_models.py --runs "$OUT" --out docs/demo_models.json
.venv/bin/python scripts/write_demo_model_cards.py
