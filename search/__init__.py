"""The hyperparameter search for Atsuko: Ray Tune runs the trials, Optuna proposes them.

`python search/run.py --help` is the entry point (`workflow` runs what it asks for). Packages:
`study` (the search: space, searcher, driver, live outputs, export), `runtime` (Ray and the
one Tune path shared by searches and sweeps), `sweep` (sensitivity sweeps), `analysis` (the
report's sections, figures, importance, diagnostics) and `bench` (`python -m search.bench`).
At the top: `run` and `report` (the commands), `workflow`, `settings` (the resolved flags,
saved for `--resume`), `layout` (the `--out` folder) and `provenance` (hashes, versions).
Imports `atsuko`; `atsuko` never imports this package. docs/architecture.md has the map.
The console scripts below are tested in `tests/atsuko/test_cli.py` with the others.
"""

from atsuko.cli import entry_point

# console scripts (`pyproject.toml`), each the same as its `python ...` command (named
# apart from the modules `search.run`, `search.report` and the package `search.bench`)
search_cli = entry_point("search.run:main")  # atsuko-search: python search/run.py
report_cli = entry_point("search.report:main")  # atsuko-report: python search/report.py
bench_cli = entry_point("search.bench.main:main")  # atsuko-search-bench: python -m search.bench
