"""The benchmark harness still runs end to end (issue #7). No timing is asserted.

``python -m benchmarks --smoke`` runs every local variant on every workload with a handful
of jobs, plus the micro costs and a tiny RSS-growth run, and writes a report. Upstream
Routilux is skipped here (it needs its own venv from PyPI; ``make bench`` creates it).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._harness import markdown_table, median, percentile, ratio

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_smoke_run_writes_a_report_with_every_variant_and_workload(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--no-upstream", "--out", str(out)],
        check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = out.read_text(encoding="utf-8")
    for heading in ("## Targets", "### trivial", "### sleep1ms", "### fanout",
                    "### exhaustion"):
        assert heading in report
    assert "| FAILED" not in report, report  # no row of any table failed
    assert "ThreadPoolExecutor chain" in report and "bare SimpleQueue floor" in report
    assert "routilux (trace on + dashboard 10 Hz)" in report

    raw = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    variants = {r["variant"] for r in raw["runs"]}
    assert {"routilux", "routilux-trace", "routilux-dash", "tpe-chain", "floor"} <= variants
    assert "upstream" not in variants
    for run in raw["runs"]:
        assert "error" not in run, run
        assert run["done"] == run["jobs"], run
        assert run["peak_rss_mb"] > 0
    assert raw["extras"]["micro"]["traced_lock_ns"] > 0
    assert raw["extras"]["memory"]["failed"] == 0


def test_percentile_and_median() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.95) == 4.0
    assert math.isnan(percentile([], 0.5))
    assert median([1.0, float("nan"), 3.0]) == 2.0
    assert math.isnan(ratio(1.0, 0.0))


def test_markdown_table_aligns_columns() -> None:
    table = markdown_table(["a", "b"], [["x", 1]], align="lr")
    assert table.splitlines() == ["| a | b |", "| :--- | ---: |", "| x | 1 |"]
