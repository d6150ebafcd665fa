"""Run every notebook N times, on a quiet machine and beside CPU hogs: ``make soak``.

A notebook's assertion cells check its claims, so a notebook that fails one run in ten
is a claim that is true nine times in ten (#12). This runs each notebook ``--runs`` times
with no extra load, then ``--runs`` times with ``--hogs`` processes spinning
(``python3 -c 'while True: pass'``, the load of a busy CI host), and prints the pass
counts per notebook. The exit status is 1 when any run failed.

Runs are sequential, one kernel at a time: notebooks run side by side would load the
machine and change what they measure. The hogs are ended whatever happens (Ctrl-C too).

Usage: python scripts/soak.py [--runs 20] [--hogs 2] [--modes quiet,hogs] [NB.ipynb ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebooks_html import CELL_TIMEOUT_S, REPO_ROOT, execute  # noqa: E402

HOG_CODE = "while True: pass"
MODES = ("quiet", "hogs")


@contextmanager
def cpu_hogs(count: int) -> Iterator[list[subprocess.Popen]]:
    """``count`` busy-looping processes for the duration of the block; always ended."""
    hogs = []
    try:
        for _ in range(count):
            hogs.append(subprocess.Popen([sys.executable, "-c", HOG_CODE],
                                         stdin=subprocess.DEVNULL))
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)


def soak(paths: list[Path], runs: int, hogs: int, modes: tuple[str, ...],
         timeout: float = CELL_TIMEOUT_S, log=print,
         keep_failed: Path | None = None) -> dict[str, dict[str, list[str | None]]]:
    """Run each notebook ``runs`` times per mode; returns mode -> notebook -> one error per run.

    An error is None for a run in which every cell passed. With ``keep_failed``, each
    failed run's executed notebook is written there (``<mode>-<run>-<name>``) to read why.
    """
    results: dict[str, dict[str, list[str | None]]] = {}
    for mode in modes:
        per_notebook: dict[str, list[str | None]] = {p.name: [] for p in paths}
        results[mode] = per_notebook
        with cpu_hogs(hogs if mode == "hogs" else 0):
            for run in range(1, runs + 1):
                for path in paths:
                    nb, error, seconds = execute(path, timeout)
                    per_notebook[path.name].append(error)
                    if error is not None and keep_failed is not None:
                        import nbformat

                        keep_failed.mkdir(parents=True, exist_ok=True)
                        nbformat.write(nb, keep_failed / f"{mode}-{run}-{path.name}")
                    status = "pass" if error is None else f"FAIL: {error}"
                    log(f"[{mode} {run}/{runs}] {path.name}: {status} ({seconds:.1f} s)")
    return results


def table(results: dict[str, dict[str, list[str | None]]], hogs: int) -> str:
    """Pass counts, one row per notebook, one column per mode, then every distinct failure."""
    modes = list(results)
    names = list(next(iter(results.values()))) if results else []
    heads = ["quiet" if m == "quiet" else f"{hogs} CPU hogs" for m in modes]
    width = max([len("notebook"), *map(len, names)])
    lines = ["notebook".ljust(width) + "".join(f"  {h:>12}" for h in heads)]
    for name in names:
        cells = []
        for mode in modes:
            errors = results[mode][name]
            cells.append(f"{sum(e is None for e in errors)}/{len(errors)} pass")
        lines.append(name.ljust(width) + "".join(f"  {c:>12}" for c in cells))
    failures = [(mode, name, error) for mode in modes for name in names
                for error in dict.fromkeys(results[mode][name]) if error is not None]
    if failures:
        lines.append("failures:")
        lines += [f"  [{mode}] {name}: {error}" for mode, name, error in failures]
    return "\n".join(lines)


def failed(results: dict[str, dict[str, list[str | None]]]) -> bool:
    return any(e is not None for per in results.values() for es in per.values() for e in es)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--runs", type=int, default=20, help="runs per notebook and mode")
    parser.add_argument("--hogs", type=int, default=2, help="CPU-hog processes in 'hogs' mode")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated, from: {', '.join(MODES)}")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one cell may run")
    parser.add_argument("--keep-failed", type=Path, default=REPO_ROOT / "build" / "soak",
                        help="where each failed run's executed notebook is written")
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        parser.error(f"--modes: unknown {bad or 'empty'}; choose from {', '.join(MODES)}")
    if args.runs < 1 or args.hogs < 0:
        parser.error(f"--runs must be >= 1 and --hogs >= 0, got {args.runs} and {args.hogs}")
    paths = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        parser.error(f"no such notebook: {', '.join(missing) or 'notebooks/*.ipynb'}")
    results = soak(paths, args.runs, args.hogs, modes, args.timeout,
                   log=lambda line: print(line, flush=True), keep_failed=args.keep_failed)
    print(table(results, args.hogs))
    return 1 if failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
