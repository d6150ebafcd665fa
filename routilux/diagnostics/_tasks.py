"""The pool's work as a trace shows it: tasks on pool threads, queue waits, the pool's size.

Shared by the blocking and pool-exhaustion detectors. Both look at ``"pool"`` lanes only:
a coroutine awaiting on the event loop's lane, or logic on a remote lane, holds no pool
thread (issue 12). Task spans come from ``routilux.trace.task_spans``, the one rebuilder
every reader uses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..trace import LANE_POOL, LANES, PoolCounter, PoolSample, TraceEvent, task_spans

__all__ = ["POOL_LANES", "Span", "Wait", "pool_size", "queue_waits", "tasks"]

POOL_LANES = frozenset({LANE_POOL})


class Span(NamedTuple):
    """One task's run on one pool thread."""

    thread: int
    thread_name: str
    routine: str | None
    job_id: str | None
    start_ns: int
    end_ns: int
    dur_s: float
    finished: bool
    evs: tuple[TraceEvent, ...]


def tasks(events: Sequence[TraceEvent], now_ns: int, lanes: frozenset[str] = frozenset(LANES),
          ) -> list[Span]:
    """The tasks ``routilux.trace.task_spans`` rebuilds, on the given lanes, by start."""
    by_seq = {e.seq: e for e in events if e.kind in ("task.started", "task.finished")}
    spans = []
    for t in task_spans(events, now_ns=now_ns):
        if t.lane not in lanes:
            continue
        evs = tuple(by_seq[q] for q in (t.start_seq, t.end_seq) if q in by_seq)
        spans.append(Span(t.thread, t.thread_name, t.routine, t.job_id, t.start_ns, t.end_ns,
                          t.run_s, t.finished, evs))
    return spans


class Wait(NamedTuple):
    """One activation's time in the run queue, and the event that shows it."""

    begin_ns: int
    end_ns: int
    ev: TraceEvent


def queue_waits(events: Sequence[TraceEvent], now_ns: int) -> list[Wait]:
    """When each activation waited in the run queue, sorted by the end of the wait.

    A started task waited ``value`` seconds before its ``task.started``. A ``task.queued``
    with no matching start (counted per job, routine and slot, since a queued and a started
    event can land in either order) is still waiting: until now, or until its job ended.
    """
    waits: list[Wait] = []
    queued: dict[tuple[Any, ...], list[TraceEvent]] = defaultdict(list)
    started: dict[tuple[Any, ...], int] = defaultdict(int)
    job_end: dict[str, int] = {}
    for e in events:
        kind = e.kind
        if kind == "task.started":
            started[(e.job_id, e.routine, e.name)] += 1
            if isinstance(e.value, (int, float)) and e.value > 0:
                waits.append(Wait(e.ts_ns - int(e.value * 1e9), e.ts_ns, e))
        elif kind == "task.queued":
            queued[(e.job_id, e.routine, e.name)].append(e)
        elif kind in ("job.completed", "job.failed", "job.cancelled") and e.job_id is not None:
            job_end[e.job_id] = e.ts_ns
    for key, qs in queued.items():
        pending = len(qs) - started.get(key, 0)
        for q in qs[len(qs) - pending:] if pending > 0 else ():
            end = job_end.get(q.job_id, now_ns) if q.job_id is not None else now_ns
            if end > q.ts_ns:
                waits.append(Wait(q.ts_ns, end, q))
    waits.sort(key=lambda w: w.end_ns)
    return waits


def pool_size(events: Sequence[TraceEvent], statistics: Any,
              series: Sequence[PoolSample] | None = None) -> int | None:
    """The pool's size as of the trace's end (``pool_series``), else the runtime's."""
    if series is None:
        series = PoolCounter().feed(events)
    if series and series[-1].size:
        return int(series[-1].size)
    size = getattr(statistics, "pool_size", None)
    return int(size) if size else None
