#!/usr/bin/env bash
# `make demo`: a small hyperparameter search on generated MOSEI-shaped data (a few minutes on
# 2 CPUs), then the best configuration, where the outputs are, and how to watch a search.
# The budget: 5% of MOSEI's rows, the paper's parameters swept (bands, temperatures, MCM
# weights, lr, dropout, weight decay) at width 32 and depth 1, 12 trials of up to 8 epochs
# under ASHA, 2 at once, then the best re-trained with seeds 1111..1115; --time-budget caps it.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/demo-search}
if [ -e "$OUT/search.json" ]; then
  echo "a previous demo search is in $OUT: remove it (rm -r $OUT) or set OUT=another/folder" >&2
  exit 2
fi

$PY search/run.py --dataset mosei --synthetic \
  --set scale=0.05 --set hidden=32 --set layers=1 --set batch_size=64 \
  --num-samples 12 --max-epochs 8 --concurrency 2 --time-budget 360 \
  --diagnostics --diagnostics-epochs 4 \
  --out "$OUT"

echo
echo "== best configuration ($OUT/best_config.yaml) =="
cat "$OUT/best_config.yaml"
echo
echo "== summary: validation and test metrics over 5 seeds ($OUT/summary.json) =="
$PY - "$OUT/summary.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
best, final = doc["best_trial"], doc["final"]
metric = doc["select"]["metric"]
print(f"best trial {best['trial_id']}: valid {metric} {best['score']:.4f}")
for split in ("valid", "test"):
    stats = final[split]
    shown = ", ".join(f"{k} {v['mean']:.3f} ± {v['std']:.3f}" for k, v in stats.items())
    print(f"{split} over seeds {final['seeds']}: {shown}")
EOF
cat <<EOF

== outputs in $OUT ==
  best_config.yaml  re-train it: $PY -m atsuko.train --config $OUT/best_config.yaml --seed 1111
  trials.csv        one row per trial (parameters, state, epochs, validation metrics, node)
  study.db          the Optuna study:  optuna-dashboard sqlite:///$OUT/study.db
                    (pip install optuna-dashboard), or optuna.load_study(...)
  summary.json      best trial; validation and test metrics, mean and std over seeds
  report.html       the report (self-contained): results, history, importance, diagnostics
                    (rebuild it with: $PY search/report.py $OUT)
  tune/             Ray Tune's trial folders, checkpoints and TensorBoard event files

== watching a search ==
  Ray dashboard     printed when a search starts (default http://127.0.0.1:8265); it asks for
                    the access token in ~/.ray/auth_token. It lives while the search runs.
  TensorBoard       tensorboard --logdir $OUT/tune --host 127.0.0.1   (pip install tensorboard)
  Ray metrics       ray_atsuko_trial_* gauges at the metrics address printed at start
  Resume            $PY search/run.py --resume $OUT   (after Ctrl-C or a killed driver)
EOF
