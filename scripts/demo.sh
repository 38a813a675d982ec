#!/usr/bin/env bash
# The main job on built-in synthetic data (extended as the search lands).
set -euo pipefail
PY=.venv/bin/python
OUT=${OUT:-runs/demo}
$PY -m atsuko.data synth --dataset mosei --out "$OUT/data" --scale 0.05 --seed 0
$PY -m atsuko.data check "$OUT/data/aligned_50.pkl"
