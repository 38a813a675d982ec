"""`atsuko.cli`: user errors exit 2 with one line; the console scripts of `pyproject.toml`
resolve and run the same `main` as their `python ...` commands."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from atsuko.cli import run_cli
from atsuko.errors import ConfigError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_a_user_error_is_one_line_and_status_2(capsys):
    def main(argv):
        raise ConfigError("no such thing")

    with pytest.raises(SystemExit) as stop:
        run_cli(main, [])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: no such thing\n"


def _scripts() -> dict[str, str]:
    text = PYPROJECT.read_text().split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"', text, flags=re.M))


def test_every_console_script_resolves_and_prints_its_help(capsys):
    scripts = _scripts()
    assert {"atsuko-train", "atsuko-search", "atsuko-report"} <= set(scripts)
    for name, target in scripts.items():
        module, attr = target.split(":")
        script = getattr(importlib.import_module(module), attr)
        with pytest.raises(SystemExit) as stop:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr("sys.argv", [name, "--help"])
                script()
        assert stop.value.code == 0, name
        assert "usage:" in capsys.readouterr().out, name
