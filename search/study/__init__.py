"""The search itself: the space, Optuna's searcher, the driver that runs one search, the live
outputs (trials.csv, the study mirror) and the export of the best configuration."""
