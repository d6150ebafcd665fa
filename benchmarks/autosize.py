"""Automatic pool sizing against the best fixed size (issue #18).

``python -m benchmarks.autosize`` runs, for each workload, ``routilux.tuning.sweep`` over
fixed sizes 1..64 (all jobs posted at once: what each size can do flat out) and then a
``Runtime(thread_pool_size="auto")`` fed by a thread that keeps its run queue full, and
reports how fast the automatic size got within 10 % of the best swept throughput, its
steady-state throughput, the sizes it used and whether it oscillated. Asserts nothing.

Workloads (one routine; logic per job):
- ``io1`` / ``io10`` / ``io100``: ``time.sleep`` of 1, 10, 100 ms (releases the GIL).
- ``gil``: a pure-Python loop of about 5 ms (holds the GIL).
- ``mix``: about 2 ms of loop, then a 10 ms sleep.
- ``phase``: ``io10`` for 10 s, then ``gil`` (the sweep's best is the ``gil`` one).

Targets (printed PASS/MISS): I/O-bound work within 10 % of the best swept throughput in
under 5 s; GIL-bound work never above 2 x cpu_count + 2 threads; after the phase change,
back within 10 % in under 5 s; in steady state at most one step of oscillation (the last
5 s use at most two sizes).

    python -m benchmarks.autosize                 # ~4 minutes
    python -m benchmarks.autosize --quick         # ~1.5 minutes, shorter runs
    python -m benchmarks.autosize --out results/autosize.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import fmt, machine_info, markdown_table
from routilux import Flow, QueueFullError, Routine, Runtime, immediate_policy
from routilux.trace import TraceEvent
from routilux.tuning import sweep

HERE = Path(__file__).resolve().parent
SWEEP_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_POOL = 64  # max_pool_size of the automatic runs, = the largest swept size
QUEUE = 4 * MAX_POOL  # the feeder keeps this many activations queued
WITHIN = 0.9  # "within 10 %" of the best swept throughput
T_CONVERGE_S = 5.0
SAMPLE_S = 0.1  # seconds between samples of the automatic run
TRAILING_S = 1.0  # throughput is judged over the trailing second
STEADY_S = 5.0  # the last seconds of a run, for steady throughput and oscillation
GIL_TASK_S = 0.005  # seconds of the pure-Python loop (calibrated at start)
MIX_CPU_S = 0.002

FIELDS = TraceEvent._fields
GIL_REACT_S = 5.0  # after the phase change, the size bound counts from this many seconds
_loops_per_s = 0.0


def _calibrate() -> None:
    """Loop iterations per CPU second (thread time: a busy machine's preemption is not
    counted, so a task's CPU time is what its name says)."""
    global _loops_per_s
    n = 300_000
    best = math.inf
    for _ in range(5):
        t0 = time.thread_time()
        _spin(n)
        best = min(best, time.thread_time() - t0)
    _loops_per_s = n / best


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def _cpu(seconds: float) -> None:
    _spin(int(seconds * _loops_per_s))


@dataclass
class Workload:
    name: str
    kind: str  # "io", "gil", "mix" or "phase"
    sleep_s: float = 0.0
    description: str = ""

    def work(self, phase: dict[str, str]) -> None:
        kind = self.kind if self.kind != "phase" else phase["now"]
        if kind == "io":
            time.sleep(self.sleep_s)
        elif kind == "gil":
            _cpu(GIL_TASK_S)
        else:
            _cpu(MIX_CPU_S)
            time.sleep(0.01)

    def nominal_s(self, kind: str | None = None) -> float:
        kind = kind or self.kind
        return {"io": self.sleep_s, "gil": GIL_TASK_S, "mix": MIX_CPU_S + 0.01}[kind]


WORKLOADS = [
    Workload("io1", "io", 0.001, "sleep 1 ms"),
    Workload("io10", "io", 0.010, "sleep 10 ms"),
    Workload("io100", "io", 0.100, "sleep 100 ms"),
    Workload("gil", "gil", 0.0, "pure-Python loop ~5 ms"),
    Workload("mix", "mix", 0.0, "~2 ms loop + 10 ms sleep"),
    Workload("phase", "phase", 0.010, "sleep 10 ms for 10 s, then the ~5 ms loop"),
]


def _flow(w: Workload, phase: dict[str, str]) -> Flow:
    flow = Flow(f"autosize-bench-{w.name}-{time.monotonic_ns()}")
    r = Routine()
    r.add_slot("in")
    r.set_activation_policy(immediate_policy())
    r.set_logic(lambda slot_data, policy_message, worker_state: w.work(phase))
    flow.add_routine(r, "work")
    return flow


def best_fixed(w: Workload, kind: str, quick: bool) -> tuple[int, float, dict[int, float]]:
    """(best size, its throughput, throughput by size) from ``sweep``, one size at a time
    so each size gets enough jobs to run for about a second."""
    phase = {"now": kind}
    flow = _flow(w, phase)
    per_size: dict[int, float] = {}
    run_s = 0.6 if quick else 1.2
    for size in SWEEP_SIZES:
        service = w.nominal_s(kind if w.kind == "phase" else None)
        jobs = int(min(4000, max(30, size * run_s / service)))
        if kind in ("gil", "mix"):  # throughput does not grow with size: a fixed count
            jobs = int(min(4000, max(30, run_s / (GIL_TASK_S if kind == "gil" else
                                                  MIX_CPU_S))))
        df = sweep(flow, "work", "in", sizes=[size], jobs=jobs, progress=False)
        per_size[size] = float(df["throughput"].iloc[0])
    best = max(per_size, key=per_size.__getitem__)
    return best, per_size[best], per_size


@dataclass
class AutoRun:
    samples: list[tuple[float, int, int]]  # (t, completed, size)
    decisions: list[tuple[float, str, int, str]]  # (t, action, size, reason)
    start_size: int

    def throughput_between(self, t0: float, t1: float) -> float:
        pts = [(t, c) for t, c, _ in self.samples if t0 <= t <= t1]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return math.nan
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def converged_at(self, target: float, since: float = 0.0) -> float | None:
        """Seconds after ``since`` until the trailing-second throughput reached target."""
        for t, _, _ in self.samples:
            if t < since + TRAILING_S:
                continue
            if self.throughput_between(t - TRAILING_S, t) >= target:
                return t - since
        return None

    def sizes_between(self, t0: float, t1: float) -> list[int]:
        return sorted({s for t, _, s in self.samples if t0 <= t <= t1})

    @property
    def end(self) -> float:
        return self.samples[-1][0]


def auto_run(w: Workload, seconds: float, switch_at: float | None = None,
             size: int | str = "auto", kind: str | None = None) -> AutoRun:
    """The workload under a feeder keeping the run queue full, on an automatic pool (or
    a fixed ``size``: the same harness measures the best swept size for comparison)."""
    phase = {"now": kind or ("io" if w.kind == "phase" else w.kind)}
    flow = _flow(w, phase)
    rt = Runtime(thread_pool_size=size, max_pool_size=MAX_POOL, max_queue_size=QUEUE,
                 trace=True)
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            try:
                rt.post(flow, "work", "in", {"i": i}, timeout=0.2)
            except QueueFullError:
                continue
            i += 1

    samples: list[tuple[float, int, int]] = []
    decisions: list[tuple[float, str, int, str]] = []
    tracer = rt.tracer
    cursor = 0
    t0 = 0.0  # set when the feeder starts

    def collect() -> int:
        # Read as we go: a fast workload overflows the ring buffer within the run.
        rows = tracer.read_rows(cursor)
        for row in rows:
            e = dict(zip(FIELDS, row, strict=True))
            if e["kind"] == "pool.autosize":
                decisions.append((e["ts_ns"] / 1e9 - t0, e["name"], int(e["value"]),
                                  e["detail"]["reason"]))
        return rows[-1][0] if rows else cursor

    start_size = rt.statistics().pool_size
    feeder = threading.Thread(target=feed, name="autosize-bench-feeder", daemon=True)
    t0 = time.monotonic()
    feeder.start()
    try:
        while (t := time.monotonic() - t0) < seconds:
            if switch_at is not None and t >= switch_at and phase["now"] != "gil":
                phase["now"] = "gil"
            s = rt.statistics()
            samples.append((t, s.tasks_completed, s.pool_size))
            cursor = collect()
            stop.wait(SAMPLE_S)
    finally:
        stop.set()
        feeder.join(10)
        collect()
        rt.shutdown(wait=False)
    return AutoRun(samples, decisions, start_size)


def _pass(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def run(quick: bool) -> tuple[str, list[dict[str, Any]]]:
    _calibrate()
    cpus = os.cpu_count() or 1
    cap = 2 * cpus + 2
    seconds = 8.0 if quick else 12.0
    rows: list[dict[str, Any]] = []
    details: list[str] = []
    for w in WORKLOADS:
        kind = "gil" if w.kind == "phase" else w.kind
        print(f"[autosize] {w.name}: sweep {SWEEP_SIZES} ...", file=sys.stderr, flush=True)
        best_size, best_x, per_size = best_fixed(w, kind, quick)
        print(f"[autosize] {w.name}: best fixed {best_size} at {best_x:.0f}/s; automatic "
              "run ...", file=sys.stderr, flush=True)
        switch = 10.0 if w.kind == "phase" else None
        total = seconds + (10.0 if switch else 0.0)
        ar = auto_run(w, total, switch_at=switch)
        # The best swept size under the same feeder: the throughput to compare with.
        fixed = auto_run(w, STEADY_S + 1.0, size=best_size, kind=kind)
        best_x = fixed.throughput_between(1.0, fixed.end)
        since = switch or 0.0
        conv = ar.converged_at(WITHIN * best_x, since=since)
        steady_x = ar.throughput_between(ar.end - STEADY_S, ar.end)
        steady_sizes = ar.sizes_between(ar.end - STEADY_S, ar.end)
        max_size = max(s for t, _, s in ar.samples
                       if t >= since + (GIL_REACT_S if switch else 0.0))
        row = {
            "workload": w.name, "best_size": best_size, "best_x": best_x,
            "swept_x": per_size[best_size],
            "start": ar.start_size, "converge_s": conv, "steady_x": steady_x,
            "ratio": steady_x / best_x if best_x else math.nan,
            "steady_sizes": steady_sizes, "max_size": max_size,
            "changes": sum(1 for d in ar.decisions if d[1] not in ("on", "keep")),
        }
        fast = conv is not None and conv < T_CONVERGE_S and row["ratio"] >= WITHIN
        row["t_converge"] = fast if w.kind in ("io", "phase") else None
        row["t_gil_cap"] = max_size <= cap if w.kind in ("gil", "mix", "phase") else None
        row["t_oscillation"] = len(steady_sizes) <= 2
        rows.append(row)
        sweep_cells = ", ".join(f"{n}: {x:.0f}" for n, x in per_size.items())
        lines = [f"### {w.name}: {w.description}", "",
                 f"sweep (size: jobs/s): {sweep_cells}", "",
                 "decisions (s after start, action, size, reason):", ""]
        lines += [f"- {t:5.1f} s {a} {n}: {r}" for t, a, n, r in ar.decisions[:40]]
        if len(ar.decisions) > 40:
            lines.append(f"- ... {len(ar.decisions) - 40} more")
        details.append("\n".join(lines))
    headers = ["workload", "best fixed (sweep)", "its sweep jobs/s", "fixed jobs/s (feeder)",
               "auto start",
               "within 10 % after", "auto steady jobs/s", "auto / best",
               "sizes, last 5 s", "max size", "changes", f"< {T_CONVERGE_S:g} s",
               f"<= 2 x {cpus} + 2", "<= 1 step"]
    table = markdown_table(headers, [[
        r["workload"], r["best_size"], fmt(r["swept_x"]), fmt(r["best_x"]), r["start"],
        "never" if r["converge_s"] is None else f"{r['converge_s']:.1f} s",
        fmt(r["steady_x"]), f"{r['ratio']:.2f}", ",".join(map(str, r["steady_sizes"])),
        r["max_size"], r["changes"], _pass(r["t_converge"]), _pass(r["t_gil_cap"]),
        _pass(r["t_oscillation"]),
    ] for r in rows])
    info = machine_info()
    head = (f"# Automatic pool sizing vs the best fixed size\n\n"
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
            f"`python -m benchmarks.autosize{' --quick' if quick else ''}`; "
            + ", ".join(f"{k} {v}" for k, v in info.items())
            + f"; load average {os.getloadavg()[0]:.1f} at the end.\n\n"
            f"For the phase workload, convergence counts from the switch to GIL-bound work at "
            f"10 s, the max size from {GIL_REACT_S:g} s after it (the pool has the I/O "
            f"phase's size when the work changes), and 'best' is the GIL-bound sweep. The "
            f"mix has no convergence target: it is CPU-heavy, so its size is bounded by "
            f"2 x cpus + 2. 'fixed jobs/s' is the best swept size run for {STEADY_S + 1:g} s "
            f"under the same feeder as the automatic run (the first second dropped): the "
            f"throughput the automatic run is compared with (the sweep posts all its jobs "
            f"at once, which a feeder thread cannot match for 1 ms tasks).\n\n")
    return head + table + "\n\n" + "\n\n".join(details) + "\n", rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (about 1.5 minutes)")
    ap.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = ap.parse_args(argv)
    report, _ = run(args.quick)
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
