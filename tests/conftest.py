"""Shared test fixtures: where the real benchmark pieces live (outside the project), and the
real-data files built from them at test time (see `real_data.py`)."""

from pathlib import Path

import pytest
import real_data as rd

REPO = Path(__file__).resolve().parents[1]
REAL = rd.REAL


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The offline real benchmark pieces (labels and texts); tests using them skip without it."""
    if not REAL.is_dir():
        pytest.skip("real benchmark pieces (../shared/data/real) are not available")
    return REAL


def _require_real() -> None:
    reason = rd.missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def real_mosi(tmp_path_factory) -> Path:
    """Real CMU-MOSI (ids, transcripts, labels, splits) in the MMSA layout, aligned; text
    lengths include 0, 1 and 2."""
    _require_real()
    return rd.mosi_pickle(tmp_path_factory.mktemp("real_mosi"), aligned=True)


@pytest.fixture(scope="session")
def real_mosi_unaligned(tmp_path_factory) -> Path:
    """Real CMU-MOSI, unaligned: audio and vision lengths include 0, 1 and 2."""
    _require_real()
    return rd.mosi_pickle(tmp_path_factory.mktemp("real_mosi_u"), aligned=False)


@pytest.fixture(scope="session")
def real_mintrec(tmp_path_factory) -> Path:
    """The real MIntRec tsv files with generated feature pickles (some of a single frame)."""
    _require_real()
    return rd.mintrec_folder(tmp_path_factory.mktemp("real_mintrec"))
