"""Shared CLI plumbing: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import faulthandler
import math
import sys
from collections.abc import Callable
from typing import Any

from atsuko.config import SEED_LIMIT
from atsuko.errors import AtsukoError


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors say what was wrong and exit 2 (argparse's own status)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        # one line, like every other bad input; the usage is one --help away
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def number(kind: type, ok: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: a finite `kind(text)` that passes `ok`, else 'expected ..., got ...'.

    Every numeric flag of every command goes through one of these (NaN and infinities too)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
count = number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number(float, lambda v: v > 0, "a positive number")
fraction = number(float, lambda v: v >= 0, "a number >= 0")
port = number(int, lambda v: 0 < v < 65536, "a port 1..65535")
seed = number(int, lambda v: 0 <= v < SEED_LIMIT, f"a seed 0..{SEED_LIMIT - 1}")


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run `main(argv)`; an AtsukoError prints `error: ...` and exits 2, with no traceback."""
    try:  # a crash in native code (torch, Ray) still shows where Python was
        faulthandler.enable()
    except (OSError, ValueError, AttributeError):
        pass  # stderr is not a file (captured in-process, as under pytest): nothing to show
    try:
        code = main(argv)
    except AtsukoError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    raise SystemExit(code or 0)


def entry_point(target: str) -> Callable[[], None]:
    """A console script (`pyproject.toml`): `run_cli` on `module:function`, imported when run."""

    def script() -> None:
        import importlib

        module, name = target.split(":")
        run_cli(getattr(importlib.import_module(module), name))

    script.__doc__ = f"Runs {target} as a command."
    return script


# console scripts (`pyproject.toml`), each the same as its `python -m ...` command
train = entry_point("atsuko.train:main")  # atsuko-train: python -m atsuko.train
data = entry_point("atsuko.data.__main__:main")  # atsuko-data: python -m atsuko.data
