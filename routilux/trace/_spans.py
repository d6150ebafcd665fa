"""Task spans: each task's run rebuilt from its start and finish events (one shared reading)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

from ._event import _NUM
from ._lanes import LANE_POOL, _lane_of
from ._sources import _source_events


class TaskSpan(NamedTuple):
    """One task's run, rebuilt from its ``task.started`` / ``task.finished`` events."""

    thread: int
    """The ident of the lane the logic ran on (see ``TraceEvent.thread``)."""
    thread_name: str
    lane: str
    """One of ``LANES``: ``"pool"`` (held a pool thread), ``"executor"``, ``"remote"``."""
    routine: str | None
    job_id: str | None
    slot: str | None
    start_ns: int
    end_ns: int
    """The ``task.finished`` time; for an unfinished task, ``now_ns`` (or the last event)."""
    run_s: float
    """Seconds the logic ran: the ``task.finished`` value, else ``end_ns - start_ns``."""
    wait_s: float | None
    """Seconds it waited in the run queue (the ``task.started`` value), if known."""
    finished: bool
    error: str | None
    start_seq: int
    """Seq of its ``task.started``; 0 when that event was dropped (``start_ns`` is then
    rebuilt from the run time)."""
    end_seq: int
    """Seq of its ``task.finished``; 0 while unfinished."""


def task_spans(source: Any, *, now_ns: int | None = None) -> list[TaskSpan]:
    """Every task of a trace with its lane, run time and outcome, ordered by start.

    A ``task.finished`` closes the open ``task.started`` of the same lane, job, routine
    and slot; several coroutines of one routine can be open at once on the event loop's
    lane, so among equals it closes the one whose start is nearest to the finish minus the
    run time it reports. A task whose start was dropped from the buffer is rebuilt from
    its run time (``start_seq == 0``); a task still running ends at ``now_ns`` (default:
    the trace's last timestamp) with ``finished=False``. On a pool thread a new start
    closes a task whose finish is missing (a thread runs one task at a time).

    Args:
        source: a ``Tracer``, a traced ``Runtime``, a saved trace's path, or an iterable
            of ``TraceEvent``.
        now_ns: where unfinished tasks end.

    Raises:
        TypeError: ``source`` is none of those.
        ValueError: a runtime that does not trace.
    """
    events = _source_events(source, "task_spans")
    return _task_spans(events, now_ns)


_SPAN_KINDS = frozenset({"task.started", "task.finished", "task.error"})


def _task_spans(events: Sequence[Sequence[Any]], now_ns: int | None = None) -> list[TaskSpan]:
    """``task_spans`` over events (``TraceEvent``s or tuples in field order), in seq order."""
    # One flat loop over tuples by index (attribute access on a NamedTuple costs more).
    rows = [r for r in events if r[2] in _SPAN_KINDS]
    if now_ns is None:
        now_ns = max((r[1] for r in events), default=0)
    open_: dict[tuple[Any, ...], list[Sequence[Any]]] = {}
    pool_open: dict[tuple[int, str], tuple[Any, ...]] = {}  # pool thread -> its open key
    errors: dict[tuple[Any, ...], str] = {}
    lanes: dict[tuple[int, str], str] = {}  # lane of a start without detail, by thread
    spans: list[TaskSpan] = []
    append = spans.append
    for r in rows:
        seq, ts, kind, thread, thread_name = r[0], r[1], r[2], r[3], r[4]
        tn = (thread, thread_name)
        key = (thread, thread_name, r[6], r[7], r[8])
        if kind == "task.started":
            detail = r[10]
            if detail is None:
                lane = lanes.get(tn)
                if lane is None:
                    lane = lanes[tn] = _lane_of(thread, thread_name, None)
            else:
                lane = _lane_of(thread, thread_name, detail)
            if lane == LANE_POOL:
                prev_key = pool_open.pop(tn, None)
                if prev_key is not None and open_.get(prev_key):
                    p = open_[prev_key].pop()  # its finish is missing: close it here
                    append(TaskSpan(p[3], p[4], lane, p[7], p[6], p[8], p[1], ts,
                                    (ts - p[1]) / 1e9,
                                    float(p[9]) if isinstance(p[9], _NUM) else None,
                                    False, errors.pop(prev_key, None), p[0], 0))
                pool_open[tn] = key
            starts = open_.get(key)
            if starts is None:
                open_[key] = [r]
            else:
                starts.append(r)
        elif kind == "task.error":
            errors[key] = str(r[10])
        else:
            value = r[9]
            run = float(value) if isinstance(value, _NUM) else None
            error = errors.pop(key, None)
            if isinstance(r[10], str):
                error = r[10]
            starts = open_.get(key)
            if starts:
                if len(starts) == 1 or run is None:
                    st = starts.pop(0)
                else:  # overlapping coroutines: the start this run time points at
                    guess = ts - int(run * 1e9)
                    k = min(range(len(starts)), key=lambda i: abs(starts[i][1] - guess))
                    st = starts.pop(k)
                lane = lanes.get(tn) if st[10] is None else None
                if lane is None:
                    lane = _lane_of(st[3], st[4], st[10])
                if lane == LANE_POOL and pool_open.get(tn) == key:
                    del pool_open[tn]
                append(TaskSpan(st[3], st[4], lane, st[7], st[6], st[8], st[1], ts,
                                run if run is not None else (ts - st[1]) / 1e9,
                                float(st[9]) if isinstance(st[9], _NUM) else None,
                                True, error, st[0], seq))
            elif run is not None:  # the start was dropped: rebuild it from the run time
                append(TaskSpan(thread, thread_name, _lane_of(thread, thread_name, None),
                                r[7], r[6], r[8], ts - int(run * 1e9), ts, run, None, True,
                                error, 0, seq))
    for key, starts in open_.items():
        for st in starts:
            end = max(now_ns, st[1])
            append(TaskSpan(st[3], st[4], _lane_of(st[3], st[4], st[10]), st[7], st[6],
                            st[8], st[1], end, (end - st[1]) / 1e9,
                            float(st[9]) if isinstance(st[9], _NUM) else None, False,
                            errors.get(key), st[0], 0))
    spans.sort(key=_BY_START)
    return spans


_BY_START = operator.itemgetter(6, 12)  # (start_ns, start_seq)
