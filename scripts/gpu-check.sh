#!/usr/bin/env bash
# The prepared GPU check (README, "On a GPU machine"): a few training steps on CUDA in bf16 and
# in float32, resume equality under train.deterministic, best.pt on the CPU, the splits placed
# on the GPU, then `python -m search.bench --only gpu` where Ray is importable. Under 5 minutes
# on one GPU. Without CUDA it says so in one line and exits 0. Extra arguments go to
# `python -m atsuko.gpu_check` (--no-bench, --scale S, --bench-timeout SECONDS).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
  PY=python3  # a GPU machine's own python with torch (and the project on its path)
fi
exec "$PY" -m atsuko.gpu_check "$@"
