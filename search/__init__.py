"""The hyperparameter search for Atsuko: Ray Tune runs the trials, Optuna proposes them.

`python search/run.py --help` is the entry point. Modules, one concept each:
`space` (search-space YAML -> Optuna define-by-run), `settings` (the resolved flags, saved for
`--resume`), `ray_session` (Ray on loopback and where to watch it), `trainable` (one trial around
`atsuko.train.fit`), `trial_metrics` (Ray custom metrics), `searcher` (Optuna samplers; ASHA
stops recorded as pruned), `records` (one row per trial), `study_mirror` (the SQLite study),
`callbacks` (live outputs), `export` (best config, seed re-runs, summary), `driver` (the Tuner).
Imports `atsuko`; `atsuko` never imports this package.
"""
