"""Pool exhaustion: a run queue the pool cannot keep up with (``pool_exhaustion``).

Two shapes, read from the run-queue depth (``routilux.trace.pool_series``, the exact series
the charts draw):

*Growth*: the queue grows by at least *exhaustion_min_growth* = 5 items over a window of
*exhaustion_window_s* = 1.0 s without draining to 0, while arrivals (``task.queued``)
outnumber completions (``task.finished``) in each quarter (``EXHAUSTION_PARTS``) of that
window, and the queue it built makes an arrival wait at least *exhaustion_wait_s* (peak
depth / completion rate). The fix uses Little's law: threads needed = arrival rate x mean
service time (``task.finished`` durations); the pool size it suggests is that times
``LITTLE_HEADROOM`` (at least the pool + 1; none when the pool already has the threads
needed: then they are not delivering). It also names backpressure
(``Runtime(max_queue_size=...)`` with ``post(block=True)``).

*Backlog*, failing that: the queue never empties for *exhaustion_backlog_s* = 3.0 s while
every pool thread is busy (``BACKLOG_SATURATION``, 90% of the time) and its activations
wait at least *exhaustion_wait_s* = 1.0 s (95th percentile): a burst of posts worked off
far slower than it came. The growth rule misses this when the arrivals came in one burst
(``post`` in a loop): the queue grew for a moment only, then the pool needed seconds to
work it off. Time the whole process was stalled is taken off both the stretch and the waits.

A burst that drains sooner or moves faster, and a queue held steady by backpressure, are
not reported.
"""

from __future__ import annotations

import bisect
import math
import statistics as _stats
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..trace import PoolCounter, PoolSample, TraceEvent
from ._finding import DEFAULT_THRESHOLDS, Finding, fmt_s, seqs
from ._stalls import overlap_s, process_stalls
from ._tasks import POOL_LANES, pool_size, tasks

__all__ = ["BACKLOG_SATURATION", "EXHAUSTION_PARTS", "LITTLE_HEADROOM", "detect_pool_exhaustion"]

EXHAUSTION_PARTS = 4  # arrivals must beat completions in each of this many parts of a window
LITTLE_HEADROOM = 1.2  # pool size recommended = ceil(arrival rate x service time x this)
BACKLOG_SATURATION = 0.9  # share of a backlog's time every pool thread must be busy


def detect_pool_exhaustion(
    events: Sequence[TraceEvent],
    statistics: Any = None,
    *,
    exhaustion_window_s: float = DEFAULT_THRESHOLDS["exhaustion_window_s"],
    exhaustion_min_growth: int = DEFAULT_THRESHOLDS["exhaustion_min_growth"],  # type: ignore[assignment]
    exhaustion_backlog_s: float = DEFAULT_THRESHOLDS["exhaustion_backlog_s"],
    exhaustion_wait_s: float = DEFAULT_THRESHOLDS["exhaustion_wait_s"],
) -> list[Finding]:
    """A run queue that keeps growing because activations arrive faster than they finish,
    or a backlog a saturated pool takes seconds to drain while activations wait.

    Args:
        events: trace events in seq order.
        statistics: a ``RuntimeStatistics`` (for the pool size when no sample has it).
        exhaustion_window_s / exhaustion_min_growth / exhaustion_backlog_s /
            exhaustion_wait_s: see the module docstring.
    """
    # The run-queue depth at each change: the exact series the charts draw (issue 12).
    series = PoolCounter().feed(events)
    if len(series) < 2:
        return []
    rising = _rising_windows(events, series, exhaustion_window_s, exhaustion_min_growth)
    if not rising:
        return _backlog(events, statistics, series, exhaustion_backlog_s, exhaustion_wait_s)
    load = _measure_growth(events, statistics, series, rising)
    if load.mu > 0 and load.peak / load.mu < exhaustion_wait_s:
        # It fell behind, but the queue it built costs an arrival less than
        # exhaustion_wait_s: on a loaded machine a pool sized by Little's law does that.
        return _backlog(events, statistics, series, exhaustion_backlog_s, exhaustion_wait_s)
    return [_growth_finding(events, statistics, load, exhaustion_window_s)]


def _count(stamps: list[int], a: int, b: int) -> int:
    """How many of the sorted ``stamps`` fall in (a, b]."""
    return bisect.bisect_right(stamps, b) - bisect.bisect_right(stamps, a)


def _rising_windows(events: Sequence[TraceEvent], series: Sequence[PoolSample],
                    window_s: float, min_growth: int) -> list[tuple[int, int]]:
    """Windows [i, j] of ``series`` where the queue grew, never drained, and fell behind all
    along (arrivals outnumber completions in every part of the window)."""
    n = len(series)
    ts = [p.ts_ns for p in series]
    depth = [p.queued for p in series]
    window_ns = int(window_s * 1e9)
    part_ns = window_ns // EXHAUSTION_PARTS
    arr_ts = sorted(e.ts_ns for e in events if e.kind == "task.queued")
    fin_ts = sorted(e.ts_ns for e in events if e.kind == "task.finished")

    def lagging(t: int) -> bool:
        for q in range(EXHAUSTION_PARTS):
            a, b = t + q * part_ns, t + (q + 1) * part_ns
            if _count(arr_ts, a, b) <= _count(fin_ts, a, b):
                return False
        return True

    rising: list[tuple[int, int]] = []
    zeros = [k for k in range(n) if depth[k] == 0]
    j = 0
    for i in range(n):
        if depth[i] == 0:
            continue
        j = max(j, i)
        while j < n and ts[j] < ts[i] + window_ns:
            j += 1
        if j >= n:
            break
        z = bisect.bisect_left(zeros, i)
        if z < len(zeros) and zeros[z] <= j:
            continue  # drained in between
        if depth[j] - depth[i] >= min_growth and lagging(ts[i]):
            rising.append((i, j))
    return rising


class _Growth(NamedTuple):
    """The longest stretch of a growing queue, measured."""

    start_depth: int
    end_depth: int
    peak: int
    t0: int
    t1: int
    dur_s: float
    lam: float  # arrivals per second
    mu: float  # completions per second
    mean_s: float | None  # mean service time
    size: int | None  # pool size
    needed: float | None  # busy threads the load needs (Little's law)
    stretches: int


def _measure_growth(events: Sequence[TraceEvent], statistics: Any,
                    series: Sequence[PoolSample], rising: list[tuple[int, int]]) -> _Growth:
    """Merge overlapping windows; measure the longest stretch."""
    ts = [p.ts_ns for p in series]
    merged: list[list[int]] = []
    for i, j in rising:
        if merged and i <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], j)
        else:
            merged.append([i, j])
    i, j = max(merged, key=lambda m: ts[m[1]] - ts[m[0]])
    dur_s = (ts[j] - ts[i]) / 1e9
    t0, t1 = ts[i], ts[j]
    service = [float(e.value) for e in events if e.kind == "task.finished"
               and t0 <= e.ts_ns <= t1 and isinstance(e.value, (int, float))]
    if not service:
        service = [float(e.value) for e in events if e.kind == "task.finished"
                   and isinstance(e.value, (int, float))]
    mean_s = _stats.fmean(service) if service else None
    arr_ts = sorted(e.ts_ns for e in events if e.kind == "task.queued")
    fin_ts = sorted(e.ts_ns for e in events if e.kind == "task.finished")
    lam = _count(arr_ts, t0, t1) / dur_s
    mu = _count(fin_ts, t0, t1) / dur_s
    size = series[j].size or pool_size(events, statistics, series)
    needed = lam * mean_s if mean_s is not None else None
    peak = max(p.queued for p in series[i:j + 1])
    return _Growth(series[i].queued, series[j].queued, peak, t0, t1, dur_s, lam, mu, mean_s,
                   size, needed, len(merged))


def _growth_finding(events: Sequence[TraceEvent], statistics: Any, g: _Growth,
                    window_s: float) -> Finding:
    """The finding for a growing queue, with the pool size Little's law suggests."""
    size, needed, lam, mean_s = g.size, g.needed, g.lam, g.mean_s
    rec = None
    if needed is not None and (size is None or needed > size):
        rec = max(math.ceil(needed * LITTLE_HEADROOM), (size or 0) + 1)
    title = (
        f"Pool exhausted: the run queue grew from {g.start_depth} to {g.end_depth} over "
        f"{g.dur_s:.1f} s (arrivals {lam:.0f}/s, completions {g.mu:.0f}/s"
        + (f", pool of {size}" if size else "") + ")"
    )
    if needed is not None and mean_s is not None:
        little = (f"By Little's law the load needs about {lam:.0f}/s x {mean_s * 1000:.0f} ms "
                  f"= {needed:.1f} busy threads")
        little += f" and the pool has {size}. " if size else ". "
    else:
        little = ""
    if rec:
        sizing = (f"If the logic waits on I/O, size the pool for the load: "
                  f"Runtime(thread_pool_size={rec}) or runtime.resize({rec}). ")
    elif needed is not None and size:
        sizing = ("The pool should keep up in theory, so its threads are not delivering: "
                  "CPU-bound logic sharing the GIL, or threads waiting on each other (locks), "
                  "and a larger pool will not help. ")
    else:
        sizing = "If the logic waits on I/O, enlarge the pool (runtime.resize(n)). "
    fix = (
        little
        + sizing
        + "If it is CPU-bound, more threads will not help (the GIL); slow the producers "
          "instead. Either way add backpressure: Runtime(max_queue_size=...) makes "
          "post(block=True) wait for room (or post(block=False) raise QueueFullError) "
          "instead of letting the queue and its memory grow without bound."
    )
    limit = getattr(statistics, "max_queue_size", None)
    if isinstance(limit, int) and g.peak >= limit:
        fix += (f" Backpressure is already on (max_queue_size={limit}) and the queue reached "
                "it, so producers now wait: what remains is the pool size.")
    severe = g.peak >= 10 * (size or 1) or g.dur_s >= 3 * window_s
    support = [e for e in events if e.kind == "task.queued" and g.t0 <= e.ts_ns <= g.t1]
    return Finding(
        "pool_exhaustion", "high" if severe else "medium", title,
        {"start_depth": g.start_depth, "end_depth": g.end_depth, "peak_depth": g.peak,
         "duration_s": round(g.dur_s, 3), "arrival_rate": round(lam, 2),
         "completion_rate": round(g.mu, 2),
         "mean_service_s": None if mean_s is None else round(mean_s, 6),
         "pool_size": size, "needed_threads": None if needed is None else round(needed, 2),
         "recommended_pool_size": rec, "stretches": g.stretches},
        fix, seqs(support), key="pool_exhaustion",
    )


def _saturated_stretch(series: Sequence[PoolSample],
                       backlog_s: float) -> tuple[int, int, float] | None:
    """The longest stretch (i, j, seconds) of a never-empty queue at least ``backlog_s``
    long during which every pool thread was busy ``BACKLOG_SATURATION`` of the time."""
    stretches: list[tuple[int, int]] = []  # samples i..j of one never-empty queue
    i = None
    for k, p in enumerate(series):
        if p.queued > 0 and i is None:
            i = k
        elif p.queued == 0 and i is not None:
            stretches.append((i, k))
            i = None
    if i is not None:
        stretches.append((i, len(series) - 1))
    best = None
    for i, j in stretches:
        t0, t1 = series[i].ts_ns, series[j].ts_ns
        dur_s = (t1 - t0) / 1e9
        if dur_s < backlog_s:
            continue
        full_ns = sum(series[k + 1].ts_ns - series[k].ts_ns for k in range(i, j)
                      if series[k].size and series[k].busy >= series[k].size)
        if full_ns < BACKLOG_SATURATION * (t1 - t0):
            continue  # threads sat idle with work queued: not a pool too small for the load
        if best is None or dur_s > best[2]:
            best = (i, j, dur_s)
    return best


def _backlog(events: Sequence[TraceEvent], statistics: Any, series: Sequence[PoolSample],
             backlog_s: float, wait_s: float) -> list[Finding]:
    """A burst the pool drains for seconds: the queue never empties, every thread stays busy,
    and activations wait far longer than they run (a job's latency is mostly queue wait)."""
    best = _saturated_stretch(series, backlog_s)
    if best is None:
        return []
    i, j, dur_s = best
    t0, t1 = series[i].ts_ns, series[j].ts_ns
    spans = [s for s in tasks(events, t1, POOL_LANES) if t0 <= s.start_ns <= t1]
    # Time the whole process was stalled is no one's wait for a thread (see blocking).
    stalls = process_stalls(events)
    dur_s -= overlap_s(stalls, t0, t1)
    if dur_s < backlog_s:
        return []
    waits = sorted(
        max(0.0, w - overlap_s(stalls, s.start_ns - int(w * 1e9), s.start_ns))
        for s in spans if s.evs and s.evs[0].kind == "task.started"
        and isinstance(s.evs[0].value, (int, float)) for w in (float(s.evs[0].value),))
    if not waits:
        return []
    p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
    if p95 < wait_s:
        return []  # a backlog, but one that moves quickly (bounded by backpressure, say)
    service = [s.dur_s for s in spans if s.finished]
    mean_s = _stats.fmean(service) if service else None
    size = series[i].size or pool_size(events, statistics, series)
    peak = max(p.queued for p in series[i:j + 1])
    arrivals = sum(1 for e in events if e.kind == "task.queued" and t0 <= e.ts_ns <= t1)
    lam, mu = arrivals / dur_s, len(service) / dur_s
    rec = max(size + 1, math.ceil(size * p95 / wait_s)) if size else None
    work = f" for {fmt_s(mean_s)} of work each" if mean_s is not None else ""
    title = (f"Pool exhausted: all {size} threads stayed busy for {dur_s:.1f} s while up to "
             f"{peak} activations waited in the run queue; they waited {fmt_s(p95)} "
             f"(95th percentile){work}")
    fix = (
        f"Jobs spent their latency waiting for a thread, not running: the pool of {size} "
        "works off a burst of posts far slower than it arrived. If the logic waits on I/O, "
        "a larger pool drains it proportionally faster: "
        + (f"Runtime(thread_pool_size={rec}) or runtime.resize({rec}) brings that wait "
           f"near {wait_s:g} s. " if rec else "enlarge it (runtime.resize(n)). ")
        + "If it is CPU-bound, more threads will not help (the GIL); then bound the queue: "
          "Runtime(max_queue_size=...) makes post(block=True) wait for room, so producers "
          "slow down instead of jobs queueing for seconds."
    )
    support = [e for e in events if e.kind == "task.queued" and t0 <= e.ts_ns <= t1]
    return [Finding(
        "pool_exhaustion", "high" if p95 >= 3 * wait_s else "medium", title,
        {"start_depth": series[i].queued, "end_depth": series[j].queued, "peak_depth": peak,
         "duration_s": round(dur_s, 3), "arrival_rate": round(lam, 2),
         "completion_rate": round(mu, 2),
         "mean_service_s": None if mean_s is None else round(mean_s, 6),
         "p95_wait_s": round(p95, 4), "pool_size": size, "needed_threads": None,
         "recommended_pool_size": rec, "stretches": 1, "shape": "backlog"},
        fix, seqs(support), key="pool_exhaustion",
    )]
