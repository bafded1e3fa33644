#!/usr/bin/env bash
# GPU variant of scripts/train_demo_models.sh: 224 px scenes (7x7 feature maps), batch 256, bf16, more data
# and epochs. Same four recipes, same shared budget for the four methods, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo_gpu}
for method in lewel_b_eman byol lewel_m mocov2; do
  .venv/bin/lewel train --config "configs/demo_$method.yaml" --out "$OUT/$method" --resume auto \
    --data scenes:20000 --val-data scenes:2000 --image-size 224 --batch-size 256 --epochs 30 --workers 8 --amp bf16
done
mkdir -p models
.venv/bin/lewel export "$OUT/lewel_b_eman/last.pt" --format safetensors --half --out models/lewel_b_demo.safetensors
.venv/bin/lewel export "$OUT/lewel_m/last.pt" --format safetensors --half --out models/lewel_m_demo.safetensors
.venv/bin/python scripts/evaluate_demo_models.py --runs "$OUT" --out docs/demo_models.json --size 224
.venv/bin/python scripts/write_demo_model_cards.py
