"""Entry points: `load(path)` for any supported file or folder, `load_from_config(DataConfig)`
for a run (a given path, the default location, or a cached synthetic stand-in).

Default location of real data: `$ATSUKO_DATA/<dataset>/<file>` (MIntRec: the folder
`$ATSUKO_DATA/mintrec`), with ATSUKO_DATA defaulting to `./data`. Synthetic files are kept in
`data.cache_dir` (default: a per-user folder in the system temp dir), one folder per
(dataset, variant, scale, seed, generator version), written whole and then renamed into place.
Tested in `tests/atsuko/data/test_data_loaders.py`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from atsuko.config import Config, DataConfig, user_temp_dir
from atsuko.data import mintrec, mmsa, npz
from atsuko.data.dataset import Dataset
from atsuko.data.pickles import read_pickle
from atsuko.data.registry import DatasetSpec, get_spec
from atsuko.data.synth_write import synthesize
from atsuko.data.synthetic import GENERATOR_VERSION
from atsuko.errors import DataError

DATA_ENV = "ATSUKO_DATA"
SYNTHETIC_HINT = " (or use --synthetic for a generated stand-in)"


def load(path: str | Path, name: str | None = None, tokenizer: str | Path | None = None) -> Dataset:
    """Load an MMSA pickle, an .npz written by `convert`, or a MIntRec folder. Without
    `name`, the dataset is inferred (folder: MIntRec; .npz: its meta; pickle: its widths).
    `tokenizer`: a BERT folder whose tokenizer makes a MIntRec folder's `text_bert` ids (MMSA
    files carry their own)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"no such file or folder: {path}{SYNTHETIC_HINT}")
    if path.is_dir():
        pickles = sorted(p.name for p in path.glob("*.pkl"))
        if name is None and not (path / "train.tsv").exists() and pickles:
            raise DataError(
                f"{path} is a folder without MIntRec's train.tsv; for MMSA data pass the "
                f"pickle itself (found: {', '.join(pickles)})"
            )
        spec = get_spec(name or "mintrec")
        if spec.format != "mintrec":
            raise DataError(
                f"{path} is a folder; {spec.name} data is one MMSA pickle "
                f"({', '.join(spec.files.values())}) or an .npz from convert"
            )
        return mintrec.read(path, spec, tokenizer)
    if path.suffix == ".npz":
        spec = get_spec(name or _npz_name(path))
        return npz.read(path, spec)
    if name is not None and get_spec(name).format == "mintrec":
        raise DataError(
            f"{path}: MIntRec data is a folder (train.tsv, dev.tsv, test.tsv, video_feats.pkl, "
            "audio_feats.pkl) or an .npz from convert"
        )
    obj = read_pickle(path)
    if name is None:
        name = mmsa.infer_name(obj)
        if name is None:
            raise DataError(f"{path}: cannot tell which dataset this file holds; pass --dataset")
    return mmsa.from_pickle(obj, get_spec(name), str(path))


def _npz_name(path: Path) -> str:
    name = npz.read_name(path)
    if not name:
        raise DataError(f"{path}: its meta names no dataset; pass --dataset")
    return name


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or "data")


def default_path(spec: DatasetSpec, aligned: bool = True) -> Path:
    """Where a real copy is looked for when no path is given."""
    folder = data_root() / spec.name
    return folder / spec.default_file(aligned) if spec.format == "mmsa" else folder


def default_cache_dir() -> Path:
    return user_temp_dir("synthetic")


def _ready(target: Path, spec: DatasetSpec) -> bool:
    if spec.format == "mintrec":
        return all(
            (target / spec.files[r]).is_file() for r in ("train", "valid", "test", "video", "audio")
        )
    return target.is_file()


def synthetic_path(data: DataConfig) -> Path:
    """The cached synthetic file (or MIntRec folder) for `data`, generated on first use."""
    spec = get_spec(data.dataset)
    variant = spec.variant(data.aligned)
    cache = Path(data.cache_dir).expanduser() if data.cache_dir else default_cache_dir()
    key = f"{spec.name}-{variant}-scale{data.scale:g}-seed{data.synth_seed}-v{GENERATOR_VERSION}"
    folder = cache / key
    target = folder / spec.default_file(data.aligned) if spec.format == "mmsa" else folder
    if _ready(target, spec):
        return target
    if folder.exists():
        raise DataError(f"{folder}: an incomplete synthetic cache entry; delete it and rerun")
    tmp = cache / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        synthesize(spec, tmp, scale=data.scale, seed=data.synth_seed, aligned=data.aligned)
        try:
            os.rename(tmp, folder)  # the whole entry appears at once
        except OSError:
            if not _ready(target, spec):  # not a concurrent writer that won the race
                raise
    except OSError as exc:
        raise DataError(
            f"cannot write synthetic data under {cache} ({exc.strerror or exc}); set data.cache_dir"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_from_config(data: DataConfig, tokenizer: str | Path | None = None) -> Dataset:
    """The dataset a run uses: `data.path`, else a synthetic stand-in when `data.synthetic`,
    else the default location (a DataError naming it when nothing is there)."""
    spec = get_spec(data.dataset)
    if data.path:
        return load(data.path, spec.name, tokenizer)
    if data.synthetic:
        if data.scale <= 0:
            raise DataError(f"data.scale must be positive, got {data.scale}")
        return load(synthetic_path(data), spec.name, tokenizer)
    path = default_path(spec, data.aligned)
    if not path.exists():
        kind = "folder" if spec.format == "mintrec" else "file"
        raise DataError(
            f"no {spec.title} data: looked for {path} (pass --data PATH, or put the {kind} "
            f"there, or set {DATA_ENV}){SYNTHETIC_HINT}"
        )
    return load(path, spec.name, tokenizer)


def load_for_run(config: Config, log: Callable[[str], None] | None = print) -> Dataset:
    """The dataset as `config` trains on it: with `model.text_encoder: bert`, MIntRec's text
    tokenized by the model folder; with `model.bert_freeze`, the frozen encoder's token states
    as the text features (computed once, cached on disk; see `atsuko.data.bert_states`)."""
    bert = config.model.bert_path if config.model.text_encoder == "bert" else None
    if bert is not None:
        from atsuko.model.bert import checked_config

        checked_config(bert, config.model.bert_layers)
    dataset = load_from_config(config.data, tokenizer=bert)
    if config.model.bert_freeze:
        from atsuko.data.bert_states import with_frozen_states

        dataset = with_frozen_states(config, dataset, log=log)
    return dataset
