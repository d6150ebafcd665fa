"""``recommend``: a pool size picked from a ``sweep`` frame, with the reasons in words.

The reasons are the knee of throughput, Little's law, an optional latency target or
arrival rate, and how the choice compares with the docs' rules of thumb
(``os.cpu_count()`` threads for CPU-bound work, 2-4 times that for I/O-bound work).
Works on the frame's records: no pandas import of its own.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..diagnostics import LITTLE_HEADROOM

if TYPE_CHECKING:
    import pandas

KNEE_TOLERANCE = 0.10  # the knee: the smallest size within this fraction of the best throughput
GIL_PARALLELISM = 1.5  # effective parallelism below this: only ~1 thread works at a time
IO_FACTOR = 1.25  # effective parallelism above cpu_count * this: the threads mostly wait
WAITING_CPU_SHARE = 0.15  # CPU time / thread time below this: the threads mostly wait

WORKLOADS = ("cpu-bound", "mixed", "io-bound")


@dataclass(frozen=True)
class Recommendation:
    """A pool size and the reasons for it, as ``recommend`` found them.

    ``workload`` is what the measurements look like (one of ``WORKLOADS``);
    ``rule_of_thumb`` is the docs' range of sizes for that kind of work on this machine,
    ``(low, high)``; ``busy_threads`` is Little's law's estimate of the threads doing
    useful work at the best measured throughput (None without ``work_per_job_s``).
    """

    size: int
    reasons: tuple[str, ...]
    workload: str
    rule_of_thumb: tuple[int, int]
    knee_size: int
    latency_size: int | None
    busy_threads: float | None
    cpu_count: int

    def __str__(self) -> str:
        head = f"Recommended pool size: {self.size} ({self.workload} work on {self.cpu_count} CPUs)"
        return "\n".join([head] + [f"- {r}" for r in self.reasons])


def _number(x: Any) -> bool:
    """A real number, not None or NaN (pandas fills missing values with NaN)."""
    return isinstance(x, (int, float)) and not math.isnan(x)


def _threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def _rows(df: Any) -> list[dict[str, Any]]:
    required = ("size", "throughput", "p95_latency_s")
    columns = list(getattr(df, "columns", ()))
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(
            f"recommend() needs a frame from sweep() with columns {', '.join(required)}; "
            f"missing: {', '.join(missing)}"
        )
    rows = [dict(r) for r in df.to_dict("records")]
    rows = [r for r in rows if _number(r["throughput"])]
    if not rows:
        raise ValueError("recommend() got an empty sweep frame: no size was measured")
    rows.sort(key=lambda r: r["size"])
    for r in rows:
        r["size"] = int(r["size"])
        p95 = r.get("p95_latency_s")
        r["p95_latency_s"] = float(p95) if _number(p95) else None
    return rows


def _knee_reason(rows: list[dict[str, Any]], knee: dict[str, Any], best: dict[str, Any],
                 tolerance: float) -> str:
    largest = rows[-1]
    if len(rows) == 1:
        return (f"Only one size was measured ({knee['size']}: {knee['throughput']:.1f} "
                "jobs/s); sweep several to find the knee.")
    if knee is largest and largest["throughput"] > (1 + tolerance) * rows[-2]["throughput"]:
        return (
            f"Throughput was still rising at the largest size tried ({largest['size']}: "
            f"{largest['throughput']:.1f} jobs/s, up from {rows[-2]['throughput']:.1f} at "
            f"{rows[-2]['size']}); sweep larger sizes to find where it levels off."
        )
    if knee is best:
        return (f"Throughput peaks at {_threads(knee['size'])} ({best['throughput']:.1f} "
                "jobs/s); larger pools measured no better.")
    return (
        f"Throughput levels off at {_threads(knee['size'])}: {knee['throughput']:.1f} jobs/s, "
        f"within {tolerance:.0%} of the best measured ({best['throughput']:.1f} jobs/s at "
        f"{best['size']}); more threads than that buy almost nothing."
    )


def _classify(share: float | None, parallelism: float, cpus: int) -> str:
    """One of WORKLOADS, from the CPU share of thread time and the useful parallelism."""
    if share is not None and share < WAITING_CPU_SHARE:
        return "io-bound"
    if parallelism < GIL_PARALLELISM:
        return "cpu-bound"
    if share is None and parallelism > cpus * IO_FACTOR:
        return "io-bound"
    return "mixed"



def recommend(
    df: pandas.DataFrame,
    latency_target_s: float | None = None,
    *,
    arrival_rate: float | None = None,
    tolerance: float = KNEE_TOLERANCE,
    cpu_count: int | None = None,
) -> Recommendation:
    """Pick a pool size from a ``sweep`` frame, and say why.

    The choice is the knee of throughput: the smallest size whose throughput is within
    ``tolerance`` (10%) of the best measured, since threads past it cost memory and
    contention and buy almost nothing. For CPU-bound work, no larger than Little's law says
    the best throughput kept busy (x 1.2 headroom): threads sharing one GIL cannot do more
    at once, so a knee above that is noise. If a p95 latency target is given and that
    misses it, the smallest size that meets it. With an arrival rate (``arrival_rate``,
    or the sweep's own ``rate``), Little's law gives the threads the load keeps busy
    (rate x thread time per job), and the choice is at least the smallest measured size
    that kept up. The reasons also compare the result with the docs' rules of thumb:
    ``os.cpu_count()`` threads for CPU-bound work, 2-4 times that for I/O-bound work.

    The kind of work is read from the measurements. The CPU time per job (``cpu_per_job_s``)
    against the thread time per job (``work_per_job_s``) at the smallest size says whether
    the threads compute or wait (below 15% of the time on the CPU: I/O-bound). Little's law
    at the best throughput, with the thread time per job measured at the smallest size
    (least contended), says how many threads did useful work at once: about one, for work
    that computes, means pure-Python CPU work serialised by the GIL (CPU-bound); work that
    both computes and runs in parallel is mixed. Without CPU times, more threads at work
    than CPUs means I/O-bound.

    Args:
        df: the frame ``sweep`` returned (columns ``size``, ``throughput``,
            ``p95_latency_s``; ``work_per_job_s`` for Little's law).
        latency_target_s: a p95 job latency to meet, in seconds.
        arrival_rate: jobs per second the pool must keep up with (default: the sweep's
            ``rate``, if it paced its posts).
        tolerance: how close to the best throughput the knee must be (0.1 = 10%).
        cpu_count: CPUs to compare with (default: the sweep's ``os.cpu_count()``).

    Raises:
        ValueError: missing columns, an empty frame, or a bad target, rate or tolerance.
    """
    rows = _rows(df)
    if latency_target_s is not None and not latency_target_s > 0:
        raise ValueError(f"latency_target_s must be > 0 seconds, got {latency_target_s!r}")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    attrs = getattr(df, "attrs", {}) or {}
    if arrival_rate is None:
        arrival_rate = attrs.get("rate")
    if arrival_rate is not None and not arrival_rate > 0:
        raise ValueError(f"arrival_rate must be > 0 jobs/s, got {arrival_rate!r}")
    cpus = int(cpu_count or attrs.get("cpu_count") or os.cpu_count() or 1)
    reasons: list[str] = []

    best = max(rows, key=lambda r: r["throughput"])
    x_max = best["throughput"]
    knee = next(r for r in rows if r["throughput"] >= (1 - tolerance) * x_max)
    reasons.append(_knee_reason(rows, knee, best, tolerance))
    choice = knee

    law = _littles_law(rows, x_max)
    workload = _classify(law.share, law.parallelism, cpus)
    if law.busy_threads is not None:
        reasons.append(_little_reason(law, x_max))
        if workload == "cpu-bound":
            choice = _cover_cpu_bound(rows, knee, law.busy_threads, reasons)
    latency_row = None
    if latency_target_s is not None:
        choice, latency_row = _meet_latency(rows, choice, latency_target_s, reasons)
    if arrival_rate is not None and law.s1 is not None:
        choice = _keep_up(rows, choice, arrival_rate, law.s1, tolerance, reasons)
    rule = _rule_of_thumb(workload, choice["size"], law, cpus, reasons)
    return Recommendation(
        size=choice["size"],
        reasons=tuple(reasons),
        workload=workload,
        rule_of_thumb=rule,
        knee_size=knee["size"],
        latency_size=None if latency_row is None else latency_row["size"],
        busy_threads=law.busy_threads,
        cpu_count=cpus,
    )


class _Law(NamedTuple):
    """Little's law at the best throughput, with the thread time of the smallest size."""

    first: dict[str, Any]  # the row of the smallest size (the least contended)
    s1: float | None  # thread-seconds per job there (None unless every row has it)
    busy_threads: float | None  # threads doing useful work at once at the best throughput
    share: float | None  # CPU seconds per thread-second of logic, at the smallest size
    parallelism: float  # busy_threads, or the speed-up over the smallest size without it


def _littles_law(rows: list[dict[str, Any]], x_max: float) -> _Law:
    """What the sweep says about the work: threads busy, CPU share, useful parallelism."""
    # Little's law: threads busy = throughput x thread time per job, with the thread time
    # measured at the smallest size (the least contended).
    first = rows[0]
    s1 = first.get("work_per_job_s") if all(_number(r.get("work_per_job_s")) for r in rows) \
        else None
    busy_threads = x_max * s1 if s1 is not None else None
    share = None
    if s1 and _number(first.get("cpu_per_job_s")):
        share = float(first["cpu_per_job_s"]) / s1
    parallelism = busy_threads
    if parallelism is None:
        parallelism = x_max / first["throughput"] * first["size"] \
            if first["throughput"] > 0 else float(first["size"])
    return _Law(first, s1, busy_threads, share, parallelism)


def _little_reason(law: _Law, x_max: float) -> str:
    """Little's law in words (only when the frame has the thread time per job)."""
    assert law.s1 is not None and law.busy_threads is not None
    return (
        f"Little's law: at the best throughput, {x_max:.1f} jobs/s x {law.s1 * 1e3:.1f} ms of "
        f"thread time per job (measured at {_threads(law.first['size'])}) = "
        f"{law.busy_threads:.1f} threads doing useful work at once."
    )


def _cover_cpu_bound(
    rows: list[dict[str, Any]], knee: dict[str, Any], busy_threads: float, reasons: list[str],
) -> dict[str, Any]:
    """The smallest size covering Little's law's busy threads, if below the knee; else the knee.

    Threads that share one GIL cannot do more work at once than Little's law says was
    done: a knee above that is timing noise or overhead, not capacity.
    """
    enough = max(1, round(busy_threads * LITTLE_HEADROOM))
    covering = next((r for r in rows if r["size"] >= enough), rows[-1])
    if covering["size"] >= knee["size"]:
        return knee
    reasons.append(
        f"So {_threads(covering['size'])} cover that (with "
        f"{LITTLE_HEADROOM - 1:.0%} headroom); the "
        f"{knee['throughput'] / covering['throughput'] - 1:.0%} more throughput "
        f"measured at {knee['size']} cannot have come from more work running at "
        "once (timing noise or overhead), so the smaller pool is recommended."
    )
    return covering


def _meet_latency(
    rows: list[dict[str, Any]], choice: dict[str, Any], target: float, reasons: list[str],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The choice raised to the smallest size meeting the p95 target, and that size's row."""
    meets = [r for r in rows if r["p95_latency_s"] is not None
             and r["p95_latency_s"] <= target]
    if meets:
        latency_row = meets[0]
        if latency_row["size"] > choice["size"]:
            reasons.append(
                f"The p95 latency target of {target:.3g} s is first met at "
                f"{_threads(latency_row['size'])} (p95 "
                f"{latency_row['p95_latency_s']:.3g} s); at {choice['size']} it was "
                f"{choice['p95_latency_s']:.3g} s."
            )
            return latency_row, latency_row
        reasons.append(
            f"The p95 latency target of {target:.3g} s is met from "
            f"{_threads(latency_row['size'])} on; at {choice['size']} p95 is "
            f"{choice['p95_latency_s']:.3g} s."
        )
        return choice, latency_row
    lowest = min((r for r in rows if r["p95_latency_s"] is not None),
                 key=lambda r: r["p95_latency_s"], default=None)
    if lowest is not None:
        reasons.append(
            f"No size tried meets the p95 latency target of {target:.3g} s; "
            f"the lowest p95 was {lowest['p95_latency_s']:.3g} s at "
            f"{_threads(lowest['size'])}. Fewer jobs in flight (backpressure) or less "
            "work per job would help more than threads past the knee."
        )
    return choice, None


def _keep_up(
    rows: list[dict[str, Any]], choice: dict[str, Any], arrival_rate: float, s1: float,
    tolerance: float, reasons: list[str],
) -> dict[str, Any]:
    """The choice raised to the smallest size whose throughput kept up with the arrivals."""
    keeps_up = [r for r in rows if r["throughput"] >= arrival_rate * (1 - tolerance)]
    text = (f"Jobs arrive at {arrival_rate:g}/s, so by Little's law about "
            f"{arrival_rate * s1:.1f} threads must be busy on average to keep up")
    if keeps_up:
        choice = max(choice, keeps_up[0], key=lambda r: r["size"])
        text += f"; the smallest size that kept up was {keeps_up[0]['size']}."
    else:
        text += "; no size tried kept up, so the queue grows without bound."
    reasons.append(text)
    return choice


def _rule_of_thumb(
    workload: str, size: int, law: _Law, cpus: int, reasons: list[str],
) -> tuple[int, int]:
    """The docs' range of sizes for this kind of work; the reasons compare ``size`` with it."""
    share, first, s1 = law.share, law.first, law.s1
    if share is not None:
        assert s1 is not None
        reasons.append(
            f"Each job used {first['cpu_per_job_s'] * 1e3:.1f} ms of CPU for "
            f"{s1 * 1e3:.1f} ms of thread time ({share:.0%}) at {_threads(first['size'])}: "
            f"the threads {'mostly wait' if share < WAITING_CPU_SHARE else 'do compute'}."
        )
    if workload == "cpu-bound":
        rule = (cpus, cpus)
        reasons.append(
            f"That is about one thread's worth of work at a time whatever the pool size: the "
            f"logic is CPU-bound Python code holding the GIL. The docs' rule of thumb for "
            f"CPU-bound work is os.cpu_count() = {cpus} threads; it assumes code that runs "
            "in parallel (C extensions releasing the GIL, or a process pool), which this "
            "code does not."
        )
    elif workload == "mixed":
        rule = (cpus, cpus)
        reasons.append(
            f"The work both computes and waits (mixed). The docs' rule of thumb for mixed "
            f"work is to start at os.cpu_count() = {cpus} threads and tune; measured, "
            f"{size}."
        )
    else:
        rule = (2 * cpus, 4 * cpus)
        why = ("the threads mostly wait" if share is not None else
               f"more threads worked at once than there are CPUs ({cpus}): they mostly wait")
        reasons.append(
            f"So {why} (I/O-bound). The docs' rule of thumb for I/O-bound work is 2-4 x "
            f"os.cpu_count() = {rule[0]}-{rule[1]} threads on this machine."
        )
    lo, hi = rule
    if lo <= size <= hi:
        reasons.append(f"The measured choice, {size}, agrees with the rule of thumb.")
    else:
        side = "below" if size < lo else "above"
        reasons.append(
            f"The measured choice, {size}, is {side} the rule of thumb "
            f"({lo if lo == hi else f'{lo}-{hi}'}): the measurement on this workload wins "
            "over a rule made for workloads in general."
        )
    return rule
