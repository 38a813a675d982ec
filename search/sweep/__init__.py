"""One-at-a-time sensitivity sweeps: the plan (a grid around an anchor configuration), its
rounds on the shared Tune path, the time budget, and the curves they write."""
