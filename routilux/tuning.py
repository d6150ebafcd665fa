"""Choosing a pool size: measure it, explain a choice, predict it from one recording.

- ``sweep`` runs one workload at several pool sizes (a fresh traced ``Runtime`` per size)
  and returns a pandas DataFrame of throughput, job latency percentiles, queue wait and
  pool utilisation per size, all read from the trace.
- ``recommend`` picks a size from such a frame and says why in words: where throughput
  stops growing (the knee), a latency target, Little's law, and how the result compares
  with the docs' rules of thumb (``os.cpu_count()`` threads for CPU-bound work, 2-4 times
  that for I/O-bound work).
- ``simulate`` replays a recorded trace with another number of threads by discrete-event
  simulation, without rerunning the workload.
- ``utilisation_curve`` is the pool-level analogue of Go's minimum mutator utilisation:
  for each window length, the worst fraction of the pool's capacity that was doing work.

Design of the replay (``simulate``), read before changing it:

- What is replayed. Each task (one ``task.started``/``task.finished`` pair on one thread)
  keeps its recorded run time. A task is either a *root*, released at the time it was
  recorded entering the run queue (for an entry task, microseconds after its
  ``job.posted``), or the *child* of the task whose logic scheduled it: the task that was
  running on the thread that recorded its ``task.queued`` (``emit`` delivers downstream in
  the emitting thread). A child is released when its parent finishes in the replay. That
  assumes ``emit`` comes at the end of the logic, which is the common case; a logic that
  emits early and then keeps working releases its children earlier in reality than in
  the replay.
- How it is replayed. One FIFO run queue and N identical servers (threads), as in the
  runtime's own pool. Events at the same instant: finishes first (they free a thread and
  release children), then arrivals, then idle threads take tasks in queue order.
- What it cannot see. Run times are taken as fixed. They are not fixed when threads
  compete for something the trace does not show: the GIL for pure-Python CPU-bound
  logic, a CPU core, a lock, a connection pool. More threads then stretch each task
  rather than finishing more of them, and the replay is too optimistic. ``simulate``
  looks for that in the recording (run times that grow with the number of tasks running
  at once) and says so in ``warnings``; a caller who knows the logic is CPU-bound says
  ``cpu_bound=True``. Arrivals are replayed at their recorded times, so a recording made
  with backpressure (``max_queue_size``), where posts waited for room, replays that wait.

Only ``sweep`` and ``utilisation_curve`` need pandas (and numpy), imported when called;
``simulate`` and ``recommend`` work on plain Python data (``recommend`` reads the frame
``sweep`` returns). ``sweep``'s default terminal progress bar uses tqdm when it is
installed, imported when a sweep starts; without it, plain lines.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import statistics as _stats
import sys
import threading
import time
import warnings
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .diagnostics import LITTLE_HEADROOM
from .trace import PoolCounter, PoolSample, TraceEvent, Tracer, _source_events, _task_spans

if TYPE_CHECKING:
    import pandas

    from ._engine._runtime import Runtime

__all__ = [
    "SWEEP_COLUMNS",
    "WORKLOADS",
    "Recommendation",
    "Simulation",
    "SweepProgress",
    "recommend",
    "simulate",
    "sweep",
    "utilisation_curve",
]

SWEEP_COLUMNS = (
    "size", "jobs", "makespan_s", "throughput", "p50_latency_s", "p95_latency_s",
    "p99_latency_s", "mean_queue_wait_s", "utilisation", "work_per_job_s", "cpu_per_job_s",
    "failed",
)  # fmt: skip
"""The columns of the frame ``sweep`` returns, in order (see ``sweep``)."""

PROGRESS_INTERVAL_S = 0.1  # seconds between progress reports while a size runs
SWEEP_TIMEOUT_S = 120.0  # seconds one size may take before sweep gives up
KNEE_TOLERANCE = 0.10  # the knee: the smallest size within this fraction of the best throughput
SCALING_SLOPE = 0.5  # run time ~ concurrency ** slope; at or above it, the work looks CPU-bound
MIN_SPREAD = 1.5  # concurrency must vary this much (max/min) to judge the slope
MIN_TASKS_FOR_SLOPE = 4
GIL_PARALLELISM = 1.5  # effective parallelism below this: only ~1 thread works at a time
IO_FACTOR = 1.25  # effective parallelism above cpu_count * this: the threads mostly wait
WAITING_CPU_SHARE = 0.15  # CPU time / thread time below this: the threads mostly wait


def _require_pandas(what: str) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            f"routilux.tuning.{what} needs pandas, which is not installed; "
            "install it with: pip install routilux[jupyter]"
        ) from exc
    return pd


# ---------------------------------------------------------------------------------------
# Reading a trace
# ---------------------------------------------------------------------------------------
def _events(trace: Any, what: str) -> tuple[list[TraceEvent], int]:
    """The events of a Tracer, a saved trace file, a traced Runtime or a list; and drops."""
    if isinstance(trace, (str, os.PathLike)):
        trace = Tracer.load(trace)
    events = _source_events(trace, what)  # the one reader every trace consumer shares
    tracer = trace if isinstance(trace, Tracer) else getattr(trace, "tracer", None)
    return events, tracer.dropped if isinstance(tracer, Tracer) else 0


@dataclass
class _Task:
    """One recorded task, rebuilt from its task.queued / task.started / task.finished."""

    job: str | None
    routine: str | None
    start_ns: int
    wait_s: float
    end_ns: int | None = None
    run_s: float | None = None
    parent: int | None = None  # index of the task whose logic scheduled this one
    queued_seq: int = 0  # seq of the matching task.queued (orders siblings)
    children: list[int] = field(default_factory=list)

    @property
    def release_ns(self) -> int:
        """When it entered the run queue (the runtime measures the wait from there)."""
        return self.start_ns - round(self.wait_s * 1e9)


@dataclass
class _Recording:
    tasks: list[_Task]
    posted_ns: dict[str, int]  # job id -> job.posted time
    first_ns: int | None  # first job.posted or task release
    last_ns: int | None  # last task end
    unfinished: int
    sizes: list[tuple[int, int]]  # (ts_ns, pool size) changes after initial_size
    initial_size: int | None
    busy: _Busy  # tasks running over time
    series: list[PoolSample]  # routilux.trace.pool_series: busy pool threads, queue, size


def _rebuild(events: Sequence[TraceEvent]) -> _Recording:
    """Tasks with their causal parents, job post times and the pool size over time.

    Tasks come from ``routilux.trace.task_spans``, which pairs starts and finishes per
    lane *and* activation: two coroutines interleaved on the event loop's lane each keep
    their own run time (pairing by thread alone gave one of them the other's end).
    """
    spans = _task_spans(events)
    tasks: list[_Task] = []
    by_start: dict[int, int] = {}  # task.started seq -> task index
    by_end: dict[int, int] = {}  # task.finished seq -> task index
    for span in spans:
        index = len(tasks)
        tasks.append(_Task(span.job_id, span.routine, span.start_ns, span.wait_s or 0.0,
                           span.end_ns, span.run_s))
        if span.start_seq:
            by_start[span.start_seq] = index
        if span.end_seq:
            by_end[span.end_seq] = index
    running: dict[tuple[int, str], list[int]] = defaultdict(list)  # lane -> open tasks
    queued: dict[tuple[Any, ...], deque[tuple[int | None, int]]] = defaultdict(deque)
    started: dict[tuple[Any, ...], deque[int]] = defaultdict(deque)
    posted: dict[str, int] = {}
    last_ts = 0

    def link(index: int, parent: int | None, seq: int) -> None:
        task = tasks[index]
        task.parent = parent
        task.queued_seq = seq

    for e in events:
        kind = e.kind
        last_ts = max(last_ts, e.ts_ns)
        if kind == "task.queued":
            key = (e.job_id, e.routine, e.name)
            lane = running.get((e.thread, e.thread_name))
            parent = lane[-1] if lane else None  # the newest task open on that lane
            # The runtime records task.queued after handing the task to the pool, so a
            # fast pool thread may already have recorded its task.started.
            if started[key]:
                link(started[key].popleft(), parent, e.seq)
            else:
                queued[key].append((parent, e.seq))
        elif kind == "task.started":
            index = by_start.get(e.seq)
            if index is None:
                continue
            key = (e.job_id, e.routine, e.name)
            running[(e.thread, e.thread_name)].append(index)
            if queued[key]:
                link(index, *queued[key].popleft())
            else:
                started[key].append(index)
        elif kind == "task.finished":
            index = by_end.get(e.seq)
            lane = running.get((e.thread, e.thread_name))
            if index is not None and lane and index in lane:
                lane.remove(index)
        elif kind == "job.posted" and e.job_id is not None:
            posted.setdefault(e.job_id, e.ts_ns)
    series = PoolCounter().feed(events)
    initial = next((p.size for p in series if p.size), None)
    sizes: list[tuple[int, int]] = []
    for sample in series:
        if sample.size and (sizes[-1][1] if sizes else initial) != sample.size:
            sizes.append((sample.ts_ns, sample.size))
    unfinished = sum(1 for span in spans if not span.finished)
    for task, span in zip(tasks, spans, strict=True):
        if not span.finished:  # still running when the trace ends
            task.end_ns = max(last_ts, task.start_ns)
            task.run_s = (task.end_ns - task.start_ns) / 1e9
    for index, task in enumerate(tasks):
        if task.parent is not None:
            tasks[task.parent].children.append(index)
    for task in tasks:
        task.children.sort(key=lambda i: tasks[i].queued_seq)
    firsts = [t.release_ns for t in tasks] + list(posted.values())
    ends = [t.end_ns for t in tasks if t.end_ns is not None]
    return _Recording(
        tasks, posted, min(firsts) if firsts else None, max(ends) if ends else None,
        unfinished, sizes, initial, _Busy((t.start_ns, t.end_ns or t.start_ns) for t in tasks),
        series,
    )


def _percentile(sorted_xs: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), p in [0, 100]."""
    if not sorted_xs:
        return None
    pos = (len(sorted_xs) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


class _Busy:
    """The number of tasks running as a step function of time, with its running integral."""

    def __init__(self, intervals: Iterable[tuple[int, int]]) -> None:
        deltas: dict[int, int] = defaultdict(int)
        for start, end in intervals:
            if end > start:
                deltas[start] += 1
                deltas[end] -= 1
        self.times = sorted(deltas)
        self.levels: list[int] = []  # busy on [times[k], times[k + 1])
        self.integral: list[float] = []  # busy-seconds before times[k]
        level = 0
        area = 0.0
        prev = self.times[0] if self.times else 0
        for t in self.times:
            area += level * (t - prev) / 1e9
            level += deltas[t]
            self.integral.append(area)
            self.levels.append(level)
            prev = t

    def area(self, t: int) -> float:
        """Busy thread-seconds from the first start up to ``t``."""
        k = bisect_right(self.times, t) - 1
        if k < 0:
            return 0.0
        return self.integral[k] + self.levels[k] * (t - self.times[k]) / 1e9

    def mean_between(self, start: int, end: int) -> float:
        """Mean number of tasks running over ``[start, end)`` (``end > start``)."""
        return (self.area(end) - self.area(start)) / ((end - start) / 1e9)

    def peak(self) -> int:
        return max(self.levels, default=0)


# ---------------------------------------------------------------------------------------
# simulate
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Simulation:
    """What ``simulate`` predicts for one pool size. Times are seconds from the first post.

    ``queue_depth`` is the run queue over time as ``(t_s, depth)`` pairs, one at each
    change; ``warnings`` says when the prediction should not be trusted (and why).
    """

    pool_size: int
    jobs: int
    tasks: int
    makespan_s: float
    throughput: float
    """Jobs per second: jobs with at least one task / makespan."""
    p50_latency_s: float | None
    p95_latency_s: float | None
    p99_latency_s: float | None
    mean_queue_wait_s: float
    utilisation: float
    """Busy thread-seconds / (pool size x makespan)."""
    queue_depth: tuple[tuple[float, int], ...]
    warnings: tuple[str, ...]
    recorded_pool_size: int | None
    """The pool size of the recording, when the trace says (queue.depth or pool.resize)."""

    def __str__(self) -> str:
        def s(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f} s"

        recorded = (f" recorded at pool {self.recorded_pool_size}"
                    if self.recorded_pool_size else "")
        head = (
            f"Replay of {self.jobs} jobs ({self.tasks} tasks){recorded} with "
            f"{self.pool_size} threads: makespan {self.makespan_s:.3f} s, "
            f"{self.throughput:.1f} jobs/s, latency p50 {s(self.p50_latency_s)} / "
            f"p95 {s(self.p95_latency_s)}, mean queue wait {s(self.mean_queue_wait_s)}, "
            f"utilisation {self.utilisation:.0%}"
        )
        lines = [head] + [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def simulate(trace: Any, pool_size: int, *, cpu_bound: bool | None = None) -> Simulation:
    """Predict how a recorded workload would run with ``pool_size`` threads.

    A discrete-event replay of the trace (see the module docstring): each job's tasks with
    their recorded run times, downstream tasks released when their upstream task finishes
    (assuming ``emit`` at the end of the logic), arrivals at their recorded times, one FIFO
    run queue, ``pool_size`` threads. Nothing is rerun.

    Args:
        trace: a ``Tracer``, the path of a trace saved with ``Tracer.save``, a traced
            ``Runtime``, or a list of ``TraceEvent``.
        pool_size: threads to replay with (an int >= 1).
        cpu_bound: True if the logic is CPU-bound (always warn: the replay cannot see GIL
            contention); False to skip the check; None (default) to check the recording
            for run times that grow with the number of tasks running at once.

    Returns:
        A ``Simulation`` with ``makespan_s`` (first post to last task end), latency
        percentiles, throughput, mean queue wait, utilisation, the queue depth over time
        and ``warnings``.

    Raises:
        TypeError: ``trace`` is not one of the above, or ``pool_size`` is not an int.
        ValueError: ``pool_size`` < 1, or the trace holds no task.
    """
    if isinstance(pool_size, bool) or not isinstance(pool_size, int):
        raise TypeError(f"pool_size must be an int >= 1, got {type(pool_size).__name__} "
                        f"{pool_size!r}")
    if pool_size < 1:
        raise ValueError(f"pool_size must be an int >= 1, got {pool_size}")
    events, dropped = _events(trace, "simulate")
    rec = _rebuild(events)
    tasks = rec.tasks
    if not tasks:
        raise ValueError(
            "simulate() found no task in the trace (no task.started events): record a run "
            "with Runtime(trace=True) that executes some jobs"
        )
    origin = rec.first_ns if rec.first_ns is not None else 0
    end, waits, depth = _replay(tasks, pool_size, origin)
    latencies = []
    by_job: dict[str, float] = {}
    for task, t_end in zip(tasks, end, strict=True):
        if task.job is not None:
            by_job[task.job] = max(by_job.get(task.job, 0.0), t_end)
    for job, t_end in by_job.items():
        posted = rec.posted_ns.get(job)
        if posted is not None:
            latencies.append(t_end - (posted - origin) / 1e9)
    latencies.sort()
    makespan = max(end)
    busy = sum(t.run_s or 0.0 for t in tasks)
    recorded_size = rec.initial_size
    notes = _simulation_warnings(rec, dropped, pool_size, cpu_bound)
    return Simulation(
        pool_size=pool_size,
        jobs=len(by_job),
        tasks=len(tasks),
        makespan_s=makespan,
        throughput=len(by_job) / makespan if makespan > 0 else 0.0,
        p50_latency_s=_percentile(latencies, 50),
        p95_latency_s=_percentile(latencies, 95),
        p99_latency_s=_percentile(latencies, 99),
        mean_queue_wait_s=_stats.fmean(waits) if waits else 0.0,
        utilisation=busy / (pool_size * makespan) if makespan > 0 else 0.0,
        queue_depth=tuple(depth),
        warnings=tuple(notes),
        recorded_pool_size=recorded_size,
    )


def _replay(
    tasks: list[_Task], servers: int, origin: int,
) -> tuple[list[float], list[float], list[tuple[float, int]]]:
    """End time and queue wait of every task with ``servers`` threads, and the queue depth."""
    finish, arrive = 0, 1  # at one instant, finishes come first: they free a thread
    heap: list[tuple[float, int, int, int]] = []
    order = itertools.count()
    for index, task in enumerate(tasks):
        if task.parent is None:
            t = max(0.0, (task.release_ns - origin) / 1e9)
            heap.append((t, arrive, next(order), index))
    heapq.heapify(heap)
    released = [0.0] * len(tasks)
    waits = [0.0] * len(tasks)
    end = [0.0] * len(tasks)
    free = servers
    queue: deque[int] = deque()
    depth: list[tuple[float, int]] = []

    def run(index: int, now: float) -> None:
        waits[index] = now - released[index]
        end[index] = now + (tasks[index].run_s or 0.0)
        heapq.heappush(heap, (end[index], finish, next(order), index))

    while heap:
        now = heap[0][0]
        while heap and heap[0][0] <= now:
            t, kind, _, index = heapq.heappop(heap)
            if kind == finish:
                children = tasks[index].children
                for child in children:
                    released[child] = t
                if children and not free:
                    # No thread idle when the logic emitted: the last activation it
                    # triggered runs next on the same thread, earlier ones queue.
                    queue.extend(children[:-1])
                    run(children[-1], now)
                else:
                    free += 1
                    queue.extend(children)
            else:
                released[index] = t
                queue.append(index)
        while free and queue:
            free -= 1
            run(queue.popleft(), now)
        if not depth or len(queue) != depth[-1][1]:
            depth.append((now, len(queue)))
    return end, waits, depth


def _simulation_warnings(
    rec: _Recording, dropped: int, pool_size: int, cpu_bound: bool | None,
) -> list[str]:
    out = []
    if dropped:
        out.append(
            f"the trace lost {dropped} events (its buffer was full), so the replay misses "
            "the tasks they described; record with a larger Tracer(capacity=...)"
        )
    if rec.unfinished:
        out.append(
            f"{rec.unfinished} task(s) were still running when the trace ended; they are "
            "replayed with the time they had run so far"
        )
    recorded = rec.initial_size
    if recorded is not None and pool_size < recorded:
        direction = ("with fewer threads each task would run shorter, so the prediction is "
                     "too pessimistic")
    else:
        direction = ("with more threads each task would run longer and throughput would "
                     "hardly grow, so the prediction is too optimistic")
    if cpu_bound:
        out.append(
            "the logic is CPU-bound (as the caller said): the replay keeps each task's "
            "recorded run time, but pure-Python CPU work shares the GIL; "
            f"{direction}"
        )
    elif cpu_bound is None:
        slope = _scaling_slope(rec.tasks, rec.busy)
        if slope is not None and slope >= SCALING_SLOPE:
            out.append(
                f"task run times grow with the number of tasks running at once (run time ~ "
                f"concurrency^{slope:.1f} in this recording): the work looks CPU-bound "
                "(threads sharing the GIL, or too few cores), which the replay cannot "
                f"model; {direction}"
            )
        elif pool_size > 1 and rec.busy.peak() <= 1:
            out.append(
                "the recording ran one task at a time, so it cannot show whether tasks slow "
                "each other down; if the logic is CPU-bound Python code, more threads will "
                "not help as the replay predicts (pass cpu_bound=True to say so)"
            )
    return out


def _scaling_slope(tasks: list[_Task], busy: _Busy) -> float | None:
    """Slope of log(run time / routine median) against log(mean concurrency), or None.

    Each task's concurrency is the time-averaged number of tasks running during it
    (itself included). None when too few tasks or the concurrency hardly varied.
    """
    medians: dict[Any, float] = {}
    by_routine: dict[Any, list[float]] = defaultdict(list)
    for t in tasks:
        if t.run_s and t.run_s > 0:
            by_routine[t.routine].append(t.run_s)
    for routine, runs in by_routine.items():
        medians[routine] = _stats.median(runs)
    xs, ys = [], []
    for t in tasks:
        if not t.run_s or t.run_s <= 0 or t.end_ns is None or t.end_ns <= t.start_ns:
            continue
        conc = max(1.0, busy.mean_between(t.start_ns, t.end_ns))
        xs.append(math.log(conc))
        ys.append(math.log(t.run_s / medians[t.routine]))
    if len(xs) < MIN_TASKS_FOR_SLOPE or max(xs) - min(xs) < math.log(MIN_SPREAD):
        return None
    mx, my = _stats.fmean(xs), _stats.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


# ---------------------------------------------------------------------------------------
# utilisation_curve
# ---------------------------------------------------------------------------------------
def utilisation_curve(
    trace: Any, windows: Iterable[float] | None = None, *, pool_size: int | None = None,
) -> pandas.DataFrame:
    """For each window length, the worst (and best) fraction of the pool doing work.

    The pool-level analogue of Go's minimum mutator utilisation: slide a window of
    ``window_s`` seconds over the run (first post to last task end) and take the lowest
    busy-thread-seconds / capacity-thread-seconds seen (busy pool threads and the size as
    ``routilux.trace.pool_series`` gives them; coroutines on the event loop hold no pool
    thread, so they count as idle capacity). A pool that is starved somewhere
    (idle threads while work is scarce, or blocked elsewhere) shows low values at short
    windows; a saturated pool stays near 1 even for short windows, and then more threads
    may help if the work waits on I/O. The last row, the whole run, is the mean.

    Args:
        trace: a ``Tracer``, a saved trace path, a traced ``Runtime`` or a list of events.
        windows: window lengths in seconds (default: 40 lengths spaced geometrically from
            a thousandth of the run to the whole run). Lengths beyond the run are dropped.
        pool_size: the pool's size throughout, for a trace that cannot say (no
            ``pool.size``, ``pool.resize`` or ``queue.depth``); by default the trace's
            sizes, else the most pool threads seen busy at once.

    Returns:
        A DataFrame with columns ``window_s``, ``utilisation`` (the minimum) and
        ``max_utilisation``, sorted by ``window_s``.

    Raises:
        ImportError: pandas is not installed.
        ValueError: the trace holds no finished task, or a window length <= 0.
    """
    pd = _require_pandas("utilisation_curve")
    import numpy as np

    events, _ = _events(trace, "utilisation_curve")
    rec = _rebuild(events)
    if not rec.tasks or rec.first_ns is None or rec.last_ns is None \
            or rec.last_ns <= rec.first_ns:
        raise ValueError("utilisation_curve() found no finished task in the trace")
    t0, t1 = rec.first_ns, rec.last_ns
    span = (t1 - t0) / 1e9
    # Breakpoints of both step functions (busy pool threads, pool size), in seconds from
    # t0, from routilux.trace.pool_series: the series every chart of the pool draws.
    deltas: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    busy = 0
    for sample in rec.series:
        if sample.busy != busy:
            deltas[min(max((sample.ts_ns - t0) / 1e9, 0.0), span)][0] += sample.busy - busy
            busy = sample.busy
    if pool_size is not None:
        steps: list[tuple[int, int]] = [(t0, pool_size)]
    elif rec.initial_size is not None:
        steps = [(t0, rec.initial_size), *rec.sizes]
    else:
        steps = [(t0, max(1, max((p.busy for p in rec.series), default=0)))]
    size = 0
    for ts, new in steps:
        deltas[min(max((ts - t0) / 1e9, 0.0), span)][1] += new - size
        size = new
    times = sorted(deltas)
    if times[-1] < span:
        times.append(span)
        deltas[span]
    busy_level = np.cumsum([deltas[t][0] for t in times])
    size_level = np.cumsum([deltas[t][1] for t in times])
    x = np.asarray(times, dtype=float)
    widths = np.diff(x)
    cum_busy = np.concatenate([[0.0], np.cumsum(busy_level[:-1] * widths)])
    cum_size = np.concatenate([[0.0], np.cumsum(size_level[:-1] * widths)])

    if windows is None:
        lo = max(span / 1000.0, 1e-6)
        lengths = np.unique(np.geomspace(lo, span, 40))
    else:
        lengths = np.asarray(sorted(float(w) for w in windows), dtype=float)
        if lengths.size and lengths[0] <= 0:
            raise ValueError(f"window lengths must be > 0 seconds, got {lengths[0]:g}")
        lengths = lengths[lengths <= span * (1 + 1e-9)]
    rows = []
    for w in lengths:
        w = min(float(w), span)
        # The ratio of two piecewise-linear functions of the window start is monotonic
        # between breakpoints, so its extremes sit where a window edge meets a breakpoint.
        starts = np.concatenate([x, x - w])
        starts = starts[(starts >= 0) & (starts <= span - w)]
        starts = np.unique(np.append(starts, [0.0, span - w]))
        busy_area = np.interp(starts + w, x, cum_busy) - np.interp(starts, x, cum_busy)
        cap_area = np.interp(starts + w, x, cum_size) - np.interp(starts, x, cum_size)
        ratio = np.divide(busy_area, cap_area, out=np.zeros_like(busy_area),
                          where=cap_area > 0)
        rows.append((w, float(ratio.min()), float(ratio.max())))
    return pd.DataFrame(rows, columns=["window_s", "utilisation", "max_utilisation"])


# ---------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepProgress:
    """What ``sweep`` reports to its ``progress`` callback while it runs.

    ``index`` is the 0-based position of ``size`` in the sweep; ``row`` is None while the
    size runs and that size's result row (a dict keyed by ``SWEEP_COLUMNS``) once done.
    """

    size: int
    index: int
    sizes: int
    jobs_done: int
    jobs: int
    row: dict[str, Any] | None = None

    @property
    def fraction(self) -> float:
        """Progress of the whole sweep, 0.0 to 1.0."""
        done = 1.0 if self.row is not None else self.jobs_done / max(self.jobs, 1)
        return min(1.0, (self.index + done) / max(self.sizes, 1))


def _size_line(p: SweepProgress, r: Mapping[str, Any]) -> str:
    """One finished size, as both terminal progress styles print it."""
    p95 = r["p95_latency_s"]
    return (f"sweep: size {p.size} ({p.index + 1}/{p.sizes}): {r['throughput']:.1f} jobs/s, "
            f"p95 latency {'-' if p95 is None else f'{p95:.3f} s'}, "
            f"utilisation {r['utilisation']:.0%}")


def _stderr_progress(p: SweepProgress) -> None:
    """The terminal progress without tqdm: one line per finished size, nothing between."""
    if p.row is not None:
        print(_size_line(p, p.row), file=sys.stderr, flush=True)


class _TqdmProgress:
    """The terminal progress with tqdm: one bar over every job of the sweep.

    The bar counts jobs finished across all sizes (``sizes x jobs`` in all), its postfix
    names the size running, and each finished size's line is written above it, so the
    terminal keeps the per-size results the plain lines give and shows a sweep that is
    slow, or stuck, while it runs. sweep closes it whatever ends the sweep.
    """

    def __init__(self, tqdm_class: Any) -> None:
        self._tqdm = tqdm_class
        self._bar: Any = None
        self._file: Any = None

    def __call__(self, p: SweepProgress) -> None:
        if self._bar is None:
            self._file = sys.stderr  # looked up now: a redirected stderr is honoured
            # sweep already reports at most ten times a second: draw every report.
            self._bar = self._tqdm(total=p.sizes * p.jobs, desc="sweep", unit="job",
                                   file=self._file, dynamic_ncols=True, mininterval=0,
                                   miniters=1)
        done = p.index * p.jobs + (p.jobs if p.row is not None else min(p.jobs_done, p.jobs))
        self._bar.set_postfix_str(f"size {p.size} ({p.index + 1}/{p.sizes})", refresh=False)
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)
        if p.row is not None:
            self._bar.write(_size_line(p, p.row), file=self._file)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _terminal_progress() -> Callable[[SweepProgress], Any]:
    """sweep's default progress: a tqdm bar if tqdm is installed, else plain lines.

    tqdm is optional (the ``jupyter`` and ``dev`` extras install it) and imported here,
    when a sweep starts, so ``import routilux.tuning`` stays free of it.
    """
    try:
        from tqdm import tqdm
    except ImportError:
        return _stderr_progress
    return _TqdmProgress(tqdm)


def _check_sizes(sizes: Iterable[int]) -> list[int]:
    try:
        out = list(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a list of ints >= 1, got {sizes!r}") from None
    if not out:
        raise ValueError("sizes must name at least one pool size, e.g. sizes=[1, 2, 4, 8]")
    for n in out:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"sizes must be ints >= 1, got {type(n).__name__} {n!r}")
        if n < 1:
            raise ValueError(f"sizes must be ints >= 1, got {n}")
    if len(set(out)) != len(out):
        raise ValueError(f"sizes must not repeat, got {out}")
    return out


def sweep(
    workload: Any,
    routine: str,
    slot: str,
    make_data: Callable[[int], Mapping[str, Any]] | Mapping[str, Any] | None = None,
    sizes: Iterable[int] = (1, 2, 4, 8),
    jobs: int = 40,
    *,
    rate: float | None = None,
    progress: Callable[[SweepProgress], Any] | bool | None = None,
    traces: dict[int, Tracer] | None = None,
    cancel: threading.Event | None = None,
    timeout_s: float = SWEEP_TIMEOUT_S,
) -> pandas.DataFrame:
    """Run the same workload at each pool size and measure it from the trace.

    For each size: a fresh ``Runtime(thread_pool_size=size, trace=True)``, ``jobs`` posts
    of ``make_data(i)`` to ``routine.slot`` (all at once, or ``rate`` per second), a wait
    until every job has finished, then the runtime is shut down. Latencies are the
    ``job.completed`` values, queue waits the ``task.started`` values, run times the
    ``task.finished`` values.

    Args:
        workload: a flow name or ``Flow``; or a factory ``factory(size) -> (runtime, flow)``
            returning a fresh traced runtime (and the flow or its name) for each size, for
            runtime options or a flow rebuilt per size. sweep shuts that runtime down.
        routine: the entry routine of the flow.
        slot: the slot of that routine to post to.
        make_data: ``make_data(i) -> dict`` for the i-th job, a dict posted every time,
            or None for ``{"i": i}``.
        sizes: pool sizes to try, in order.
        jobs: jobs posted per size.
        rate: post ``rate`` jobs per second (an open workload); None posts them at once,
            which measures what the pool can do flat out.
        progress: a callback given a ``SweepProgress`` about ten times a second and once
            per finished size (from the calling thread); None (or True) shows a tqdm bar
            on stderr with one line per finished size above it, or, without tqdm
            installed, just the lines; False is silent. In a notebook, pass
            ``routilux_jupyter.SweepProgressBar()``.
        traces: a dict to receive each size's ``Tracer`` (for ``simulate`` or a report).
        cancel: a ``threading.Event``; when set, the runtime of the current size is shut
            down and the rows finished so far are returned (``df.attrs["cancelled"]``).
        timeout_s: seconds one size may take.

    Returns:
        A DataFrame, one row per size, columns ``SWEEP_COLUMNS``: ``size``, ``jobs``,
        ``makespan_s`` (first post to last task end), ``throughput`` (completed jobs per
        second of makespan), ``p50_latency_s`` / ``p95_latency_s`` / ``p99_latency_s``
        (completed jobs), ``mean_queue_wait_s``, ``utilisation`` (busy thread-seconds /
        (size x makespan)), ``work_per_job_s`` (thread-seconds of logic per job),
        ``cpu_per_job_s`` (CPU seconds of the whole process per job, while the size ran:
        close to ``work_per_job_s`` for CPU-bound logic, far below it when threads wait),
        ``failed`` (jobs). ``df.attrs`` holds ``cpu_count``, ``rate`` and ``cancelled``.

    Raises:
        ImportError: pandas is not installed.
        TypeError / ValueError: bad sizes, jobs, rate or workload; an unknown routine or
            slot (from the first ``post``).
        TimeoutError: a size did not finish within ``timeout_s``.
    """
    pd = _require_pandas("sweep")
    sizes = _check_sizes(sizes)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not rate > 0):
        raise ValueError(f"rate must be a number of jobs per second > 0, or None; got {rate!r}")
    if not (isinstance(workload, str) or callable(workload) or hasattr(workload, "flow_id")):
        raise TypeError(
            "workload must be a flow name, a Flow, or a factory(size) -> (runtime, flow); "
            f"got {type(workload).__name__}"
        )
    if make_data is None:
        def data_for(i: int) -> Mapping[str, Any]:
            return {"i": i}
    elif isinstance(make_data, Mapping):
        fixed = dict(make_data)

        def data_for(i: int) -> Mapping[str, Any]:
            return dict(fixed)
    elif callable(make_data):
        data_for = make_data
    else:
        raise TypeError(f"make_data must be a callable(i) -> dict, a dict or None, "
                        f"got {type(make_data).__name__}")
    if progress is None or progress is True:
        report: Callable[[SweepProgress], Any] | None = _terminal_progress()
    elif progress is False:
        report = None
    elif callable(progress):
        report = progress
    else:
        raise TypeError(f"progress must be a callable, None, True or False, got {progress!r}")
    try:
        rows, cancelled = _sweep_sizes(workload, routine, slot, data_for, sizes, jobs, rate,
                                       report, traces, cancel, timeout_s)
    finally:
        if isinstance(report, _TqdmProgress):
            report.close()
    frame = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    frame.attrs["cpu_count"] = os.cpu_count() or 1
    frame.attrs["rate"] = rate
    frame.attrs["cancelled"] = cancelled
    return frame


def _sweep_sizes(
    workload: Any, routine: str, slot: str, data_for: Callable[[int], Mapping[str, Any]],
    sizes: list[int], jobs: int, rate: float | None,
    report: Callable[[SweepProgress], Any] | None, traces: dict[int, Tracer] | None,
    cancel: threading.Event | None, timeout_s: float,
) -> tuple[list[dict[str, Any]], bool]:
    """Each size in turn: the rows finished, and whether the sweep was cancelled."""
    rows: list[dict[str, Any]] = []
    cancelled = False
    for index, size in enumerate(sizes):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        runtime, flow = _new_runtime(workload, size, jobs)
        cpu_s = None
        try:
            cpu_s = _run_size(runtime, flow, routine, slot, data_for, jobs, rate, cancel,
                              timeout_s, size, index, len(sizes), report)
        finally:
            # Cancelled, timed out or failed: abandon what is still queued, do not wait.
            runtime.shutdown(wait=cpu_s is not None, timeout=10.0)
        if cpu_s is None:
            cancelled = True
            break
        tracer = runtime.tracer
        row = _measure(tracer.read(0), size, cpu_s)
        if tracer.dropped:
            warnings.warn(
                f"sweep: the trace of size {size} dropped {tracer.dropped} events, so its row "
                "undercounts; use a factory with Runtime(trace=Tracer(capacity=...))",
                RuntimeWarning, stacklevel=3,
            )
        rows.append(row)
        if traces is not None:
            traces[size] = tracer
        if report is not None:
            report(SweepProgress(size, index, len(sizes), jobs, jobs, dict(row)))
    return rows, cancelled


def _new_runtime(workload: Any, size: int, jobs: int) -> tuple[Runtime, Any]:
    from ._engine._runtime import Runtime

    if isinstance(workload, str) or hasattr(workload, "flow_id"):
        capacity = max(200_000, jobs * 64)
        return Runtime(thread_pool_size=size, trace=Tracer(capacity)), workload
    made = workload(size)
    if not (isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], Runtime)):
        if isinstance(made, Runtime):
            made.shutdown(wait=False)
        raise TypeError(
            f"the sweep factory must return (runtime, flow) for size {size}, got "
            f"{type(made).__name__}"
        )
    runtime, flow = made
    if runtime.tracer is None:
        runtime.shutdown(wait=False)
        raise ValueError(
            "the sweep factory returned a runtime without tracing; create it with "
            "Runtime(thread_pool_size=size, trace=True)"
        )
    return runtime, flow


def _run_size(
    runtime: Runtime, flow: Any, routine: str, slot: str,
    data_for: Callable[[int], Mapping[str, Any]], jobs: int, rate: float | None,
    cancel: threading.Event | None, timeout_s: float, size: int, index: int, n_sizes: int,
    report: Callable[[SweepProgress], Any] | None,
) -> float | None:
    """Post and wait for one size: the process CPU seconds it took, or None if cancelled."""
    deadline = time.monotonic() + timeout_s
    start = time.monotonic()
    cpu_start = time.process_time()
    last_report = 0.0
    for i in range(jobs):
        if rate is not None and i > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                if cancel is not None:
                    if cancel.wait(delay):
                        return None
                else:
                    time.sleep(delay)
        elif cancel is not None and cancel.is_set():
            return None
        runtime.post(flow, routine, slot, dict(data_for(i)))
        if i == 0:
            # Pace from the first post's return, not from before it: post i then starts at
            # least i / rate after job 0 was posted, whatever the first post cost.
            start = time.monotonic()
    while not runtime.wait_until_all_jobs_finished(timeout=PROGRESS_INTERVAL_S):
        if cancel is not None and cancel.is_set():
            return None
        now = time.monotonic()
        if now > deadline:
            stats = runtime.statistics()
            raise TimeoutError(
                f"sweep: pool size {size} did not finish {jobs} jobs within {timeout_s:g} s "
                f"({stats.completed + stats.failed} finished); raise timeout_s or post fewer "
                "jobs"
            )
        if report is not None and report is not _stderr_progress \
                and now - last_report >= PROGRESS_INTERVAL_S:
            last_report = now
            stats = runtime.statistics()
            report(SweepProgress(size, index, n_sizes,
                                 stats.completed + stats.failed + stats.cancelled, jobs))
    return time.process_time() - cpu_start


def _measure(events: Sequence[TraceEvent], size: int, cpu_s: float) -> dict[str, Any]:
    """One sweep row from one size's trace."""
    posted = [e.ts_ns for e in events if e.kind == "job.posted"]
    latencies = sorted(float(e.value) for e in events
                       if e.kind == "job.completed" and isinstance(e.value, (int, float)))
    failed = sum(1 for e in events if e.kind in ("job.failed", "job.cancelled"))
    waits = [float(e.value) for e in events
             if e.kind == "task.started" and isinstance(e.value, (int, float))]
    finished = [e for e in events if e.kind == "task.finished"]
    runs = [float(e.value) for e in finished if isinstance(e.value, (int, float))]
    ends = [e.ts_ns for e in finished]
    terminal = [e.ts_ns for e in events if e.kind in ("job.completed", "job.failed")]
    first = min(posted) if posted else None
    last = max(ends) if ends else (max(terminal) if terminal else None)
    makespan = (last - first) / 1e9 if first is not None and last is not None else 0.0
    busy = sum(runs)
    return {
        "size": size,
        "jobs": len(posted),
        "makespan_s": makespan,
        "throughput": len(latencies) / makespan if makespan > 0 else 0.0,
        "p50_latency_s": _percentile(latencies, 50),
        "p95_latency_s": _percentile(latencies, 95),
        "p99_latency_s": _percentile(latencies, 99),
        "mean_queue_wait_s": _stats.fmean(waits) if waits else 0.0,
        "utilisation": busy / (size * makespan) if makespan > 0 else 0.0,
        "work_per_job_s": busy / len(posted) if posted else 0.0,
        "cpu_per_job_s": cpu_s / len(posted) if posted else 0.0,
        "failed": failed,
    }


# ---------------------------------------------------------------------------------------
# recommend
# ---------------------------------------------------------------------------------------
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

    # Little's law: threads busy = throughput x thread time per job, with the thread time
    # measured at the smallest size (the least contended).
    first = rows[0]
    s1 = first.get("work_per_job_s") if all(_number(r.get("work_per_job_s")) for r in rows) \
        else None
    busy_threads = x_max * s1 if s1 is not None else None
    share = None  # CPU seconds per thread-second of logic, at the smallest size
    if s1 and _number(first.get("cpu_per_job_s")):
        share = float(first["cpu_per_job_s"]) / s1
    parallelism = busy_threads
    if parallelism is None:
        parallelism = x_max / first["throughput"] * first["size"] \
            if first["throughput"] > 0 else float(first["size"])
    workload = _classify(share, parallelism, cpus)

    if busy_threads is not None:
        reasons.append(
            f"Little's law: at the best throughput, {x_max:.1f} jobs/s x {s1 * 1e3:.1f} ms of "
            f"thread time per job (measured at {_threads(first['size'])}) = "
            f"{busy_threads:.1f} threads doing useful work at once."
        )
        if workload == "cpu-bound":
            # Threads that share one GIL cannot do more work at once than Little's law
            # says was done: a knee above that is timing noise or overhead, not capacity.
            enough = max(1, round(busy_threads * LITTLE_HEADROOM))
            covering = next((r for r in rows if r["size"] >= enough), rows[-1])
            if covering["size"] < knee["size"]:
                reasons.append(
                    f"So {_threads(covering['size'])} cover that (with "
                    f"{LITTLE_HEADROOM - 1:.0%} headroom); the "
                    f"{knee['throughput'] / covering['throughput'] - 1:.0%} more throughput "
                    f"measured at {knee['size']} cannot have come from more work running at "
                    "once (timing noise or overhead), so the smaller pool is recommended."
                )
                choice = covering

    latency_row = None
    if latency_target_s is not None:
        meets = [r for r in rows if r["p95_latency_s"] is not None
                 and r["p95_latency_s"] <= latency_target_s]
        if meets:
            latency_row = meets[0]
            if latency_row["size"] > choice["size"]:
                reasons.append(
                    f"The p95 latency target of {latency_target_s:.3g} s is first met at "
                    f"{_threads(latency_row['size'])} (p95 "
                    f"{latency_row['p95_latency_s']:.3g} s); at {choice['size']} it was "
                    f"{choice['p95_latency_s']:.3g} s."
                )
                choice = latency_row
            else:
                reasons.append(
                    f"The p95 latency target of {latency_target_s:.3g} s is met from "
                    f"{_threads(latency_row['size'])} on; at {choice['size']} p95 is "
                    f"{choice['p95_latency_s']:.3g} s."
                )
        else:
            lowest = min((r for r in rows if r["p95_latency_s"] is not None),
                         key=lambda r: r["p95_latency_s"], default=None)
            if lowest is not None:
                reasons.append(
                    f"No size tried meets the p95 latency target of {latency_target_s:.3g} s; "
                    f"the lowest p95 was {lowest['p95_latency_s']:.3g} s at "
                    f"{_threads(lowest['size'])}. Fewer jobs in flight (backpressure) or less "
                    "work per job would help more than threads past the knee."
                )

    if arrival_rate is not None and s1 is not None:
        keeps_up = [r for r in rows if r["throughput"] >= arrival_rate * (1 - tolerance)]
        text = (f"Jobs arrive at {arrival_rate:g}/s, so by Little's law about "
                f"{arrival_rate * s1:.1f} threads must be busy on average to keep up")
        if keeps_up:
            choice = max(choice, keeps_up[0], key=lambda r: r["size"])
            text += f"; the smallest size that kept up was {keeps_up[0]['size']}."
        else:
            text += "; no size tried kept up, so the queue grows without bound."
        reasons.append(text)

    if share is not None:
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
            f"{choice['size']}."
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
    size = choice["size"]
    if lo <= size <= hi:
        reasons.append(f"The measured choice, {size}, agrees with the rule of thumb.")
    else:
        side = "below" if size < lo else "above"
        reasons.append(
            f"The measured choice, {size}, is {side} the rule of thumb "
            f"({lo if lo == hi else f'{lo}-{hi}'}): the measurement on this workload wins "
            "over a rule made for workloads in general."
        )
    return Recommendation(
        size=size,
        reasons=tuple(reasons),
        workload=workload,
        rule_of_thumb=rule,
        knee_size=knee["size"],
        latency_size=None if latency_row is None else latency_row["size"],
        busy_threads=busy_threads,
        cpu_count=cpus,
    )
