#!/usr/bin/env bash
# Every GPU check in one call (see benchmarks/gpu_check.py); results in --out, else $OUT, else runs/gpu_check.
#   benchmarks/gpu_check.sh                       # on a GPU machine, about 7 minutes
#   benchmarks/gpu_check.sh --dry-run --out DIR   # the same steps on the CPU at tiny sizes
# PYTHON picks the interpreter (default: .venv/bin/python when present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
