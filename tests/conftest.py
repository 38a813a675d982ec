"""Shared test fixtures: where the real benchmark pieces live (outside the project)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The offline real benchmark pieces (labels and texts); tests using them skip without it."""
    if not REAL.is_dir():
        pytest.skip("real benchmark pieces (../shared/data/real) are not available")
    return REAL
