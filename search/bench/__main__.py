"""`python -m search.bench`: see `search.bench.main`."""

from atsuko.cli import run_cli
from search.bench.main import main

if __name__ == "__main__":
    run_cli(main)
