"""Import directions (docs/architecture.md), read from every import statement of the packages
(those inside functions too): `atsuko` imports neither `search` nor `cluster`, `search` does
not import `cluster`; in `search`, the search itself (`study/`) and the Tune path (`runtime/`)
never import `search.analysis`, which reads what they wrote; and no module imports another's
private (underscored) names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("atsuko", "search", "cluster")
FORBIDDEN = {  # a file under this folder -> modules it never imports
    "atsuko": ("search", "cluster"),
    "search": ("cluster",),
    "search/study": ("search.analysis",),
    "search/runtime": ("search.analysis",),
}


def _imports(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """(line, module, name) of every import: `import a.b` gives ('a.b', ''), `from a import b`
    gives ('a', 'b')."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name, "") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from ((node.lineno, node.module, a.name) for a in node.names)


def _sources() -> Iterator[tuple[str, ast.AST]]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), str(path))


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _layering_breaches(sources) -> list[str]:
    found = []
    for where, tree in sources:
        banned = [
            m for folder, ms in FORBIDDEN.items() if where.startswith(folder + "/") for m in ms
        ]
        for line, module, name in _imports(tree):
            targets = [module, f"{module}.{name}"] if name else [module]
            if any(_within(t, m) for t in targets for m in banned):
                found.append(f"{where}:{line}: {module}{'.' + name if name else ''}")
    return found


def _private_imports(sources) -> list[str]:
    found = []
    for where, tree in sources:
        for line, module, name in _imports(tree):
            ours = module.split(".")[0] in PACKAGES
            if ours and any(
                p.startswith("_") and not p.startswith("__") for p in [*module.split("."), name]
            ):
                found.append(f"{where}:{line}: from {module} import {name}")
    return found


def test_packages_import_only_in_the_documented_directions():
    assert _layering_breaches(_sources()) == []


def test_no_module_imports_another_modules_private_names():
    assert _private_imports(_sources()) == []


def test_the_checks_see_imports_inside_functions():
    code = "def f():\n    from search.analysis import importance\n    from search.x import _y\n"
    tree = ast.parse(code)
    assert _layering_breaches([("search/study/f.py", tree)]) == [
        "search/study/f.py:2: search.analysis.importance"
    ]
    assert _layering_breaches([("search/analysis/f.py", tree)]) == []
    assert _private_imports([("search/bench/f.py", tree)]) == [
        "search/bench/f.py:3: from search.x import _y"
    ]
