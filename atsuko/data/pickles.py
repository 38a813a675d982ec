"""Reading and writing pickles, as safely as pickles allow, and atomic file writes.

Loading a pickle can run code. Feature files only need numpy arrays, strings, numbers and
containers, so `read_pickle` resolves only the numpy and builtin names those need and refuses
any other (naming it). Set ATSUKO_TRUST_PICKLE=1 to lift that limit for a file you trust, or
better, convert the file once (`python -m atsuko.data convert`) and use the pickle-free .npz.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atsuko.errors import DataError

SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles store bytes through it
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("builtins", "slice"),
}
TRUST_ENV = "ATSUKO_TRUST_PICKLE"


class _FeatureUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals a feature file needs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise DataError(
            f"the pickle refers to '{module}.{name}', which a feature file does not need; "
            f"refusing to load it (pickles run code). If you trust the file, set {TRUST_ENV}=1"
        )


def read_pickle(path: Path, hint: str = "") -> Any:
    """Unpickle `path`; a missing, truncated or foreign file is a DataError naming it."""
    if not path.is_file():
        raise DataError(f"file not found: {path}{hint}")
    trusted = os.environ.get(TRUST_ENV, "") not in ("", "0")
    try:
        with open(path, "rb") as f:
            if trusted:
                return pickle.load(f, encoding="latin1")
            return _FeatureUnpickler(f, encoding="latin1").load()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except MemoryError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, ...: all mean "unreadable"
        raise DataError(
            f"{path}: not a readable pickle ({exc.__class__.__name__}: {exc}); "
            "the file may be truncated or in another format"
        ) from None


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}"
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_pickle(obj: Any, path: Path) -> None:
    """Pickle `obj` to `path` atomically (protocol 5: arrays load without an extra copy)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=5)
