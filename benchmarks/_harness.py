"""Shared helpers for the benchmarks: medians, percentiles, child runs, Markdown tables.

Standard library only: the upstream driver imports this module too, from a virtual
environment where our ``routilux`` is not installed (the names clash).

Conventions (docs: README "Benchmarks"; house style: ratios, medians, no asserted times):

- A child run prints exactly one line starting with ``RESULT_MARK`` followed by a JSON
  object; anything else it prints is ignored (and kept for error messages).
- Peak RSS is the child's high-water mark (``VmHWM``): one process per run, so it is that
  run's peak.
- Latency is ``post -> job terminal`` per job, in seconds; the summary keeps p50 and p95.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

RESULT_MARK = "@@BENCH-RESULT@@ "


# -- numbers ---------------------------------------------------------------------------
def median(values: Iterable[float]) -> float:
    """Median of the finite values; NaN when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank over ``values`` (need not be sorted)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when either side is missing or ``b`` is zero."""
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return math.nan
    return a / b


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux: ``VmHWM`` from /proc/self/status. Not ``ru_maxrss``: it survives fork + exec,
    so a small child reports its parent's peak (measured: every child showed the
    orchestrator's 29 MB).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError):
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / (1024.0 * 1024.0)


def current_rss_mb() -> float:
    """This process's resident set size now, in MiB (from /proc; psutil if present)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        import psutil  # not Linux: fall back to psutil

        return psutil.Process().memory_info().rss / (1024.0 * 1024.0)


def summarize_latencies(latencies_s: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": percentile(latencies_s, 0.50) * 1e3,
            "p95_ms": percentile(latencies_s, 0.95) * 1e3}


# -- child processes -------------------------------------------------------------------
def emit_result(result: dict[str, Any]) -> None:
    """Print a child's result line (the parent parses only this line)."""
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_child(cmd: list[str], timeout_s: float, env: dict[str, str] | None = None,
              cwd: str | None = None) -> dict[str, Any]:
    """Run one child benchmark; its result dict, or ``{"error": reason}``.

    A child that exceeds ``timeout_s`` is killed and reported as hung; one that exits
    without a result line is reported with the tail of its stderr.
    """
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout_s,
                              env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"error": f"hung: killed after {timeout_s:.0f} s", "wall_s": timeout_s}
    wall = time.perf_counter() - start
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            result.setdefault("wall_s", wall)
            return result
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    return {"error": f"exit {proc.returncode} without a result: {tail[:300]}", "wall_s": wall}


# -- output ----------------------------------------------------------------------------
def fmt(value: Any, digits: int = 0) -> str:
    """A number for a table cell; '-' for missing/NaN."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                   align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one char per column: l, r (default r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def machine_info() -> dict[str, str]:
    """nproc, CPU model, Python version and platform: printed next to every table."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
    }
