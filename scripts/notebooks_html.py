"""Run each notebook top to bottom in a fresh kernel and render it to HTML: ``make notebooks-html``.

Every notebook given is executed and rendered, also after another one failed: a failed
notebook is still written (with its outputs up to the failing cell, so a person can see
why), named in the summary, and makes the exit status 1. Before #12 nbconvert stopped at
the first failure, skipped the rest and the target still exited 0.

Widget state is not stored in the rendered notebook on purpose: the HTML then shows the
static picture every routilux widget output carries beside its live view (``image/png``),
instead of a widget view that needs a kernel (or a CDN) to draw anything.

Usage: python scripts/notebooks_html.py [--output-dir build/html] [--timeout 600] NB.ipynb ...
(no notebook given: every notebooks/*.ipynb).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 600  # seconds one cell may run (the notebooks need far less)


@dataclass(frozen=True)
class Outcome:
    """What happened to one notebook: ``error`` is None when every cell ran."""

    path: Path
    seconds: float
    error: str | None = None
    html: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _error_text(exc: BaseException, nb: object) -> str:
    """One line: which cell failed and how (a CellExecutionError's own text is a page)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if isinstance(exc, CellExecutionError):
        cells = getattr(nb, "cells", [])
        where = "a cell"
        for index, cell in enumerate(cells):
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                where = f"cell {index} ({first[:60]!r})"
                break
        return f"{where}: {exc.ename}: {' '.join(str(exc.evalue).split())[:300]}"
    if isinstance(exc, CellTimeoutError | DeadKernelError):
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return f"{type(exc).__name__}: {exc}"


def execute(path: Path, timeout: float = CELL_TIMEOUT_S) -> tuple[object, str | None, float]:
    """Execute one notebook in a fresh ``python3`` kernel, in the notebook's own folder.

    Returns the executed notebook node (outputs up to the failure if one cell failed), the
    one-line error or None, and the seconds it took. Never raises for a failing notebook.
    """
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as exc:  # any failure is reported by name; the next notebook still runs
        error = _error_text(exc, nb)
    return nb, error, time.perf_counter() - start


def render(path: Path, output_dir: Path, timeout: float = CELL_TIMEOUT_S) -> Outcome:
    """Execute ``path`` and write ``output_dir/<stem>.html``, whether or not a cell failed."""
    from nbconvert import HTMLExporter

    nb, error, seconds = execute(path, timeout)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{path.stem}.html"
    try:
        body, _ = HTMLExporter().from_notebook_node(
            nb, resources={"metadata": {"name": path.stem, "path": str(path.parent)}}
        )
        target.write_text(body, encoding="utf-8")
    except Exception as exc:  # a notebook that ran but cannot be rendered is a failure too
        return Outcome(path, seconds, error or f"rendering failed: {type(exc).__name__}: {exc}")
    return Outcome(path, seconds, error, target)


def summary(outcomes: list[Outcome]) -> tuple[str, int]:
    """The closing lines and the exit status: 1 when any notebook failed (or none was given)."""
    if not outcomes:
        return "make notebooks-html: no notebooks given", 1
    failed = [o for o in outcomes if not o.ok]
    lines = [f"rendered {len(outcomes) - len(failed)} of {len(outcomes)} notebooks without errors"]
    if failed:
        lines.append("FAILED: " + ", ".join(o.path.name for o in failed))
        lines += [f"  {o.path.name}: {o.error}" for o in failed]
    return "\n".join(lines), 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "build" / "html")
    parser.add_argument("--timeout", type=float, default=CELL_TIMEOUT_S,
                        help="seconds one cell may run")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"make notebooks-html: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 1
    outcomes = []
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        outcome = render(path, args.output_dir, args.timeout)
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        where = f" -> {outcome.html}" if outcome.html else ""
        print(f"  {status} ({outcome.seconds:.1f} s){where}", flush=True)
        outcomes.append(outcome)
    text, code = summary(outcomes)
    print(text, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
