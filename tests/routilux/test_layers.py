"""routilux's layers, read from its imports: no circle, no edge against the order.

An AST walk over every module of the package, counting every import wherever it is
written (top level, inside functions, under ``if TYPE_CHECKING:``), because a lazy or
type-only import is still an arrow a reader has to follow. The layers, lowest first:

1. floor: ``_errors``, ``_validate``, ``_singleton``, ``_deadlock``, ``_faces`` (import only
   the floor)
2. ``trace`` (imports nothing of routilux)
3. ``executors``: plug-ins that import only ``executors._base`` (and the floor); the face and
   ``executors._choice`` (names/objects -> an executor) may import the plug-ins
4. ``_model``: what a flow is (routines, slots, flows, jobs, worker state, policies)
5. ``sync``: traced locks (the model's activation context, the floor, trace)
6. ``_engine``: how it runs (pool threads, workers, job table, monitor, offload)
7. analysis: ``diagnostics``, ``tuning`` (and their helpers); nothing below imports them
8. faces: ``routilux`` itself, the compat paths (``core``, ``runtime``,
   ``activation_policies``, ``monitoring``) and ``demo``

A module may import its own layer or any lower one (executors: see above). Also: every
function-level import says in a comment (on its line or just above) which cost it
defers, and no module is over ``MAX_LINES`` lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import routilux

PACKAGE = Path(routilux.__file__).resolve().parent
MAX_LINES = 600

FLOOR = {"routilux._errors", "routilux._validate", "routilux._singleton", "routilux._deadlock",
         "routilux._faces"}
FACES = {"routilux", "routilux.runtime", "routilux.activation_policies", "routilux.demo"}
FACE_PACKAGES = ("routilux.core", "routilux.monitoring")
ANALYSIS = ("routilux.diagnostics", "routilux.tuning", "routilux._lock_order")
EXECUTOR_FACES = {"routilux.executors._choice"}
LAYERS = ["floor", "trace", "executors", "model", "sync", "engine", "analysis", "faces"]



def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    def under(prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    if module in FLOOR:
        return "floor"
    if under("routilux.trace"):
        return "trace"
    if module == "routilux.executors":
        return "faces"  # the lazy face re-exports the engine's codec (docs/executors.md)
    if under("routilux.executors"):
        return "executors"
    if under("routilux._model"):
        return "model"
    if under("routilux.sync"):
        return "sync"
    if under("routilux._engine") or module == "routilux._offload":
        return "engine"
    if any(under(p) for p in ANALYSIS):
        return "analysis"
    if module in FACES or any(under(p) for p in FACE_PACKAGES):
        return "faces"
    raise AssertionError(
        f"{module} is in no layer: place it in one (see this test's docstring) and add "
        "it to layer_of"
    )


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    base = node.module or ""
    if node.level:
        pkg = _package_of(module, path).split(".")
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([base] if base else []))
    return base


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """(imported routilux module, line, inside a function) for every import in ``module``."""
    path = SOURCES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "routilux":
                        found.append((alias.name, child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, path, child)
                if base.split(".")[0] != "routilux":
                    continue
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in SOURCES else base, child.lineno, in_function))
            elif (isinstance(child, ast.Constant) and isinstance(child.value, str)
                  and "." in child.value and child.value in SOURCES and child.value != module):
                # A module named in a string (a lazy face's importlib table) is an arrow too.
                found.append((child.value, child.lineno, True))
            visit(child, nested)

    visit(tree, False)
    return found


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in SOURCES}
    for module in SOURCES:
        for target, _line, _lazy in imports_of(module):
            if target != module:
                graph[module].add(target)
    return graph


def allowed(src: str, dst: str) -> bool:
    ls, ld = layer_of(src), layer_of(dst)
    if ls == "trace":
        return ld == "trace"  # trace imports nothing of routilux outside itself
    if ls == "executors":  # plug-ins: their base and the floor's errors, nothing else
        return ld == "floor" or ld == "executors" and (dst == "routilux.executors._base"
                                                       or src in EXECUTOR_FACES)
    if ls == "faces":
        return True
    return LAYERS.index(ld) <= LAYERS.index(ls)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path [a, b, ..., a], else None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_every_module_is_in_a_layer() -> None:
    for module in SOURCES:
        layer_of(module)


def test_no_edge_against_the_layer_order() -> None:
    bad = []
    for module in sorted(SOURCES):
        for target, line, _lazy in imports_of(module):
            if target != module and not allowed(module, target):
                bad.append(f"{SOURCES[module].relative_to(PACKAGE.parent)}:{line}: "
                           f"{module} ({layer_of(module)}) imports {target} "
                           f"({layer_of(target)})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_circle_counting_lazy_and_type_only_imports() -> None:
    cycle = find_cycle(edges())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_function_level_imports_say_what_they_defer() -> None:
    bad = []
    for module, path in sorted(SOURCES.items()):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), filename=str(path))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    here = lines[node.lineno - 1]
                    above = lines[node.lineno - 2] if node.lineno > 1 else ""
                    if "#" not in here and not above.strip().startswith("#"):
                        bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                                   f"{here.strip()}")
    assert not bad, ("function-level imports without a comment naming the cost they "
                     "defer:\n" + "\n".join(sorted(set(bad))))


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_module_size(module: str) -> None:
    n = len(SOURCES[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (at most {MAX_LINES}): split it"


@pytest.mark.parametrize(("src", "dst", "ok"), [
    ("routilux._model._slot", "routilux._engine._worker", False),  # model -> engine
    ("routilux._engine._worker", "routilux._model._slot", True),
    ("routilux.trace", "routilux._errors", False),  # trace imports nothing of routilux
    ("routilux.executors.dask", "routilux._model._routine", False),
    ("routilux.executors.dask", "routilux.executors._base", True),
    ("routilux.executors.threads", "routilux.executors.dask", False),
    ("routilux.executors._choice", "routilux.executors.dask", True),
    ("routilux._errors", "routilux._model._job", False),  # floor -> model
    ("routilux._engine._runtime", "routilux.diagnostics", False),  # nothing imports analysis
    ("routilux.tuning", "routilux._engine._runtime", True),
    ("routilux.core.flow", "routilux", True),
])
def test_the_rule_itself(src: str, dst: str, ok: bool) -> None:
    assert allowed(src, dst) is ok


def test_the_cycle_finder_finds_a_lazy_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
