"""The Ray runtime shared by searches and sweeps: the session, the one Tune path (trainable,
tuner, results), the `--out` storage and its sync, data in the object store, trial metrics."""
