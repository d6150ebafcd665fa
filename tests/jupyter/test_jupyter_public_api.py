"""routilux_jupyter uses only routilux's public names, and its own public face is tidy.

An AST walk over every module of routilux_jupyter: no ``routilux._x`` import (in any
spelling), no ``from routilux import _x``, and no private attribute reached on anything but
``self``/``cls`` (private attributes of runtime objects would be the way around the rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import routilux_jupyter

PACKAGE = Path(routilux_jupyter.__file__).resolve().parent
SOURCES = sorted(PACKAGE.glob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "routilux" and any(_private(p) for p in parts[1:]):
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            parts = module.split(".")
            if node.level == 0 and parts[0] == "routilux":
                if any(_private(p) for p in parts[1:]):
                    found.append(f"{where}: from {module} import ...")
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"{where}: from {module} import {alias.name}")
            if node.level > 1:
                found.append(f"{where}: relative import out of routilux_jupyter")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if _root_name(node) not in ("self", "cls"):
                found.append(f"{where}: private attribute .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append(f"{where}: {node.func.id}(..., {node.args[1].value!r})")
    return found


@pytest.mark.timeout(30)
def test_sources_were_found() -> None:
    names = {p.name for p in SOURCES}
    assert {"__init__.py", "_magics.py", "_dashboard.py", "_model.py", "_charts.py"} <= names


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_uses_only_public_routilux_names(path: Path) -> None:
    assert violations(path) == []


@pytest.mark.timeout(30)
def test_the_checker_catches_each_spelling(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import routilux._runtime\n"
        "from routilux._pool import WorkerPool\n"
        "from routilux import _context\n"
        "from routilux.core import _x\n"
        "def f(rt):\n"
        "    rt._pool.tasks\n"
        "    getattr(rt, '_lock')\n"
    )
    assert len(violations(bad)) == 6


@pytest.mark.timeout(30)
def test_public_face() -> None:
    for name in routilux_jupyter.__all__:
        obj = getattr(routilux_jupyter, name)
        assert not name.startswith("_")
        if hasattr(obj, "__module__") and isinstance(obj, type):
            assert obj.__module__ == "routilux_jupyter", name
    assert set(routilux_jupyter.__all__) >= {
        "Dashboard", "load_ipython_extension", "unload_ipython_extension", "run_sync",
        "report", "snapshot", "dashboards",
    }  # fmt: skip
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        routilux_jupyter.Nope  # noqa: B018


@pytest.mark.timeout(60)
def test_routilux_imports_nothing_from_jupyter() -> None:
    import subprocess
    import sys

    code = (
        "import sys, routilux, routilux.trace, routilux.sync; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('routilux_jupyter', 'IPython', 'ipywidgets', 'anywidget', 'nest_asyncio2')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
