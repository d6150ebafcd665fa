"""Pitfall detectors: read a runtime's trace and say what went wrong, with evidence and a fix.

``diagnose(runtime_or_tracer)`` runs six detectors over the trace events (and, for a live
``Runtime``, its ``statistics()``, ``state_writes()`` and ``running_tasks()``) and returns
``Finding`` records, most severe first. Each detector is a pure function over a list of
``TraceEvent`` records, so it works the same on a live runtime, on ``Tracer.load(path)`` and
on a hand-built event list. A healthy run yields no finding at all: every detector needs a
symptom *and* its cause before it speaks.

The six detectors (kind, what it keys on, its thresholds with their defaults):

``shared_mutable_state``
    ``state.write`` events: logic assigned an attribute of its routine object, which every
    job shares (api.md §3, §15). One finding per (routine, attribute) with the number of
    writes and the distinct threads and jobs that wrote; ``Runtime.state_writes()`` counts
    writes even when tracing is off. *state_min_writes* = 1: writes needed to report (any
    write breaks the rule). Severity high once two threads or two jobs wrote, else medium.

``blocking``
    The tasks ``routilux.trace.task_spans`` rebuilds on pool threads (a coroutine on the
    event loop's lane or logic on a remote lane holds no pool thread); a task is
    reported when it ran at least *blocking_min_s* = 0.1 s **and** activations waited in the
    run queue while it ran **and** either it ran *blocking_ratio* = 10 times the median of
    its routine's other tasks (the routine needs *blocking_min_peers* = 3 finished peers;
    otherwise the median of all other tasks is used), or, when no short peers exist, long
    tasks held every pool thread while the queue was not empty (a moment of
    ``routilux.trace.pool_series`` with busy >= size and queued > 0 that only long tasks
    overlap). "Waited" means such a moment during the task, or another
    activation whose queue wait (``task.started`` value, or a ``task.queued`` still waiting)
    overlaps the task by *blocking_queue_wait_s* = 0.05 s. The ``task.sample`` stacks of the
    flagged tasks (or, for a live runtime, stacks taken by ``diagnose`` itself) say where
    it blocks, by majority, e.g. "time.sleep in fetch() at notebook cell line 4". One finding per routine.
    An outlier is reported only if it ran at least *blocking_lone_s* = 1.0 s: on a busy
    machine the scheduler alone stretches a short task tenfold, with its stack still in
    the call it was making (a 20 ms ``time.sleep`` took 0.55 s beside two CPU hogs).
    Scheduler delay is not blocking: time the whole process was stalled (the monitor
    missed its ``queue.depth`` tick) is taken off each task first; an outlier during which
    pool threads sat idle with work queued is dropped (the queue waited for the
    scheduler); and the saturated shape needs a routine whose tasks are long, not a few
    stretched short ones.

``deadlock``
    ``deadlock.detected`` events (traced locks found a wait-for cycle): the cycle in words
    and the locks involved. No threshold: every cycle is reported, once per set of locks.

``lock_order``
    ``lock.order`` events (a thread holding one traced lock took another): every cycle of
    two locks or more in that graph, whether or not it deadlocked in this run, with the
    routine, thread, job and file:line of each edge and the one order to adopt. A cycle
    that did deadlock is left to the ``deadlock`` finding (see ``routilux._lock_order``).

``pool_exhaustion``
    The run-queue depth (``routilux.trace.pool_series``) grows by at least
    *exhaustion_min_growth* = 5 items over a
    window of *exhaustion_window_s* = 1.0 s without draining to 0, while arrivals
    (``task.queued``) outnumber completions (``task.finished``) in each quarter
    (``EXHAUSTION_PARTS``) of that window, and the queue it built makes an arrival wait
    at least *exhaustion_wait_s* (peak depth / completion rate). The fix uses Little's law: threads needed =
    arrival rate x mean service time (``task.finished`` durations); the pool size it
    suggests is that times ``LITTLE_HEADROOM`` (at least the pool + 1; none when the pool
    already has the threads needed: then they are not delivering). It also names
    backpressure (``Runtime(max_queue_size=...)`` with ``post(block=True)``). Failing that,
    a *backlog*: the queue never empties for *exhaustion_backlog_s* = 3.0 s while every
    pool thread is busy (90% of the time) and its activations wait at least
    *exhaustion_wait_s* = 1.0 s (95th percentile): a burst of posts worked off far slower
    than it came. A burst that drains sooner or moves faster, and a queue held steady by
    backpressure, are not reported.

``barrier``
    All-slots-ready routines (``barrier.wait``/``barrier.release``). (1) A release joining
    items of different jobs, when one of those jobs delivered to more than one slot of the
    routine (a fan-out request whose branches got paired with another request's); jobs
    that each feed a single slot, such as separate posts, are paired across jobs by
    design and not reported. (2) Uneven filling: one slot's unconsumed backlog exceeds the
    emptiest slot's by more than *barrier_backlog* = 50 items in a ``barrier.wait``, or a
    ``slot.full`` on the routine. (3) A starved barrier: it never released over the trace,
    one slot never held an item, and another piled up *barrier_starved_items* = 5 items.

Every threshold can be overridden by name: ``diagnose(rt, blocking_min_s=0.5)``; unknown
names raise ``TypeError`` listing the valid ones. ``diagnose(..., record=True)`` records one
``finding`` trace event per new finding (name = kind, detail = ``{"title", "severity",
"key"}``); a finding whose ``key`` was already recorded into that tracer (by an earlier call,
or found in the trace itself) is not recorded again.

docs/diagnostics.md has the same in longer form, with examples.
"""

from __future__ import annotations

import bisect
import itertools
import linecache
import math
import os
import re
import statistics as _stats
import sys
import sysconfig
import threading
import time
import traceback
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from ..trace import (
    LANE_POOL,
    LANES,
    PoolCounter,
    PoolSample,
    TraceEvent,
    Tracer,
    _source_events,
    _task_spans,
)
from ._lock_order import detect_lock_order

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FINDING_KINDS",
    "FINDING_NOTEBOOKS",
    "SEVERITIES",
    "Finding",
    "detect_barrier_misuse",
    "detect_blocking",
    "detect_deadlocks",
    "detect_lock_order",
    "detect_pool_exhaustion",
    "detect_shared_mutable_state",
    "diagnose",
]

FINDING_NOTEBOOKS: Mapping[str, str] = MappingProxyType({
    "shared_mutable_state": "01_shared_mutable_state.ipynb",
    "blocking": "02_blocking_the_pool.ipynb",
    "deadlock": "03_deadlocks.ipynb",
    "lock_order": "03_deadlocks.ipynb",
    "pool_exhaustion": "04_pool_exhaustion.ipynb",
    "barrier": "05_barrier_usage.ipynb",
})
"""Finding kind -> the tutorial notebook (in ``notebooks/``) that teaches that pitfall."""

FINDING_KINDS: tuple[str, ...] = tuple(FINDING_NOTEBOOKS)
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

DEFAULT_THRESHOLDS: Mapping[str, int | float] = MappingProxyType({
    "state_min_writes": 1,  # writes of one routine attribute in logic before it is reported
    "blocking_ratio": 10.0,  # times the routine's median run time that counts as an outlier
    "blocking_min_s": 0.1,  # seconds; shorter tasks never count as blocking
    "blocking_queue_wait_s": 0.05,  # seconds another activation's queue wait must overlap
    "blocking_min_peers": 3,  # finished peers a routine needs for its own median
    "blocking_lone_s": 1.0,  # seconds an outlier (far longer than its routine's median) must run
    "exhaustion_window_s": 1.0,  # seconds the queue must keep growing
    "exhaustion_min_growth": 5,  # items the queue must grow by within each window
    "exhaustion_backlog_s": 3.0,  # seconds a saturated pool must keep a backlog
    "exhaustion_wait_s": 1.0,  # seconds activations of that backlog waited (95th percentile)
    "barrier_backlog": 50,  # items one slot may run ahead of the emptiest slot
    "barrier_starved_items": 5,  # items piled in a never-released barrier's slot
})
"""Every threshold ``diagnose`` accepts, with its default (see the module docstring)."""

_POOL_LANES = frozenset({LANE_POOL})
EXHAUSTION_PARTS = 4  # arrivals must beat completions in each of this many parts of a window
LITTLE_HEADROOM = 1.2  # pool size recommended = ceil(arrival rate x service time x this)
MAX_EVENTS = 50  # seqs kept in Finding.events (the first ones)
WAITERS_CAP = 1000  # queue waits counted per long task (evidence "waiting" stops there)
SAMPLE_STACK_LIMIT = 12  # frames of a stack sample taken by diagnose (as the runtime does)

_KIND_ORDER = {k: i for i, k in enumerate(FINDING_KINDS)}
_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
_INT_THRESHOLDS = frozenset({
    "state_min_writes", "blocking_min_peers", "exhaustion_min_growth", "barrier_backlog",
    "barrier_starved_items",
})


# ---------------------------------------------------------------------------------------
# Finding
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One pitfall a detector found: what, how bad, the evidence, and what to do.

    Attributes:
        kind: one of ``FINDING_KINDS``.
        severity: "high", "medium" or "low".
        title: one line naming the routine/lock/slot and the symptom, in plain words.
        evidence: a small dict of numbers and names (counts, seconds, routine ids...).
        fix: a plain-words recommendation.
        events: sequence numbers of the trace events that support the finding (at most
            ``MAX_EVENTS``, oldest first); ``TraceEvent`` records are accepted and stored
            as their ``seq``.
        notebook: the tutorial notebook for this kind (``FINDING_NOTEBOOKS``).
        key: what makes two findings "the same" across ``diagnose`` calls, e.g.
            ``"blocking:fetch"``; defaults to ``"<kind>:<title>"``.

    Raises:
        ValueError: an unknown kind or severity (the message lists the valid ones).
    """

    kind: str
    severity: str
    title: str
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    fix: str = ""
    events: tuple[int, ...] = ()
    notebook: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FINDING_NOTEBOOKS:
            raise ValueError(
                f"unknown finding kind {self.kind!r}; kinds are: {', '.join(FINDING_KINDS)}"
            )
        if self.severity not in _SEVERITY_ORDER:
            raise ValueError(
                f"unknown severity {self.severity!r}; severities are: {', '.join(SEVERITIES)}"
            )
        seqs = tuple(e.seq if isinstance(e, TraceEvent) else int(e) for e in self.events)
        object.__setattr__(self, "events", seqs)
        object.__setattr__(self, "evidence", dict(self.evidence))
        if not self.notebook:
            object.__setattr__(self, "notebook", FINDING_NOTEBOOKS[self.kind])
        if not self.key:
            object.__setattr__(self, "key", f"{self.kind}:{self.title}")

    def to_dict(self) -> dict[str, Any]:
        """The finding as a plain JSON-able dict (``events`` as a list)."""
        return {
            "kind": self.kind, "severity": self.severity, "title": self.title,
            "evidence": dict(self.evidence), "fix": self.fix, "events": list(self.events),
            "notebook": self.notebook, "key": self.key,
        }

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}\n  fix: {self.fix}"


def _fmt_s(seconds: float) -> str:
    """A duration for a title: "0.52 s", "3.1 ms", "12 us"."""
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def _seqs(events: Iterable[TraceEvent]) -> tuple[int, ...]:
    out = sorted({e.seq for e in events if e.seq > 0})
    return tuple(out[:MAX_EVENTS])


# ---------------------------------------------------------------------------------------
# Shared mutable state
# ---------------------------------------------------------------------------------------
def detect_shared_mutable_state(
    events: Sequence[TraceEvent],
    statistics: Any = None,
    *,
    state_writes: Mapping[tuple[str, str], int] | None = None,
    state_min_writes: int = DEFAULT_THRESHOLDS["state_min_writes"],  # type: ignore[assignment]
) -> list[Finding]:
    """Routine attributes assigned inside logic (``state.write`` events).

    Args:
        events: trace events (any order; only ``state.write`` is read).
        statistics: unused; accepted so every detector has the same shape.
        state_writes: ``Runtime.state_writes()`` counts, used when tracing was off or
            dropped events (then threads and jobs are unknown).
        state_min_writes: writes of one attribute needed before it is reported.
    """
    by_key: dict[tuple[str, str], list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "state.write":
            by_key[(str(e.routine), str(e.name))].append(e)
    counts = dict(state_writes or {})
    findings = []
    for key in sorted(set(by_key) | set(counts)):
        routine, attr = key
        evs = by_key.get(key, [])
        writes = max(len(evs), int(counts.get(key, 0)))
        if writes < state_min_writes:
            continue
        threads = len({(e.thread, e.thread_name) for e in evs}) if evs else None
        jobs = len({e.job_id for e in evs if e.job_id is not None}) if evs else None
        shared = (threads or 0) >= 2 or (jobs or 0) >= 2 or (not evs and writes >= 2)
        who = ""
        if evs:
            who = f" from {threads} thread{'s' * (threads != 1)} and {jobs} job{'s' * (jobs != 1)}"
        title = (
            f"Routine {routine!r} assigns self.{attr} inside its logic "
            f"({writes} write{'s' * (writes != 1)}{who}): the attribute is shared by every job"
        )
        fix = (
            f"Don't keep state on the routine object: logic runs concurrently and every job "
            f"sees the same self.{attr}, so updates race and one job's value leaks into "
            f"another's. Keep per-job values in the job: get_current_job().set_data("
            f"{attr!r}, value) and .get_data({attr!r}). Keep counters in the worker with an "
            f"exact update: worker_state.modify_routine_state({routine!r}, lambda s: "
            f"{{**s, {attr!r}: s.get({attr!r}, 0) + 1}}). Runtime(strict=True) makes such "
            "writes raise SharedStateError, so tests catch them."
        )
        findings.append(Finding(
            "shared_mutable_state", "high" if shared else "medium", title,
            {"routine": routine, "attribute": attr, "writes": writes, "threads": threads,
             "jobs": jobs},
            fix, _seqs(evs), key=f"shared_mutable_state:{routine}.{attr}",
        ))
    return findings


# ---------------------------------------------------------------------------------------
# Tasks and queue waits rebuilt from the trace (shared by blocking and exhaustion)
# ---------------------------------------------------------------------------------------
class _Span(NamedTuple):
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


def _tasks(events: Sequence[TraceEvent], now_ns: int, lanes: frozenset[str] = frozenset(LANES),
           ) -> list[_Span]:
    """The tasks ``routilux.trace.task_spans`` rebuilds, on the given lanes, by start.

    Blocking and exhaustion look at ``"pool"`` lanes only: a coroutine awaiting on the
    event loop's lane, or logic on a remote lane, holds no pool thread (issue 12).
    """
    by_seq = {e.seq: e for e in events if e.kind in ("task.started", "task.finished")}
    spans = []
    for t in _task_spans(events, now_ns):
        if t.lane not in lanes:
            continue
        evs = tuple(by_seq[q] for q in (t.start_seq, t.end_seq) if q in by_seq)
        spans.append(_Span(t.thread, t.thread_name, t.routine, t.job_id, t.start_ns, t.end_ns,
                           t.run_s, t.finished, evs))
    return spans


class _Wait(NamedTuple):
    begin_ns: int
    end_ns: int
    ev: TraceEvent


def _queue_waits(events: Sequence[TraceEvent], now_ns: int) -> list[_Wait]:
    """When each activation waited in the run queue, sorted by the end of the wait.

    A started task waited ``value`` seconds before its ``task.started``. A ``task.queued``
    with no matching start (counted per job, routine and slot, since a queued and a started
    event can land in either order) is still waiting: until now, or until its job ended.
    """
    waits: list[_Wait] = []
    queued: dict[tuple[Any, ...], list[TraceEvent]] = defaultdict(list)
    started: dict[tuple[Any, ...], int] = defaultdict(int)
    job_end: dict[str, int] = {}
    for e in events:
        kind = e.kind
        if kind == "task.started":
            started[(e.job_id, e.routine, e.name)] += 1
            if isinstance(e.value, (int, float)) and e.value > 0:
                waits.append(_Wait(e.ts_ns - int(e.value * 1e9), e.ts_ns, e))
        elif kind == "task.queued":
            queued[(e.job_id, e.routine, e.name)].append(e)
        elif kind in ("job.completed", "job.failed", "job.cancelled") and e.job_id is not None:
            job_end[e.job_id] = e.ts_ns
    for key, qs in queued.items():
        pending = len(qs) - started.get(key, 0)
        for q in qs[len(qs) - pending:] if pending > 0 else ():
            end = job_end.get(q.job_id, now_ns) if q.job_id is not None else now_ns
            if end > q.ts_ns:
                waits.append(_Wait(q.ts_ns, end, q))
    waits.sort(key=lambda w: w.end_ns)
    return waits


def _pool_size(events: Sequence[TraceEvent], statistics: Any,
               series: Sequence[PoolSample] | None = None) -> int | None:
    """The pool's size as of the trace's end (``pool_series``), else the runtime's."""
    if series is None:
        series = PoolCounter().feed(events)
    if series and series[-1].size:
        return int(series[-1].size)
    size = getattr(statistics, "pool_size", None)
    return int(size) if size else None


STALL_FACTOR = 1.3  # a gap between monitor samples this many intervals long is a stall
UNDISPATCHED_SHARE = 0.5  # an outlier's time with idle threads and queued work: not blocking


def _process_stalls(events: Sequence[TraceEvent]) -> list[tuple[int, int]]:
    """When the whole process was descheduled: the runtime's monitor missed its tick.

    The monitor records ``queue.depth`` every ~100 ms from its own thread, whatever the
    pool does; a thread blocked in logic (sleep, I/O, a lock) does not delay it. When the
    gap to the next sample is over ``STALL_FACTOR`` intervals, the process did not run
    from the tick it missed to the sample that came: on a loaded machine (issue 12, two
    CPU hogs) that stretched 20 ms tasks to 0.2 s on every thread at once. The interval is
    the median gap; a trace with fewer than three samples has no stalls.
    """
    ticks = [e.ts_ns for e in events if e.kind == "queue.depth"]
    if len(ticks) < 3:
        return []
    ticks.sort()
    interval = _stats.median(b - a for a, b in itertools.pairwise(ticks))
    if interval <= 0:
        return []
    stalls = [(a + int(interval), b) for a, b in itertools.pairwise(ticks)
              if b - a > STALL_FACTOR * interval]
    end = max(e.ts_ns for e in events)  # the monitor missed its ticks up to the trace's end
    if end - ticks[-1] > STALL_FACTOR * interval:
        stalls.append((ticks[-1] + int(interval), end))
    return stalls


def _overlap_s(intervals: Sequence[tuple[int, int]], start: int, end: int) -> float:
    """Seconds of [start, end] covered by ``intervals`` (disjoint, sorted)."""
    total = 0
    for a, b in intervals:
        if b <= start:
            continue
        if a >= end:
            break
        total += min(b, end) - max(a, start)
    return total / 1e9


# ---------------------------------------------------------------------------------------
# Stack samples: where a blocked task is
# ---------------------------------------------------------------------------------------
_FRAME_RE = re.compile(r"^(?P<file>.*):(?P<line>\d+) in (?P<func>.*)$")
_CELL_RE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py|<ipython-input-[^>]*>)$")
_CALL_RE = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
_WAITING_NAMES = frozenset({
    "sleep", "wait", "wait_for", "acquire", "join", "get", "recv", "recv_into", "recvfrom",
    "read", "readline", "readinto", "accept", "connect", "select", "poll", "urlopen",
    "request", "getresponse", "communicate", "result", "run_until_complete",
    "_wait_for_tstate_lock",
})
_ROUTILUX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB_DIRS = tuple(
    os.path.abspath(p) for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib")}
    if p
)


class _Frame(NamedTuple):
    file: str
    line: int
    func: str


def _frames(stack: Any) -> list[_Frame]:
    out = []
    if not isinstance(stack, (list, tuple)):
        return out
    for text in stack:
        m = _FRAME_RE.match(str(text))
        if m:
            out.append(_Frame(m["file"], int(m["line"]), m["func"]))
    return out


def _is_library(path: str) -> bool:
    p = os.path.abspath(path)
    if p.startswith(_ROUTILUX_DIR + os.sep):
        return True
    if "site-packages" in p or "dist-packages" in p:
        return False  # a third-party client (requests...) is where the user's call blocks
    return any(p.startswith(d + os.sep) for d in _LIB_DIRS)


def _place(frame: _Frame) -> str:
    if _CELL_RE.search(frame.file):
        return f"notebook cell line {frame.line}"
    return f"{os.path.basename(frame.file)}:{frame.line}"


def _where(stack: Any) -> tuple[str | None, bool]:
    """(e.g. "time.sleep in fetch() at notebook cell line 4", whether it is waiting)."""
    frames = _frames(stack)
    if not frames:
        return None, False
    inner = frames[-1]
    user = next((f for f in reversed(frames) if not _is_library(f.file)), inner)
    code = linecache.getline(user.file, user.line).strip()
    calls = _CALL_RE.findall(code)
    call = next((c for c in calls if c.rsplit(".", 1)[-1] in _WAITING_NAMES), None)
    waiting = call is not None or inner.func in _WAITING_NAMES
    what = call or (code if code and len(code) <= 60 else None)
    text = f"{what} in {user.func}() at {_place(user)}" if what \
        else f"{user.func}() at {_place(user)}"
    if inner is not user and call is None:
        text += f", inside {inner.func}() ({os.path.basename(inner.file)}:{inner.line})"
    return text, waiting


# ---------------------------------------------------------------------------------------
# Blocking the pool
# ---------------------------------------------------------------------------------------
def detect_blocking(
    events: Sequence[TraceEvent],
    statistics: Any = None,
    *,
    running: Sequence[Mapping[str, Any]] = (),
    now_ns: int | None = None,
    blocking_ratio: float = DEFAULT_THRESHOLDS["blocking_ratio"],
    blocking_min_s: float = DEFAULT_THRESHOLDS["blocking_min_s"],
    blocking_queue_wait_s: float = DEFAULT_THRESHOLDS["blocking_queue_wait_s"],
    blocking_min_peers: int = DEFAULT_THRESHOLDS["blocking_min_peers"],  # type: ignore[assignment]
    blocking_lone_s: float = DEFAULT_THRESHOLDS["blocking_lone_s"],
) -> list[Finding]:
    """Tasks that held a pool thread far longer than their peers while others queued.

    Args:
        events: trace events in seq order.
        statistics: a ``RuntimeStatistics`` (for the pool size when no sample has it).
        running: live tasks (``Runtime.running_tasks()`` entries, optionally with a
            ``stack`` list) whose stack is more recent than any ``task.sample``.
        now_ns: ``time.monotonic_ns()`` for a live runtime: where unfinished tasks end;
            default the last event's timestamp.
        blocking_ratio / blocking_min_s / blocking_queue_wait_s / blocking_min_peers /
            blocking_lone_s: see the module docstring.
    """
    if not events:
        return []
    if now_ns is None:
        now_ns = max(e.ts_ns for e in events)
    stalls = _process_stalls(events)
    stalled: dict[tuple[int, str, int], float] = {}
    spans = []
    for s in _tasks(events, now_ns, _POOL_LANES):
        lost = _overlap_s(stalls, s.start_ns, s.end_ns)
        if lost > 0:  # judge the time the process ran, not the time it was descheduled
            stalled[(s.thread, s.thread_name, s.start_ns)] = lost
            s = s._replace(dur_s=max(0.0, s.dur_s - lost))
        spans.append(s)
    long_spans = [s for s in spans if s.dur_s >= blocking_min_s]
    if not long_spans:
        return []
    waits = _queue_waits(events, now_ns)
    wait_ends = [w.end_ns for w in waits]
    max_wait_ns = max((w.end_ns - w.begin_ns for w in waits), default=0)
    series = PoolCounter().feed(events)  # = routilux.trace.pool_series(events)
    series_ts = [p.ts_ns for p in series]
    size = _pool_size(events, statistics, series)
    by_routine: dict[Any, list[float]] = defaultdict(list)
    for s in spans:
        if s.finished:
            by_routine[s.routine].append(s.dur_s)
    for durs in by_routine.values():
        durs.sort()
    every = sorted(d for durs in by_routine.values() for d in durs)
    long_starts = sorted(s.start_ns for s in long_spans)
    long_ends = sorted(s.end_ns for s in long_spans)
    min_overlap_ns = int(blocking_queue_wait_s * 1e9)

    def median_without(durs: list[float], span: _Span) -> float | None:
        """The median of sorted ``durs`` without ``span``'s own run time, in O(log n)."""
        skip = None
        if span.finished:
            k = bisect.bisect_left(durs, span.dur_s)
            if k < len(durs) and durs[k] == span.dur_s:
                skip = k
        n = len(durs) - (skip is not None)
        if n < blocking_min_peers or n == 0:
            return None

        def nth(k: int) -> float:
            return durs[k + 1] if skip is not None and k >= skip else durs[k]

        mid = n // 2
        return nth(mid) if n % 2 else (nth(mid - 1) + nth(mid)) / 2

    def undispatched(span: _Span) -> float:
        """The share of ``span`` during which a pool thread was idle while work queued."""
        k = max(0, bisect.bisect_right(series_ts, span.start_ns) - 1)
        idle_ns = 0
        while k < len(series) and series[k].ts_ns < span.end_ns:
            p = series[k]
            nxt = series[k + 1].ts_ns if k + 1 < len(series) else span.end_ns
            lo, hi = max(p.ts_ns, span.start_ns), min(nxt, span.end_ns)
            if hi > lo and p.queued > 0 and p.size and p.busy < p.size:
                idle_ns += hi - lo
            k += 1
        return idle_ns / max(1, span.end_ns - span.start_ns)

    def long_running_at(ts: int) -> int:
        return bisect.bisect_right(long_starts, ts) - bisect.bisect_left(long_ends, ts)

    def waiters_of(span: _Span, cap: int) -> list[_Wait]:
        """Other activations whose queue wait overlapped the task (at most ``cap``)."""
        out = []
        lo = bisect.bisect_left(wait_ends, span.start_ns + min_overlap_ns)
        hi = bisect.bisect_right(wait_ends, span.end_ns + max_wait_ns)
        for k in range(lo, hi):  # no slice: a long queue would be copied per task
            w = waits[k]
            if w.ev is not span.evs[0] and \
                    min(w.end_ns, span.end_ns) - max(w.begin_ns, span.start_ns) >= min_overlap_ns:
                out.append(w)
                if len(out) >= cap:
                    break
        return out

    flagged: dict[Any, list[tuple[_Span, str, float | None, int, list[TraceEvent]]]] = \
        defaultdict(list)
    for span in long_spans:
        # The pool as it was while the task ran: from the sample in effect at its start.
        i = max(0, bisect.bisect_right(series_ts, span.start_ns) - 1)
        j = bisect.bisect_right(series_ts, span.end_ns)
        full = [p for p in series[i:j] if p.queued > 0 and p.size and p.busy >= p.size]
        own = median_without(by_routine.get(span.routine, []), span)
        ref = own if own is not None else median_without(every, span)
        if ref is not None and span.dur_s >= blocking_ratio * ref:
            shape = "outlier"
            if span.dur_s < blocking_lone_s:
                # A short task stretched tenfold: on a loaded machine the scheduler alone
                # does that (a 20 ms sleep took 0.55 s beside two CPU hogs, its stack still
                # in time.sleep), so an outlier must hold its thread blocking_lone_s.
                continue
            if undispatched(span) >= UNDISPATCHED_SHARE:
                # Threads sat idle with work queued meanwhile: the queue waited for the
                # scheduler to run them (a loaded machine), not for this task (issue 12).
                continue
        elif own is not None and own < blocking_min_s:
            continue  # its routine's tasks are short: a few stretched ones are not "all long"
        else:  # no short peers: did long tasks hold every thread while the queue waited?
            full = [p for p in full
                    if long_running_at(max(p.ts_ns, span.start_ns)) >= (p.size or 1)]
            if not full:
                continue
            shape = "saturated"
        # Saturated samples already give the queue depth: then a few waiters suffice.
        waiters = waiters_of(span, 10 if full else WAITERS_CAP)
        waiting = max(len(waiters), max((p.queued for p in full), default=0))
        if waiting <= 0:
            continue  # nobody waited behind it: it cost a thread, not a queue
        support = list(span.evs) + [w.ev for w in waiters[:10]]
        flagged[span.routine].append((span, shape, ref, waiting, support))
    if not flagged:
        return []

    task_samples: dict[int, list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "task.sample":
            task_samples[e.thread].append(e)
    live = {r.get("thread"): r for r in running if r.get("stack")}

    findings = []
    for routine, hits in flagged.items():
        hits.sort(key=lambda h: -h[0].dur_s)
        span, shape, ref, _w, _s = hits[0]
        waiting = max(h[3] for h in hits)
        support = [e for h in hits for e in h[4]]
        # Where it waits: the place most of the flagged tasks' stacks show (ties: the
        # longest task's). Each task is sampled once, at a monitor tick after it ran
        # 0.1 s; on a loaded machine a late tick can land just after the wait ended (the
        # loop line after a time.sleep), so one task's sample alone may name the wrong
        # line (a soak run of notebook 02 beside two CPU hogs, issue 12).
        seen: list[tuple[tuple[str | None, bool], Any, TraceEvent | None]] = []
        for s, *_ in hits:
            sample = next((e for e in task_samples.get(s.thread, ())
                           if s.start_ns <= e.ts_ns <= s.end_ns), None)
            if sample is not None:
                seen.append((_where(sample.detail), sample.detail, sample))
            elif not s.finished and s.thread in live:
                seen.append((_where(live[s.thread]["stack"]), live[s.thread]["stack"], None))
        stack = None
        where, is_waiting = _where(None)
        if seen:
            votes = Counter(place for place, _, _ in seen)
            best = votes.most_common(1)[0][0]  # equal counts: the first seen wins
            (where, is_waiting), stack, _ = next(x for x in seen if x[0] == best)
            support += [x[2] for x in seen if x[0] == best and x[2] is not None]
        any_outlier = any(h[1] == "outlier" for h in hits)
        unfinished = sum(1 for h in hits if not h[0].finished)
        so_far = "" if span.finished else " so far"
        if any_outlier and ref is not None:
            ratio = span.dur_s / ref if ref > 0 else math.inf
            head = (f"Routine {routine!r} held a pool thread for {_fmt_s(span.dur_s)}{so_far} "
                    f"({ratio:.0f}x its median of {_fmt_s(ref)})")
        else:
            head = (f"Routine {routine!r} held all {size or 'the'} pool threads with tasks "
                    f"of up to {_fmt_s(span.dur_s)}{so_far}")
        lost = stalled.get((span.thread, span.thread_name, span.start_ns), 0.0)
        if lost:
            head += f" (not counting {_fmt_s(lost)} the whole process was stalled)"
        title = f"{head} while {waiting} activation{'s' * (waiting != 1)} waited in the queue"
        if where:
            title += f"; it {'blocks' if is_waiting else 'was'} at {where}"
        bigger = max(2 * (size or 1), (size or 0) + waiting)
        fix = (
            "Keep blocking calls off the pool's threads: while a logic sleeps or waits for I/O "
            "it holds a thread, and activations queue behind it. Use async I/O for the wait "
            "(await it instead of blocking), or move the blocking call out of the logic "
            "(do it before posting, then post the result); for I/O-bound routines give the "
            f"runtime a larger pool, e.g. Runtime(thread_pool_size={bigger}) or "
            f"runtime.resize({bigger}) (2-4x os.cpu_count() for I/O)."
        )
        if where and not is_waiting:
            fix += (" If the time is spent computing (CPU-bound), more threads will not help: "
                    "split the work into smaller activations or run it in a process pool.")
        findings.append(Finding(
            "blocking", "high" if shape == "saturated" or waiting >= (size or 1) else "medium",
            title,
            {"routine": routine, "tasks": len(hits), "unfinished": unfinished,
             "longest_s": round(span.dur_s, 4),
             "median_s": None if ref is None else round(ref, 6),
             "ratio": None if not ref else round(span.dur_s / ref, 1),
             "waiting": waiting, "pool_size": size, "shape": shape if not any_outlier
             else "outlier", "thread": span.thread_name, "job_id": span.job_id,
             "where": where, "stack": list(stack)[-5:] if isinstance(stack, (list, tuple))
             else None, "stalled_s": round(lost, 4)},
            fix, _seqs(support), key=f"blocking:{routine}",
        ))
    return findings


# ---------------------------------------------------------------------------------------
# Deadlocks
# ---------------------------------------------------------------------------------------
def detect_deadlocks(events: Sequence[TraceEvent], statistics: Any = None) -> list[Finding]:
    """Wait-for cycles among traced locks (``deadlock.detected``), one finding per lock set."""
    groups: dict[frozenset[str], list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind != "deadlock.detected":
            continue
        cycle = e.detail.get("cycle") if isinstance(e.detail, Mapping) else None
        locks: set[str] = set()
        if isinstance(cycle, list):
            for step in cycle:
                if isinstance(step, Mapping):
                    locks.update(str(step[k]) for k in ("holds", "waits_for") if k in step)
        if not locks and e.name:
            locks.update(n.strip() for n in str(e.name).split(","))
        groups[frozenset(locks)].append(e)
    findings = []
    for locks, evs in groups.items():
        first = evs[0]
        detail = first.detail if isinstance(first.detail, Mapping) else {}
        cycle = [s for s in detail.get("cycle") or () if isinstance(s, Mapping)]
        message = detail.get("message") or "; ".join(
            f"{s.get('thread_name')} holds {s.get('holds')!r} and waits for "
            f"{s.get('waits_for')!r}" for s in cycle
        ) or f"threads wait for each other's locks {', '.join(sorted(locks))}"
        order = sorted(locks)
        ordered = " then ".join(repr(n) for n in order)
        routines = sorted({str(s["routine"]) for s in cycle if s.get("routine") is not None})
        times = len(evs)
        title = f"Deadlock: {message}" + (f" (seen {times} times)" if times > 1 else "")
        fix = (
            f"Take these locks in one fixed order everywhere (for example always {ordered}), "
            "so no thread can hold one while waiting for a lock another thread holds before "
            "it; keep lock scopes small, and acquire with a timeout (lock.acquire(timeout=...)"
            ") so a wait that cannot finish gives up instead of hanging."
        )
        findings.append(Finding(
            "deadlock", "high", title,
            {"locks": order, "threads": [str(s.get("thread_name")) for s in cycle],
             "routines": routines, "occurrences": times, "message": message},
            fix, _seqs(evs), key="deadlock:" + ",".join(order),
        ))
    return findings


# ---------------------------------------------------------------------------------------
# Pool exhaustion
# ---------------------------------------------------------------------------------------
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
    n = len(series)
    if n < 2:
        return []
    ts = [p.ts_ns for p in series]
    depth = [p.queued for p in series]
    window_ns = int(exhaustion_window_s * 1e9)
    part_ns = window_ns // EXHAUSTION_PARTS
    arr_ts = sorted(e.ts_ns for e in events if e.kind == "task.queued")
    fin_ts = sorted(e.ts_ns for e in events if e.kind == "task.finished")
    arrivals = [bisect.bisect_right(arr_ts, t) for t in ts]  # task.queued up to each point
    finishes = [bisect.bisect_right(fin_ts, t) for t in ts]  # task.finished up to each point

    def count(stamps: list[int], a: int, b: int) -> int:  # stamps in (a, b]
        return bisect.bisect_right(stamps, b) - bisect.bisect_right(stamps, a)

    def lagging(t: int) -> bool:  # arrivals outnumber completions in every part of the window
        for q in range(EXHAUSTION_PARTS):
            a, b = t + q * part_ns, t + (q + 1) * part_ns
            if count(arr_ts, a, b) <= count(fin_ts, a, b):
                return False
        return True

    # Windows [i, j] where the queue grew, never drained, and fell behind all along.
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
        if depth[j] - depth[i] >= exhaustion_min_growth and lagging(ts[i]):
            rising.append((i, j))
    if not rising:
        return _backlog(events, statistics, series, exhaustion_backlog_s, exhaustion_wait_s)
    # Merge overlapping windows; report the longest stretch.
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
    lam = (arrivals[j] - arrivals[i]) / dur_s
    mu = (finishes[j] - finishes[i]) / dur_s
    size = series[j].size or _pool_size(events, statistics, series)
    needed = lam * mean_s if mean_s is not None else None
    peak = max(depth[i:j + 1])
    if mu > 0 and peak / mu < exhaustion_wait_s:
        # It fell behind, but the queue it built costs an arrival less than
        # exhaustion_wait_s: on a loaded machine a pool sized by Little's law does that.
        return _backlog(events, statistics, series, exhaustion_backlog_s, exhaustion_wait_s)
    rec = None
    if needed is not None and (size is None or needed > size):
        rec = max(math.ceil(needed * LITTLE_HEADROOM), (size or 0) + 1)
    title = (
        f"Pool exhausted: the run queue grew from {depth[i]} to {depth[j]} over {dur_s:.1f} s "
        f"(arrivals {lam:.0f}/s, completions {mu:.0f}/s"
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
    if isinstance(limit, int) and peak >= limit:
        fix += (f" Backpressure is already on (max_queue_size={limit}) and the queue reached "
                "it, so producers now wait: what remains is the pool size.")
    severe = peak >= 10 * (size or 1) or dur_s >= 3 * exhaustion_window_s
    support = [e for e in events if e.kind == "task.queued" and t0 <= e.ts_ns <= t1]
    return [Finding(
        "pool_exhaustion", "high" if severe else "medium", title,
        {"start_depth": depth[i], "end_depth": depth[j], "peak_depth": peak,
         "duration_s": round(dur_s, 3), "arrival_rate": round(lam, 2),
         "completion_rate": round(mu, 2),
         "mean_service_s": None if mean_s is None else round(mean_s, 6),
         "pool_size": size, "needed_threads": None if needed is None else round(needed, 2),
         "recommended_pool_size": rec, "stretches": len(merged)},
        fix, _seqs(support), key="pool_exhaustion",
    )]


BACKLOG_SATURATION = 0.9  # share of a backlog's time every pool thread must be busy


def _backlog(events: Sequence[TraceEvent], statistics: Any, series: Sequence[PoolSample],
             backlog_s: float, wait_s: float) -> list[Finding]:
    """A burst the pool drains for seconds: the queue never empties, every thread stays busy,
    and activations wait far longer than they run (a job's latency is mostly queue wait).

    The growth rule misses this when the arrivals came in one burst (``post`` in a loop):
    the queue grew for a moment only, then the pool needed seconds to work it off.
    """
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
    if best is None:
        return []
    i, j, dur_s = best
    t0, t1 = series[i].ts_ns, series[j].ts_ns
    spans = [s for s in _tasks(events, t1, _POOL_LANES) if t0 <= s.start_ns <= t1]
    # Time the whole process was stalled is no one's wait for a thread (see blocking).
    stalls = _process_stalls(events)
    dur_s -= _overlap_s(stalls, t0, t1)
    if dur_s < backlog_s:
        return []
    waits = sorted(
        max(0.0, w - _overlap_s(stalls, s.start_ns - int(w * 1e9), s.start_ns))
        for s in spans if s.evs and s.evs[0].kind == "task.started"
        and isinstance(s.evs[0].value, (int, float)) for w in (float(s.evs[0].value),))
    if not waits:
        return []
    p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
    if p95 < wait_s:
        return []  # a backlog, but one that moves quickly (bounded by backpressure, say)
    service = [s.dur_s for s in spans if s.finished]
    mean_s = _stats.fmean(service) if service else None
    size = series[i].size or _pool_size(events, statistics, series)
    peak = max(p.queued for p in series[i:j + 1])
    arrivals = sum(1 for e in events if e.kind == "task.queued" and t0 <= e.ts_ns <= t1)
    lam, mu = arrivals / dur_s, len(service) / dur_s
    rec = max(size + 1, math.ceil(size * p95 / wait_s)) if size else None
    work = f" for {_fmt_s(mean_s)} of work each" if mean_s is not None else ""
    title = (f"Pool exhausted: all {size} threads stayed busy for {dur_s:.1f} s while up to "
             f"{peak} activations waited in the run queue; they waited {_fmt_s(p95)} "
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
        fix, _seqs(support), key="pool_exhaustion",
    )]


# ---------------------------------------------------------------------------------------
# Barriers (all_slots_ready)
# ---------------------------------------------------------------------------------------
def detect_barrier_misuse(
    events: Sequence[TraceEvent],
    statistics: Any = None,
    *,
    barrier_backlog: int = DEFAULT_THRESHOLDS["barrier_backlog"],  # type: ignore[assignment]
    barrier_starved_items: int = DEFAULT_THRESHOLDS["barrier_starved_items"],  # type: ignore[assignment]
) -> list[Finding]:
    """All-slots-ready routines that mix jobs, fill unevenly, or never complete a set.

    Args:
        events: trace events (any order).
        statistics: unused; accepted so every detector has the same shape.
        barrier_backlog / barrier_starved_items: see the module docstring.
    """
    waits: dict[str, list[TraceEvent]] = defaultdict(list)
    releases: dict[str, list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "barrier.wait":
            waits[str(e.routine)].append(e)
        elif e.kind == "barrier.release":
            releases[str(e.routine)].append(e)
    barriers = set(waits) | set(releases)
    if not barriers:
        return []
    fulls: dict[str, list[TraceEvent]] = defaultdict(list)
    job_slots: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    fed: dict[str, set[str]] = defaultdict(set)
    for e in events:
        r = str(e.routine)
        if r not in barriers:
            continue
        if e.kind == "slot.full":
            fulls[r].append(e)
        elif e.kind == "slot.enqueue":
            fed[r].add(str(e.name))
            if e.job_id is not None:
                job_slots[r][e.job_id].add(str(e.name))

    findings = []
    for r in sorted(barriers):
        rel = releases.get(r, [])
        # (1) joins of different jobs, where one of them is a fan-out request.
        fanout = {j for j, slots in job_slots[r].items() if len(slots) >= 2}
        mixed = []
        for e in rel:
            jobs = e.detail if isinstance(e.detail, (list, tuple)) else None
            distinct = set(jobs) if jobs is not None else None
            n_jobs = len(distinct) if distinct is not None else \
                int(e.value) if isinstance(e.value, (int, float)) else 1
            if n_jobs <= 1:
                continue
            if distinct is not None and job_slots[r] and not (distinct & fanout):
                continue  # each job feeds one slot (separate posts): pairing by design
            mixed.append(e)
        if mixed:
            example = mixed[0].detail if isinstance(mixed[0].detail, (list, tuple)) else None
            title = (f"Barrier {r!r} joined items of different jobs in {len(mixed)} of "
                     f"{len(rel)} activations: one request's data was paired with another's")
            fix = ("all_slots_ready pairs the oldest item of each slot in arrival order, "
                   "whatever job it belongs to, so concurrent requests sharing a worker get "
                   "crossed. Use all_slots_ready_policy(match_job=True) to join only items of "
                   "the same job, or give each request its own worker (runtime.exec(flow), "
                   "then post(..., worker_id=...)).")
            findings.append(Finding(
                "barrier", "high", title,
                {"routine": r, "problem": "mixed_jobs", "mixed_joins": len(mixed),
                 "joins": len(rel),
                 "example_jobs": [str(j)[:8] for j in example] if example else None},
                fix, _seqs(mixed), key=f"barrier:{r}:mixed_jobs",
            ))
        # (3) never released, one slot never fed, another piling up.
        ws = waits.get(r, [])
        counts = [e.detail for e in ws if isinstance(e.detail, Mapping)]
        slots = sorted({str(s) for c in counts for s in c})
        starved = False
        if not rel and counts:
            never = [s for s in slots if all(not c.get(s) for c in counts) and s not in fed[r]]
            piled = {s: max(int(c.get(s) or 0) for c in counts) for s in slots}
            top = max(piled, key=lambda s: piled[s]) if piled else None
            if never and top is not None and piled[top] >= barrier_starved_items:
                starved = True
                missing = ", ".join(repr(s) for s in never)
                title = (f"Barrier {r!r} never ran: slot{'s' * (len(never) > 1)} {missing} "
                         f"received no data while {piled[top]} items wait in {top!r}")
                fix = (f"An all-slots-ready routine runs only when every slot holds an item, "
                       f"so with nothing arriving in {missing} it never runs and the other "
                       f"slots fill up silently. Connect an event to {missing} "
                       "(flow.connect(...)) or post to it; if the routine should run with "
                       "whatever arrives, use immediate_policy() instead of a barrier.")
                findings.append(Finding(
                    "barrier", "high", title,
                    {"routine": r, "problem": "starved", "empty_slots": never,
                     "waiting_items": piled[top], "waits": len(ws)},
                    fix, _seqs(ws[:MAX_EVENTS]), key=f"barrier:{r}:starved",
                ))
        # (2) slots filling unevenly.
        full = fulls.get(r, [])
        worst, worst_e = -1, None
        for e in ws:
            c = e.detail
            if isinstance(c, Mapping) and len(c) >= 2:
                vals = [int(v or 0) for v in c.values()]
                gap = max(vals) - min(vals)
                if gap > worst:
                    worst, worst_e = gap, e
        if starved and not full:
            continue
        if worst > barrier_backlog or full:
            c = dict(worst_e.detail) if worst_e is not None else {}
            hi = max(c, key=lambda s: c[s] or 0) if c else (full[0].name if full else "?")
            lo = min(c, key=lambda s: c[s] or 0) if c else None
            if c:
                title = (f"Barrier {r!r} fills unevenly: slot {hi!r} ran {worst} items ahead "
                         f"of {lo!r} ({c[hi]} vs {c[lo]} waiting)")
            else:
                title = f"Barrier {r!r} fills unevenly"
            if full:
                title += f"; {len(full)} item{'s' * (len(full) != 1)} refused as slot " \
                         f"{full[0].name!r} was full"
            fix = (f"A barrier takes one item from every slot per activation, so when {hi!r} "
                   "is fed faster than the others its surplus only grows, until the slot is "
                   "full and arrivals raise SlotQueueFullError. Feed the slots at matching "
                   "rates (one item per slot per request), or don't use a barrier here: "
                   "use immediate_policy() and combine the data in logic or in the job "
                   "(get_current_job().set_data), or batch_size_policy(n) for batches.")
            support = ([worst_e] if worst_e is not None else []) + full[:MAX_EVENTS - 1]
            findings.append(Finding(
                "barrier", "high" if full else "medium", title,
                {"routine": r, "problem": "uneven", "max_backlog_gap": max(worst, 0),
                 "ahead_slot": hi, "behind_slot": lo, "refused": len(full),
                 "counts": c or None},
                fix, _seqs(support), key=f"barrier:{r}:uneven",
            ))
    return findings


# ---------------------------------------------------------------------------------------
# diagnose
# ---------------------------------------------------------------------------------------
_recorded: weakref.WeakKeyDictionary[Tracer, set[str]] = weakref.WeakKeyDictionary()
_record_lock = threading.Lock()


def _check_thresholds(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise TypeError(
            f"diagnose() got unknown threshold(s) {', '.join(unknown)}; thresholds are: "
            f"{', '.join(DEFAULT_THRESHOLDS)}"
        )
    out = dict(DEFAULT_THRESHOLDS)
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"threshold {name} must be a number, got {value!r}")
        if name in _INT_THRESHOLDS:
            if value != int(value) or value < 1:
                raise ValueError(f"threshold {name} must be a whole number >= 1, got {value!r}")
            value = int(value)
        elif not value > 0 or math.isinf(value):
            raise ValueError(f"threshold {name} must be a positive number of seconds or "
                             f"a positive ratio, got {value!r}")
        out[name] = value
    return out


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
    th = _check_thresholds(thresholds)
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
            running = _live_stacks(source, th["blocking_min_s"])
        events = tracer.read(0) if tracer is not None else []
    else:  # a Tracer, a saved trace's path or TraceEvents: read as every trace reader does
        if isinstance(source, Tracer):
            tracer = source
        events = _source_events(source, "diagnose")
    events = [e for e in events if e.kind != "finding"]
    findings: list[Finding] = []
    findings += detect_shared_mutable_state(
        events, stats, state_writes=writes, state_min_writes=th["state_min_writes"])
    findings += detect_blocking(
        events, stats, running=running, now_ns=now_ns, blocking_ratio=th["blocking_ratio"],
        blocking_min_s=th["blocking_min_s"], blocking_queue_wait_s=th["blocking_queue_wait_s"],
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
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], _KIND_ORDER[f.kind], f.title))
    if record and tracer is not None and findings:
        _record(tracer, findings)
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
