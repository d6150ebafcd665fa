"""routilux.trace is the floor of the package (issue 15): it imports nothing of routilux.

Read from the source (AST), lazy imports included, so a function-level import cannot hide
an edge; each module stays small, and a function-level import says what it defers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import routilux.trace

TRACE_DIR = Path(routilux.trace.__file__).parent
MODULES = sorted(TRACE_DIR.glob("*.py"))
MAX_LINES = 500


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str]]:
    """(node, what it imports) for every import in the tree; relative ones keep their dots."""
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node, "." * node.level + (node.module or "")))
    return found


def test_the_package_has_the_modules_the_layout_names() -> None:
    names = {p.stem for p in MODULES}
    assert names >= {"__init__", "_event", "_tracer", "_jsonl", "_chrome", "_lanes",
                     "_sources", "_spans", "_series"}


def _foreign_imports(text: str) -> list[str]:
    """Imports of anything but the standard library, siblings in routilux.trace and pandas."""
    bad = []
    for node, name in _imports(ast.parse(text)):
        if name.startswith(".."):
            bad.append(f"line {node.lineno}: {name} (outside routilux.trace)")
        elif name.startswith("."):
            continue
        elif name.split(".")[0] == "routilux":
            bad.append(f"line {node.lineno}: {name}")
        elif name.split(".")[0] not in sys.stdlib_module_names and name != "pandas":
            bad.append(f"line {node.lineno}: {name} (not the standard library)")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_only_the_standard_library_and_its_siblings(path: Path) -> None:
    bad = _foreign_imports(path.read_text(encoding="utf-8"))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_is_small_and_its_lazy_imports_say_why(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= MAX_LINES, f"{path.name} has {len(lines)} lines"
    tree = ast.parse(text)
    uncommented = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node, name in _imports(func):
            above = lines[max(0, node.lineno - 4) : node.lineno - 1]
            if not any(line.strip().startswith("#") for line in above):
                uncommented.append(f"line {node.lineno}: {name}")
    assert uncommented == [], f"{path.name}: function-level imports without a comment"


def test_the_check_catches_a_lazy_back_edge() -> None:
    # A function-level import of the engine (the kind that hid the circle issue 15 names).
    text = ("import json\nfrom ._event import TraceEvent\n\ndef f():\n"
            "    from .._runtime import Runtime\n    import routilux.sync\n    import numpy\n")
    assert _foreign_imports(text) == [
        "line 5: .._runtime (outside routilux.trace)",
        "line 6: routilux.sync",
        "line 7: numpy (not the standard library)",
    ]


def test_private_names_other_modules_share_stay_importable() -> None:
    from routilux.trace import (  # noqa: F401
        LANE_EXECUTOR,
        LANE_POOL,
        LANE_REMOTE,
        LOOP_THREAD_NAME,
        MAX_LOAD_CAPACITY,
        MAX_LOAD_NESTING,
        _lane_of,
        _source_events,
        _task_spans,
    )

    for name in routilux.trace.__all__:
        obj = getattr(routilux.trace, name)
        if isinstance(obj, type) or callable(obj):  # reprs and pickles name the public face
            assert obj.__module__ == "routilux.trace", name
