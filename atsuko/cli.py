"""Shared CLI plumbing: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import faulthandler
import sys
from collections.abc import Callable

from atsuko.errors import AtsukoError


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors say what was wrong and exit 2 (argparse's own status)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


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
