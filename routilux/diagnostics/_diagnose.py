"""``diagnose``: a source's events through every detector, as findings sorted most severe first.

The steps: check the threshold overrides; read the source (a live ``Runtime`` also gives
its ``statistics()``, ``state_writes()`` and the stacks of its running tasks; a ``Tracer``,
a saved trace's path or an iterable of ``TraceEvent`` is read as every trace reader reads
it); drop the ``finding`` events earlier calls recorded; run the six detectors; sort; and,
with ``record=True``, record each new finding into the tracer once.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..trace import TraceEvent, Tracer, _source_events
from ._barrier import detect_barrier_misuse
from ._blocking import detect_blocking
from ._deadlocks import detect_deadlocks
from ._exhaustion import detect_pool_exhaustion
from ._finding import Finding, check_thresholds, sort_key
from ._lock_order import detect_lock_order
from ._shared_state import detect_shared_mutable_state

__all__ = ["SAMPLE_STACK_LIMIT", "diagnose"]

SAMPLE_STACK_LIMIT = 12  # frames of a stack sample taken by diagnose (as the runtime does)

_recorded: weakref.WeakKeyDictionary[Tracer, set[str]] = weakref.WeakKeyDictionary()
_record_lock = threading.Lock()


def diagnose(source: Any, *, record: bool = False, **thresholds: Any) -> list[Finding]:
    """Run every pitfall detector over a runtime's (or a tracer's) trace.

    Args:
        source: a ``routilux.Runtime`` (its tracer, ``statistics()``, ``state_writes()``
            and running tasks are used; with tracing off only shared mutable state can be
            found), a ``Tracer``, the path of a trace saved by ``Tracer.save``, or an
            iterable of ``TraceEvent``.
        record: record one ``finding`` event per finding into the tracer, unless a finding
            with the same ``key`` was already recorded there.
        **thresholds: overrides of ``DEFAULT_THRESHOLDS`` by name.

    Returns:
        The findings, most severe first (then by kind and title); ``[]`` when healthy.

    Raises:
        TypeError: ``source`` is none of the above, or an unknown threshold name.
        FileNotFoundError / ValueError: a path that is not a saved trace.
        ValueError: a threshold out of range.
    """
    th = check_thresholds(thresholds)
    src = _read(source, th["blocking_min_s"])
    findings = _run_detectors(src, th)
    findings.sort(key=sort_key)
    if record and src.tracer is not None and findings:
        _record(src.tracer, findings)
    return findings


class _Source(NamedTuple):
    """What ``diagnose`` read from its source."""

    events: list[TraceEvent]  # without earlier ``finding`` events
    tracer: Tracer | None  # where findings are recorded
    statistics: Any  # a live runtime's ``statistics()``, else None
    state_writes: Mapping[tuple[str, str], int] | None
    running: list[dict[str, Any]]  # a live runtime's running tasks, with stacks
    now_ns: int | None  # where a live runtime's unfinished tasks end


def _read(source: Any, min_s: float) -> _Source:
    """Read ``source``; stacks are taken of live tasks running at least ``min_s``."""
    tracer: Tracer | None = None
    stats = None
    writes: Mapping[tuple[str, str], int] | None = None
    running: list[dict[str, Any]] = []
    now_ns: int | None = None
    if callable(getattr(source, "statistics", None)) and hasattr(source, "tracer"):
        tracer = source.tracer
        stats = source.statistics()
        writes = source.state_writes() if callable(getattr(source, "state_writes", None)) \
            else None
        if not getattr(stats, "shut_down", False):
            now_ns = time.monotonic_ns()
            running = _live_stacks(source, min_s)
        events = tracer.read(0) if tracer is not None else []
    else:  # a Tracer, a saved trace's path or TraceEvents: read as every trace reader does
        if isinstance(source, Tracer):
            tracer = source
        events = _source_events(source, "diagnose")
    events = [e for e in events if e.kind != "finding"]
    return _Source(events, tracer, stats, writes, running, now_ns)


def _live_stacks(runtime: Any, min_s: float) -> list[dict[str, Any]]:
    """The runtime's running tasks, with a stack for those running at least ``min_s``."""
    running_tasks = getattr(runtime, "running_tasks", None)
    if not callable(running_tasks):
        return []
    tasks = list(running_tasks())
    frames = None
    out = []
    for task in tasks:
        entry = dict(task)
        if entry.get("running_s", 0.0) >= min_s:
            if frames is None:
                frames = sys._current_frames()
            frame = frames.get(entry.get("thread"))
            if frame is not None:
                entry["stack"] = [f"{fs.filename}:{fs.lineno} in {fs.name}" for fs in
                                  traceback.extract_stack(frame, limit=SAMPLE_STACK_LIMIT)]
        out.append(entry)
    del frames
    return out


def _run_detectors(src: _Source, th: Mapping[str, Any]) -> list[Finding]:
    """Every detector's findings, in ``FINDING_KINDS`` order (unsorted within)."""
    events, stats = src.events, src.statistics
    findings: list[Finding] = []
    findings += detect_shared_mutable_state(
        events, stats, state_writes=src.state_writes, state_min_writes=th["state_min_writes"])
    findings += detect_blocking(
        events, stats, running=src.running, now_ns=src.now_ns,
        blocking_ratio=th["blocking_ratio"], blocking_min_s=th["blocking_min_s"],
        blocking_queue_wait_s=th["blocking_queue_wait_s"],
        blocking_min_peers=th["blocking_min_peers"], blocking_lone_s=th["blocking_lone_s"])
    findings += detect_deadlocks(events, stats)
    findings += detect_lock_order(events, stats)
    findings += detect_pool_exhaustion(
        events, stats, exhaustion_window_s=th["exhaustion_window_s"],
        exhaustion_min_growth=th["exhaustion_min_growth"],
        exhaustion_backlog_s=th["exhaustion_backlog_s"], exhaustion_wait_s=th["exhaustion_wait_s"])
    findings += detect_barrier_misuse(
        events, stats, barrier_backlog=th["barrier_backlog"],
        barrier_starved_items=th["barrier_starved_items"])
    return findings


def _record(tracer: Tracer, findings: list[Finding]) -> None:
    """Record each finding not yet recorded into ``tracer`` (by key), exactly once."""
    with _record_lock:
        seen = _recorded.get(tracer)
        if seen is None:
            seen = set()
            for e in tracer.read(0):
                if e.kind == "finding" and isinstance(e.detail, Mapping) and e.detail.get("key"):
                    seen.add(str(e.detail["key"]))
            _recorded[tracer] = seen
        for f in findings:
            if f.key in seen:
                continue
            seen.add(f.key)
            routine = f.evidence.get("routine")
            tracer.record("finding", None, None if routine is None else str(routine), f.kind,
                          None, {"title": f.title, "severity": f.severity, "key": f.key},
                          None)
