"""A trace read back as recorded tasks, each with the task whose logic scheduled it.

``simulate`` replays these tasks and ``utilisation_curve`` reads the pool series they come
with. A task's parent is the task running on the lane that recorded its ``task.queued``
(``emit`` delivers downstream in the emitting thread); tasks without one are roots,
released when they were recorded entering the run queue.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..trace import PoolCounter, PoolSample, TraceEvent, Tracer, _source_events, _task_spans


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
    tasks, by_start, by_end = _tasks_of(spans)
    posted, last_ts = _link_parents(events, tasks, by_start, by_end)
    series = PoolCounter().feed(events)
    initial, sizes = _size_changes(series)
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


def _tasks_of(spans: Sequence[Any]) -> tuple[list[_Task], dict[int, int], dict[int, int]]:
    """One ``_Task`` per span, and the index of each by its start and its finish seq."""
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
    return tasks, by_start, by_end


def _link_parents(
    events: Sequence[TraceEvent], tasks: list[_Task], by_start: dict[int, int],
    by_end: dict[int, int],
) -> tuple[dict[str, int], int]:
    """Set each task's parent (and queued seq); the job post times, and the last timestamp.

    A task's parent is the newest task open on the lane that recorded its ``task.queued``.
    """
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
    return posted, last_ts


def _size_changes(series: Sequence[PoolSample]) -> tuple[int | None, list[tuple[int, int]]]:
    """The first pool size the series names, and each later change as ``(ts_ns, size)``."""
    initial = next((p.size for p in series if p.size), None)
    sizes: list[tuple[int, int]] = []
    for sample in series:
        if sample.size and (sizes[-1][1] if sizes else initial) != sample.size:
            sizes.append((sample.ts_ns, sample.size))
    return initial, sizes
