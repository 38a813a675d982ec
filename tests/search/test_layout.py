"""`search.layout` names every file and folder of an `--out` folder: no other module of
`search/` spells one of those names as a string of its own."""

from __future__ import annotations

import re
from pathlib import Path

from search import layout

SEARCH = Path(layout.__file__).parent
FILES = [v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str) and "." in v]
FOLDERS = [layout.TUNE_DIR, layout.SENS_DIR, layout.FIGURES_DIR]


def test_every_name_is_unique():
    names = [v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)]
    assert len(names) == len(set(names))


def test_no_module_spells_an_out_file_by_itself():
    names = FILES + FOLDERS
    pattern = re.compile("|".join(rf"[\"']{re.escape(name)}[\"']" for name in names))
    found = []
    for path in sorted(SEARCH.rglob("*.py")):
        if path.name == "layout.py" or "bench" in path.parts:
            continue  # the benchmarks read other programs' folders, not an --out layout
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(SEARCH)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_sweep_and_diagnostics_folders_are_under_out(tmp_path):
    assert layout.sweep_dir(tmp_path) == tmp_path / "sensitivity"
    assert layout.diagnostics_dir(tmp_path) == tmp_path / "diagnostics"
