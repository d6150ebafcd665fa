"""``simulate``: a recorded trace replayed with another number of threads, without rerunning it.

Design of the replay, read before changing it:

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

``simulate`` works on plain Python data: no pandas.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics as _stats
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from ._common import _percentile
from ._recording import _Busy, _events, _rebuild, _Recording, _Task

SCALING_SLOPE = 0.5  # run time ~ concurrency ** slope; at or above it, the work looks CPU-bound
MIN_SPREAD = 1.5  # concurrency must vary this much (max/min) to judge the slope
MIN_TASKS_FOR_SLOPE = 4


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

    A discrete-event replay of the trace (its design: ``routilux.tuning._simulate``): each
    job's tasks with their recorded run times, downstream tasks released when their
    upstream task finishes (assuming ``emit`` at the end of the logic), arrivals at their
    recorded times, one FIFO run queue, ``pool_size`` threads. Nothing is rerun.

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
    """Why the prediction may be off: lost events, unfinished tasks, contention it cannot see."""
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
