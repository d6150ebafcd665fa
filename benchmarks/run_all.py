"""Run every benchmark in one sitting and write benchmarks/results/latest.md.

``make bench`` (= ``python -m benchmarks``) runs, interleaved and repeated, the same
workloads (``_workloads.py``) on routilux (tracing off, on, on + a live dashboard), a
hand-written ThreadPoolExecutor chain, a bare queue dispatch floor, upstream Routilux from
PyPI in its own venv, and Dask's threaded scheduler; then RSS growth over 100k jobs, lock
and trace-record micro costs. Every run is a child process (its own peak RSS, bounded by
a timeout). It prints medians, ratios to baselines measured in the same sitting and the
targets' PASS/MISS, and asserts nothing: times depend on the machine.

    python -m benchmarks            # full: pools 1, 4, 16, 32; 5 repeats (< ~10 min)
    python -m benchmarks --quick    # about two minutes: the four cells of the targets, 3 repeats
    python -m benchmarks --smoke --out /tmp/x.md   # seconds; for tests/benchmarks
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/run_all.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import fmt, machine_info, markdown_table, median, run_child
from benchmarks._upstream import Upstream, child_env, ensure_upstream_venv
from benchmarks._workloads import WORKLOADS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results" / "latest.md"

LOCAL = ("routilux", "routilux-trace", "routilux-dash", "tpe-chain", "floor", "dask")
VARIANTS = ("routilux", "routilux-trace", "routilux-dash", "tpe-chain", "floor", "upstream",
            "dask")
LABELS = {
    "routilux": "routilux (trace off)",
    "routilux-trace": "routilux (trace on)",
    "routilux-dash": "routilux (trace on + dashboard 10 Hz)",
    "tpe-chain": "ThreadPoolExecutor chain",
    "floor": "bare SimpleQueue floor",
    "upstream": "upstream Routilux (PyPI)",
    "dask": "dask threads",
}

# Targets (PASS/MISS printed, never asserted): issue 16's table, as ratios in one sitting.
T_TRIVIAL_VS_TPE = 1.0  # routilux untraced / TPE chain, trivial 3-stage line, pool 4
T_TRIVIAL_AIM = 1.5  # ... the aim, shown as a second line
T_SLEEP_VS_TPE = 0.95  # routilux / TPE chain, 1 ms stages, pool 32
T_FANOUT_VS_TPE = 1.0  # routilux / TPE chain, fan-out 1->4 + barrier, pool 4
T_TRACE = 0.9  # tracing on / off, in every cell
T_DASH = 0.9  # traced + the live dashboard pump / traced, in every cell
T_RSS_GROWTH_MB = 50.0  # RSS after 100k jobs - RSS after 10k (keep: +2 / +25 MB today)
T_LOCK = 3.0  # TracedLock / threading.Lock, uncontended (keep: 2.5-2.8x today)


@dataclass
class Plan:
    name: str
    pools: tuple[int, ...]
    repeats: int
    jobs: dict[str, Any]  # workload -> int or {pool: int}
    caps: dict[str, dict[str, int]]  # slow variant -> workload -> max jobs
    exhaustion_pool: int = 4
    memory: tuple[int, int] | None = (10_000, 100_000)
    micro: dict[str, int] = field(default_factory=lambda: {
        "pairs": 200_000, "calls": 300_000, "repeats": 7})
    timeout_s: float = 120.0  # a child's own wait for its jobs
    upstream_timeout_s: float = 60.0
    only_cells: tuple[tuple[str, int], ...] | None = None  # instead of workloads x pools

    def jobs_for(self, workload: str, pool: int, variant: str) -> int:
        spec = self.jobs[workload]
        n = spec[pool] if isinstance(spec, dict) else spec
        cap = self.caps.get(variant, {}).get(workload)
        return min(n, cap) if cap else n

    def cells(self) -> list[tuple[str, int]]:
        if self.only_cells is not None:
            return list(self.only_cells)
        cells = [(w, p) for w in ("trivial", "sleep1ms", "fanout") if w in self.jobs
                 for p in self.pools]
        if "exhaustion" in self.jobs:
            cells.append(("exhaustion", self.exhaustion_pool))
        return cells


PLANS = {
    "full": Plan(
        "full", pools=(1, 4, 16, 32), repeats=5,
        jobs={"trivial": 20_000, "sleep1ms": {1: 200, 4: 800, 16: 3000, 32: 8000},
              "fanout": 8000, "exhaustion": 20_000},
        caps={"upstream": {"trivial": 3000, "sleep1ms": 500, "fanout": 1500},
              "dask": {"trivial": 1000, "sleep1ms": 500, "fanout": 500,
                       "exhaustion": 3000}},
    ),
    # The cells the targets are judged on, once each per repeat: about a minute.
    "quick": Plan(
        "quick", pools=(4, 32), repeats=3,
        # Runs of about a second or more: the dashboard's pump ticks at 10 Hz, so a run
        # shorter than a tick (3,000 trivial jobs take 0.1 s) never sees it.
        jobs={"trivial": 20_000, "sleep1ms": {32: 8000}, "fanout": 8000,
              "exhaustion": 20_000},
        caps={"upstream": {"trivial": 2000, "sleep1ms": 300, "fanout": 800,
                           "exhaustion": 5000},
              "dask": {"trivial": 300, "sleep1ms": 300, "fanout": 200, "exhaustion": 1000}},
        memory=(10_000, 100_000), micro={"pairs": 50_000, "calls": 50_000, "repeats": 3},
        timeout_s=60.0, upstream_timeout_s=30.0,
        only_cells=(("trivial", 4), ("sleep1ms", 32), ("fanout", 4), ("exhaustion", 4)),
    ),
    "smoke": Plan(
        "smoke", pools=(2,), repeats=1,
        jobs={"trivial": 30, "sleep1ms": {2: 10}, "fanout": 20, "exhaustion": 100},
        caps={}, exhaustion_pool=2, memory=(100, 300),
        micro={"pairs": 2000, "calls": 2000, "repeats": 1},
        timeout_s=30.0, upstream_timeout_s=30.0,
    ),
}


# -- running ----------------------------------------------------------------------------
def _local_cmd(variant: str, workload: str, pool: int, jobs: int, timeout: float) -> list[str]:
    return [sys.executable, "-m", "benchmarks._local_runs", variant, workload, str(pool),
            str(jobs), "--timeout", str(timeout)]


def run_one(plan: Plan, upstream: Upstream, variant: str, workload: str, pool: int) -> dict:
    jobs = plan.jobs_for(workload, pool, variant)
    if variant == "upstream":
        if upstream.python is None:
            return {"jobs": jobs, "error": upstream.note}
        cmd = [upstream.python, str(HERE / "_upstream_driver.py"), workload, str(pool),
               str(jobs), "--timeout", str(plan.upstream_timeout_s)]
        out = run_child(cmd, plan.upstream_timeout_s + 90, env=child_env(), cwd=str(HERE))
    else:
        out = run_child(_local_cmd(variant, workload, pool, jobs, plan.timeout_s),
                        plan.timeout_s + 90, cwd=str(ROOT))
    out.setdefault("jobs", jobs)
    return out


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def run_plan(plan: Plan, variants: tuple[str, ...], upstream: Upstream,
             log=print) -> dict[tuple[str, int, str], list[dict]]:
    """Every (cell, variant) ``plan.repeats`` times, interleaved: each repeat runs every cell
    and, within a cell, every variant in an order rotated by the repeat number."""
    results: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    given_up: dict[tuple[str, int, str], str] = {}
    for rep in range(plan.repeats):
        t0 = time.perf_counter()
        for workload, pool in plan.cells():
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for variant in order:
                key = (workload, pool, variant)
                if key in given_up:
                    continue
                out = run_one(plan, upstream, variant, workload, pool)
                out["rep"] = rep
                results[key].append(out)
                if "error" in out and variant in ("upstream", "dask"):
                    # a slow baseline that failed once is not retried: its row says why
                    given_up[key] = out["error"]
        log(f"  repeat {rep + 1}/{plan.repeats} done in {time.perf_counter() - t0:.0f} s "
            f"(load average {_loadavg()})")
    return results


def run_extras(plan: Plan) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    m = plan.micro
    extras["micro"] = run_child(
        [sys.executable, "-m", "benchmarks._micro", "--pairs", str(m["pairs"]),
         "--calls", str(m["calls"]), "--repeats", str(m["repeats"])], 300, cwd=str(ROOT))
    if plan.memory is not None:
        first, total = plan.memory
        for trace in (False, True):
            cmd = [sys.executable, "-m", "benchmarks._memory", "--first", str(first),
                   "--total", str(total)] + (["--trace"] if trace else [])
            extras["memory_trace" if trace else "memory"] = run_child(cmd, 600, cwd=str(ROOT))
    return extras


# -- summarizing ------------------------------------------------------------------------
def _ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if "error" not in r and r.get("rate")]


def paired_ratio(results, workload: str, pool: int, a: str, b: str) -> float:
    """Median over repeats of rate(a) / rate(b) within the same repeat."""
    by_rep_b = {r["rep"]: r["rate"] for r in _ok(results.get((workload, pool, b), []))}
    ratios = [r["rate"] / by_rep_b[r["rep"]] for r in _ok(results.get((workload, pool, a), []))
              if r["rep"] in by_rep_b]
    return median(ratios)


def summarize(results) -> dict[tuple[str, int, str], dict[str, Any]]:
    rows = {}
    for key, runs in results.items():
        ok = _ok(runs)
        errors = [r["error"] for r in runs if "error" in r]
        rows[key] = {
            "jobs": runs[0].get("jobs"), "runs": len(runs), "ok": len(ok),
            "rate": median(r["rate"] for r in ok),
            "p50_ms": median(r["p50_ms"] for r in ok),
            "p95_ms": median(r["p95_ms"] for r in ok),
            "rss_mb": median(r.get("peak_rss_mb", math.nan) for r in ok),
            "rss_before_mb": median(r.get("rss_before_mb", math.nan) for r in ok),
            "error": errors[0] if errors else None,
            "reader": next((r["reader"] for r in ok if "reader" in r), None),
            "version": next((r["version"] for r in runs if "version" in r), None),
        }
    return rows


def _verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    if not math.isfinite(value):
        return "n/a"
    good = value >= target if higher_is_better else value <= target
    return "PASS" if good else "MISS"


def targets(plan: Plan, results, rows, extras) -> list[tuple[str, str, str]]:
    """(target, measured, PASS/MISS/info) rows."""
    out: list[tuple[str, str, str]] = []
    p4 = 4 if 4 in plan.pools else plan.pools[0]
    p32 = 32 if 32 in plan.pools else plan.pools[-1]

    vs_chain = [
        ("trivial", p4, T_TRIVIAL_VS_TPE, "trivial 3-stage line"),
        ("trivial", p4, T_TRIVIAL_AIM, "trivial 3-stage line (the aim)"),
        ("sleep1ms", p32, T_SLEEP_VS_TPE, "1 ms stages"),
        ("fanout", p4, T_FANOUT_VS_TPE, "fan-out 1->4 + barrier"),
    ]
    for workload, pool, target, what in vs_chain:
        if workload not in plan.jobs:
            continue
        r = paired_ratio(results, workload, pool, "routilux", "tpe-chain")
        out.append((f"routilux untraced >= {target}x ThreadPoolExecutor chain: {what}, "
                    f"pool {pool}", f"{r:.2f}x", _verdict(r, target)))
    def _x(value: float) -> str:
        return f"{value:.2f}x" if math.isfinite(value) else "routilux failed"

    floors = [f"{w} p{p} {_x(paired_ratio(results, w, p, 'routilux', 'floor'))}"
              for w, p in plan.cells() if (w, p, "floor") in results]
    out.append(("routilux / bare SimpleQueue floor (no target)", "; ".join(floors), "info"))

    ahead, failed = [], []
    for w, p in plan.cells():
        up = rows.get((w, p, "upstream"))
        if up is None:
            continue
        if up["ok"] == 0:
            failed.append(f"{w} p{p}: {up['error']}")
            continue
        ahead.append((paired_ratio(results, w, p, "routilux", "upstream"), w, p))
    if ahead:
        n_cells = len(ahead)
        behind = [f"{w} p{p} {_x(x)}" for x, w, p in ahead if not x > 1.0]
        finite = [a for a in ahead if math.isfinite(a[0])]
        worst = min(finite) if finite else (math.nan, "-", 0)
        measured = (f"worst {_x(worst[0])} ({worst[1]} p{worst[2]}) over {n_cells} "
                    f"workloads upstream completed" + (f"; behind on: {', '.join(behind)}"
                                                       if behind else ""))
        if failed:
            measured += f"; upstream failed {len(failed)}: " + "; ".join(failed)
        out.append(("routilux ahead of upstream on every workload upstream completes",
                    measured, "PASS" if not behind else "MISS"))
    elif failed:
        out.append(("routilux ahead of upstream on every workload upstream completes",
                    "; ".join(failed), "n/a"))

    for variant, base, target, what in (
        ("routilux-trace", "routilux", T_TRACE, "traced >= {t}x untraced"),
        ("routilux-dash", "routilux-trace", T_DASH,
         "traced + live dashboard pump >= {t}x traced"),
    ):
        per = [(paired_ratio(results, w, p, variant, base), w, p) for w, p in plan.cells()
               if (w, p, variant) in results]
        if not per:
            continue
        finite = [x for x in per if math.isfinite(x[0])]
        cells = "; ".join(f"{w} p{p} {_x(x)}" for x, w, p in per)
        if not finite:
            out.append((f"{what.format(t=target)} in every cell", cells, "n/a"))
            continue
        worst = min(finite)
        verdict = "PASS" if len(finite) == len(per) and worst[0] >= target else "MISS"
        out.append((f"{what.format(t=target)} in every cell",
                    f"worst {worst[0]:.2f}x ({worst[1]} p{worst[2]}); {cells}", verdict))
    shares = [(median(r.get("dashboard_cpu_share", math.nan)
                      for r in _ok(results.get((w, p, "routilux-dash"), []))), w, p)
              for w, p in plan.cells()]
    shares = [x for x in shares if math.isfinite(x[0])]
    if shares:
        out.append(("dashboard pump's own CPU share (pump thread CPU time / wall; no target)",
                    "; ".join(f"{w} p{p} {100 * x:.1f}%" for x, w, p in shares), "info"))

    for key, label in (("memory", "tracing off"), ("memory_trace", "tracing on")):
        m = extras.get(key)
        if not m:
            continue
        if "error" in m:
            out.append((f"RSS growth ({label})", m["error"], "n/a"))
            continue
        out.append((
            (f"RSS after {m['total']:,} jobs within {T_RSS_GROWTH_MB:.0f} MB of RSS after "
            f"{m['first']:,} ({label})"),
            (f"{m['rss_first_mb']:.1f} -> {m['rss_total_mb']:.1f} MB "
            f"(+{m['growth_mb']:.1f} MB)"),
            _verdict(m["growth_mb"], T_RSS_GROWTH_MB, higher_is_better=False)))
    micro = extras.get("micro", {})
    if "lock_ns" in micro:
        x = micro["traced_lock_ns"] / micro["lock_ns"]
        out.append((f"uncontended TracedLock acquire/release <= {T_LOCK:g}x threading.Lock",
                    (f"{micro['traced_lock_ns']:.0f} / {micro['lock_ns']:.0f} ns = {x:.2f}x "
                    f"(`with`: {micro['traced_lock_with_ns'] / micro['lock_with_ns']:.2f}x)"),
                    _verdict(x, T_LOCK, higher_is_better=False)))
        out.append(("Tracer.record cost (no target)",
                    (f"{micro['record_ns']:.0f} ns/call one thread "
                    f"({micro['record_ns'] / micro['empty_call_ns']:.1f}x an empty call with "
                    f"the same arguments); {micro['record_8threads_ns']:.0f} ns wall with 8 "
                    "threads recording"), "info"))
    elif micro:
        out.append(("micro costs", micro.get("error", "?"), "n/a"))
    return out


def results_tables(plan: Plan, results, rows) -> str:
    parts = []
    for workload in [w for w in ("trivial", "sleep1ms", "fanout", "exhaustion")
                     if w in plan.jobs]:
        w = WORKLOADS[workload]
        pools = [plan.exhaustion_pool] if workload == "exhaustion" else list(plan.pools)
        table_rows = []
        for pool in pools:
            for variant in VARIANTS:
                row = rows.get((workload, pool, variant))
                if row is None:
                    continue
                if row["ok"] == 0:
                    table_rows.append([pool, LABELS[variant], fmt(row["jobs"]),
                                       "FAILED", "-", "-", "-", "-", "-", "-",
                                       (row["error"] or "")[:160]])
                    continue
                vs_tpe = paired_ratio(results, workload, pool, variant, "tpe-chain")
                vs_up = paired_ratio(results, workload, pool, variant, "upstream")
                vs_floor = paired_ratio(results, workload, pool, variant, "floor")
                note = []
                if row["ok"] < row["runs"]:
                    note.append(f"{row['runs'] - row['ok']} of {row['runs']} runs failed: "
                                f"{(row['error'] or '')[:120]}")
                table_rows.append([
                    pool, LABELS[variant], fmt(row["jobs"]), fmt(row["rate"]),
                    fmt(row["p50_ms"], 1), fmt(row["p95_ms"], 1), fmt(row["rss_mb"], 1),
                    f"{vs_tpe:.2f}" if variant != "tpe-chain" and math.isfinite(vs_tpe)
                    else "-",
                    f"{vs_up:.2f}" if variant != "upstream" and math.isfinite(vs_up) else "-",
                    f"{vs_floor:.3f}" if variant != "floor" and math.isfinite(vs_floor)
                    else "-",
                    "; ".join(note),
                ])
        parts.append(f"### {workload}: {w.description}\n\n" + markdown_table(
            ["pool", "variant", "jobs", "jobs/s", "p50 ms", "p95 ms", "peak RSS MB",
             "x TPE chain", "x upstream", "x floor", "notes"],
            table_rows, align="rlrrrrrrrrl"))
    return "\n\n".join(parts)


def summary_table(plan: Plan, results, rows) -> str:
    """One row per (workload, pool): median jobs/s of every variant, routilux's ratios."""
    present = [v for v in VARIANTS if any(k[2] == v for k in rows)]
    short = {"routilux": "routilux", "routilux-trace": "+trace", "routilux-dash": "+dashboard",
             "tpe-chain": "TPE chain", "floor": "floor", "upstream": "upstream",
             "dask": "dask"}
    table_rows = []
    for workload, pool in plan.cells():
        cells = []
        for variant in present:
            row = rows.get((workload, pool, variant))
            if row is None:
                cells.append("-")
            elif row["ok"] == 0:
                done = median(r.get("done", math.nan)
                              for r in results[(workload, pool, variant)])
                cells.append(f"FAILED ({fmt(done)}/{fmt(row['jobs'])})"
                             if math.isfinite(done) else "FAILED")
            else:
                cells.append(fmt(row["rate"]) + ("*" if row["ok"] < row["runs"] else ""))
        x_tpe = paired_ratio(results, workload, pool, "routilux", "tpe-chain")
        x_up = paired_ratio(results, workload, pool, "routilux", "upstream")
        table_rows.append([workload, pool, *cells,
                           f"{x_tpe:.2f}" if math.isfinite(x_tpe) else "-",
                           f"{x_up:.2f}" if math.isfinite(x_up) else "-"])
    return markdown_table(
        ["workload", "pool", *(short[v] for v in present), "routilux / TPE",
         "routilux / upstream"],
        table_rows, align="lr" + "r" * (len(present) + 2))


def render(plan: Plan, results, extras, upstream: Upstream, meta: dict[str, Any]) -> str:
    rows = summarize(results)
    machine = meta["machine"]
    reader = next((r["reader"] for r in rows.values() if r.get("reader")), "not run")
    lines = [
        "# routilux benchmarks: latest run",
        "",
        (f"Generated by `python -m benchmarks{meta['flags']}` (`make bench`) on "
        f"{meta['date']}, commit {meta['commit']}, in {meta['duration_s'] / 60:.1f} min."),
        (f"Machine: {machine['nproc']} CPUs (nproc), {machine['cpu']}, "
        f"{machine['implementation']} {machine['python']}, {machine['platform']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after "
        "(a shared machine: other processes ran alongside)."),
        "",
        (f"Plan `{plan.name}`: medians of {plan.repeats} interleaved repeats per row; every "
        "run is its own child process (peak RSS = its `VmHWM`, interpreter included). "
        "Ratios (`x ...`) are medians of per-repeat ratios to the baseline run in the same "
        "repeat. All jobs of a run are posted at once, so latency (post -> job terminal) "
        "is mostly time spent queued and is comparable only between rows with the same job "
        "count. Nothing here is asserted; these are this machine's numbers."),
        "",
        f"- upstream: {upstream.note}",
        f"- dashboard: {reader}",
        ("- ThreadPoolExecutor chain: each stage's function submits the next stage to the "
        "same executor; the fan-in's last branch (per-job `itertools.count`) submits the "
        "join. Bare floor: pool threads taking callables from one `queue.SimpleQueue`, each "
        "stage putting the next; nothing else. Dask: one `dask.delayed` graph of all jobs, "
        "`scheduler=\"threads\", num_workers=pool`."),
        "",
        "## Targets",
        "",
        markdown_table(["target", "measured", "verdict"], targets(plan, results, rows, extras),
                       align="lll"),
        "",
        "## Summary: jobs/s (median)",
        "",
        ("FAILED (n/N): no run completed all its N jobs, n = median completed; `*`: some "
         "runs did not (see the notes below). routilux = tracing off."),
        "",
        summary_table(plan, results, rows),
        "",
        "## Throughput, latency, memory",
        "",
        results_tables(plan, results, rows),
        "",
    ]
    return "\n".join(lines)


def rerender(source: Path, out: Path) -> int:
    """Write the report again from a run's saved .json (after a change to the layout)."""
    raw = json.loads(source.read_text(encoding="utf-8"))
    plan = PLANS[raw["plan"]]
    plan.repeats = raw.get("repeats", plan.repeats)
    results: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for run in raw["runs"]:
        key = (run["workload"], run["pool"], run["variant"])
        results[key].append({k: v for k, v in run.items()
                             if k not in ("workload", "pool", "variant")})
    upstream = Upstream(None, None, raw.get("upstream", "see the .json"))
    report = render(plan, results, raw["extras"], upstream, raw["meta"])
    out.write_text(report, encoding="utf-8")
    print(report)
    return 0


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                             capture_output=True,
                             text=True, cwd=str(ROOT), timeout=10)
        commit = out.stdout.strip() or "?"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "routilux",
                                "routilux_jupyter"], check=False, capture_output=True,
                               text=True, cwd=str(ROOT), timeout=10).stdout.strip()
        return commit + (" (plus uncommitted changes in routilux/ or routilux_jupyter/)"
                         if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about two minutes")
    mode.add_argument("--smoke", action="store_true", help="seconds; checks the harness only")
    parser.add_argument("--repeats", type=int, help="override the plan's repeats")
    parser.add_argument("--no-upstream", action="store_true",
                        help="skip upstream Routilux (no venv is created)")
    parser.add_argument("--no-dask", action="store_true", help="skip Dask")
    parser.add_argument("--only", help="comma-separated variants to run (default: all)")
    parser.add_argument("--from-json", type=Path,
                        help="re-render the report from a saved .json (runs nothing)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"Markdown report (default {DEFAULT_OUT.relative_to(ROOT)}); "
                             "raw numbers go next to it as .json")
    args = parser.parse_args(argv)

    if args.from_json:
        return rerender(args.from_json, args.out)
    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.repeats:
        plan.repeats = args.repeats
    variants = VARIANTS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(VARIANTS)
        if unknown:
            parser.error(f"unknown variants {sorted(unknown)}; variants are: "
                         f"{', '.join(VARIANTS)}")
        variants = tuple(v for v in VARIANTS if v in wanted)
    if args.no_dask:
        variants = tuple(v for v in variants if v != "dask")
    if args.no_upstream:
        variants = tuple(v for v in variants if v != "upstream")
        upstream = Upstream(None, None, "skipped (--no-upstream)")
    elif "upstream" in variants:
        upstream = ensure_upstream_venv()
    else:
        upstream = Upstream(None, None, "not run")
    if "dask" in variants:
        try:
            import dask  # noqa: F401
        except ImportError:
            print("dask is not installed (pip install 'routilux[dask]'); skipping it")
            variants = tuple(v for v in variants if v != "dask")

    flags = " --quick" if args.quick else " --smoke" if args.smoke else ""
    print(f"routilux benchmarks, plan {plan.name}: {len(plan.cells())} cells x "
          f"{len(variants)} variants x {plan.repeats} repeats; upstream: {upstream.note}")
    started = time.perf_counter()
    load_before = _loadavg()
    results = run_plan(plan, variants, upstream)
    print("  extras: micro costs, RSS growth")
    extras = run_extras(plan)
    meta = {
        "flags": flags, "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": _git_commit(), "duration_s": time.perf_counter() - started,
        "machine": machine_info(), "load_before": load_before, "load_after": _loadavg(),
    }
    report = render(plan, results, extras, upstream, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    raw = {"plan": plan.name, "meta": meta, "extras": extras, "upstream": upstream.note,
           "repeats": plan.repeats,
           "runs": [{"workload": w, "pool": p, "variant": v, **r}
                    for (w, p, v), runs in results.items() for r in runs]}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print()
    print(report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
