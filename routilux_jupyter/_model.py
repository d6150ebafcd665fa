"""Trace events -> what the dashboard draws: lanes, bars, samples, counters, locks, findings.

Pure data: no widgets, no threads, no runtime. The live dashboard feeds it the events its
pump reads (``tracer.read_rows(since)``: ``read`` as plain tuples) and one ``statistics()``
sample per tick, then asks for a ``delta``: the compact message the browser applies. The
static charts ask for a ``view``.

Design:

- One lane per recording thread that ran a task or waited for a lock, keyed by
  ``(thread, thread_name)`` because idents are recycled; one extra lane per all-slots-ready
  routine that held items at its barrier. Idle is the absence of a bar on a thread lane.
- A bar is ``[lane, t0, t1, kind, routine]``: ``kind`` is ``"task"``, ``"lock"`` (waiting
  for a traced lock) or ``"barrier"`` (items waiting for the rest of a set); ``routine``
  indexes ``routines``. Times are seconds since the model's origin (its first timestamp).
- History is bounded twice: bars older than ``window_s`` are pruned, and at most
  ``MAX_BARS`` are kept. Bars closer together than the merge gap on one lane merge (same
  kind; same routine, or a predecessor too thin to see), so a lane busy with tiny tasks costs
  a few bars per tick instead of thousands. By default the gap follows the time shown,
  ``min(window_s, seconds seen so far) / 4000``: always well below one pixel of a view that
  shows that much time, so merging never hides what could be seen (a short run, zoomed to
  fill the width, keeps its fine detail).
- ``feed`` is the only per-event code and stays a flat loop over tuples: a refresh over
  100,000 events is budgeted at 200 ms, reading included (benchmarks/dashboard_overhead.py).
- The "Queue depth and busy threads" samples are ``routilux.trace.pool_series``, folded
  incrementally by a ``PoolCounter``: one sample per change, exact at every instant, the
  same series the detectors read (issue 12). ``queue.depth`` events (taken every ~100 ms)
  and ``statistics()`` snapshots are never drawn while the trace has events; a runtime
  that does not trace gets its ``statistics()`` snapshots drawn instead. ``view()`` holds
  every sample; a message with more than ``MAX_MESSAGE_SAMPLES`` keeps, per bucket below
  a pixel of the view, the first and last state and the peaks (``_message_samples``).
- Automatic sizing (``thread_pool_size="auto"``): each ``pool.autosize`` event is a
  ``Decision`` ``(t, action, old, new, reason, numbers)``, drawn as a marker on the
  pool-size line (the size line itself is the pool series' ``size``). They are rare (a
  few a second at most) and go through ``_other``, off the hot loop; the live model keeps
  those inside the window (at most ``MAX_DECISIONS``) and a message carries at most
  ``MAX_MESSAGE_DECISIONS`` new ones. Whether sizing is automatic now, and the
  controller's latest reason (holds included, which are not traced), come from
  ``statistics()`` (``set_auto``); a trace alone tells it from its last on/off decision.

Rejected: building a pandas frame per tick (allocates per column, ~10x slower for small
batches); keeping every bar and thinning at draw time (unbounded memory in a long session).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from routilux.trace import PoolCounter, TraceEvent, task_spans

__all__ = [
    "MESSAGE_VERSION",
    "DashboardModel",
    "Decision",
    "ModelView",
    "notebook_for",
    "p95",
]

MESSAGE_VERSION = 1  # "v" of every delta; bump when the browser side must change too
WINDOW_S = 30.0  # seconds of history the live view keeps
MAX_BARS = 6_000  # closed bars kept, whatever the window
MAX_SAMPLES = 100_000  # pool samples kept live (one per change of busy/queued/size)
MAX_MESSAGE_SAMPLES = 4_000  # pool samples per message before they are thinned per bucket
MAX_LATENCIES = 5_000  # most recent job latencies for the p95
MAX_FINDINGS = 50
MAX_LOCK_ROWS = 12  # rows of the lock table sent to the browser (by total wait)
MAX_CAUSED_ROWS = 3  # holders (routine, site) sent per lock, most waiting caused first
MAX_DECISIONS = 200  # pool.autosize decisions kept live (those inside the window)
MAX_MESSAGE_DECISIONS = 20  # new decisions per message at most, the newest
RATE_WINDOW_S = 2.0  # jobs/s is measured over about this many seconds of samples
MERGE_DIVISOR = 4_000  # merge gap = seconds shown / MERGE_DIVISOR
MIN_MERGE_GAP_S = 20e-6  # seconds; closer bars merge even at the very start
_DIGITS = 5  # decimals of seconds in messages (10 microseconds)

TASK, LOCK, BARRIER = "task", "lock", "barrier"
_NUMBER = (int, float)
# What feed() does per kind: skip, count, or handle (the rest go to _other).
_SKIP, _POSTED, _STARTED, _FINISHED, _ENDED, _OTHER = range(6)
_KIND_CODES = {
    "slot.enqueue": _SKIP,
    "task.queued": _SKIP,  # the pool series counts it
    "policy.hold": _SKIP,
    "task.error": _SKIP,  # its task.finished follows and carries the same error
    "job.posted": _POSTED,
    "task.started": _STARTED,
    "task.finished": _FINISHED,
    "job.completed": _ENDED,
    "job.failed": _ENDED,
    "job.cancelled": _ENDED,
}
THREAD_LANE, BARRIER_LANE = "thread", "barrier"

# Finding kind -> tutorial notebook, as routilux.diagnostics.FINDING_NOTEBOOKS says; this copy
# is used for findings read from a trace when that module is missing.
NOTEBOOKS: dict[str, str] = {
    "shared_mutable_state": "01_shared_mutable_state.ipynb",
    "blocking": "02_blocking_the_pool.ipynb",
    "deadlock": "03_deadlocks.ipynb",
    "lock_order": "03_deadlocks.ipynb",
    "pool_exhaustion": "04_pool_exhaustion.ipynb",
    "barrier": "05_barrier_usage.ipynb",
}


def notebook_for(kind: str | None) -> str | None:
    """The notebook that explains a finding kind, or None if no notebook covers it."""
    if not kind:
        return None
    try:
        from routilux.diagnostics import FINDING_NOTEBOOKS
    except ImportError:
        FINDING_NOTEBOOKS = NOTEBOOKS
    return FINDING_NOTEBOOKS.get(kind) or NOTEBOOKS.get(kind)


def p95(values: Iterable[float]) -> float | None:
    """The 95th percentile (nearest rank) of ``values``, or None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return ordered[rank - 1]


def _r(x: float) -> float:
    return round(x, _DIGITS)


def _message_samples(samples: Sequence[tuple[float, int, int, int]], window_s: float,
                     ) -> list[list[Any]]:
    """Pool samples for the browser: all of them, unless there are more than
    ``MAX_MESSAGE_SAMPLES``; then, per time bucket of ``window_s / MAX_MESSAGE_SAMPLES``
    (below a pixel of the view), the bucket's first state, its highest queue, its most busy
    threads and its last state, so no peak and no step is lost at the view's resolution
    (a flood changes the pool at every event: 100,000 samples in one refresh).
    """
    if len(samples) <= MAX_MESSAGE_SAMPLES:
        return [[_r(s[0]), s[1], s[2], s[3]] for s in samples]
    bucket = window_s / MAX_MESSAGE_SAMPLES
    out: list[list[Any]] = []
    group: list[tuple[float, int, int, int]] = []
    edge = samples[0][0] + bucket
    for s in samples:
        if s[0] >= edge and group:
            out.extend(_bucket(group))
            group = []
            edge = s[0] + bucket
        group.append(s)
    out.extend(_bucket(group))
    return out


def _bucket(group: list[tuple[float, int, int, int]]) -> list[list[Any]]:
    keep = {0, len(group) - 1,
            max(range(len(group)), key=lambda i: group[i][1]),
            max(range(len(group)), key=lambda i: group[i][2])}
    return [[_r(group[i][0]), group[i][1], group[i][2], group[i][3]] for i in sorted(keep)]


@dataclass
class CausedBy:
    """Waiting one holder caused: all of it charged to its routine and site (Go's mutex
    profile charges contention to whoever held the lock, which is where the fix goes)."""

    routine: str | None
    site: str | None  # "file:line" where the holder took (or released) the lock
    total_s: float = 0.0
    max_s: float = 0.0  # the most waiting one hold caused
    holds: int = 0  # holds that others waited for

    def as_list(self) -> list[Any]:
        return [self.routine, self.site, _r(self.total_s), _r(self.max_s), self.holds]


@dataclass
class LockRow:
    """What the trace says about one traced lock, as of the last event fed.

    ``waits`` are contended acquisitions and their total/max wait is charged to the
    waiters; ``caused`` charges the same waiting to the holders (routine and site), biggest
    first. ``holder`` is the thread known to hold it now: the one a waiter saw, or the one
    that took it after a wait, until its ``lock.released``; ``waiters`` are the threads
    still waiting.
    """

    name: str
    waits: int = 0
    total_wait_s: float = 0.0
    max_wait_s: float = 0.0
    timeouts: int = 0
    holder: str | None = None
    waiters: list[str] = field(default_factory=list)
    deadlocked: bool = False
    caused: list[CausedBy] = field(default_factory=list)

    def charge(self, routine: str | None, site: str | None, seconds: float) -> None:
        for row in self.caused:
            if row.routine == routine and row.site == site:
                break
        else:
            row = CausedBy(routine, site)
            self.caused.append(row)
        row.total_s += seconds
        row.max_s = max(row.max_s, seconds)
        row.holds += 1
        self.caused.sort(key=lambda c: (-c.total_s, str(c.routine), str(c.site)))

    def as_list(self) -> list[Any]:
        return [
            self.name,
            self.waits,
            _r(self.total_wait_s),
            _r(self.max_wait_s),
            self.holder,
            list(self.waiters),
            self.deadlocked,
            [c.as_list() for c in self.caused[:MAX_CAUSED_ROWS]],
        ]


class Decision(NamedTuple):
    """One automatic-sizing decision (a ``pool.autosize`` event), as the charts need it.

    ``t`` is seconds since the model's origin; ``action`` one of on/off/grow/probe/keep/
    revert/shrink; ``old``/``new`` the sizes before and after (None if the event had
    none); ``reason`` the controller's text with its numbers; ``numbers`` the rest of the
    event's detail (throughput, arrival_rate, service_s, ...).
    """

    t: float
    action: str
    old: int | None
    new: int | None
    reason: str
    numbers: dict[str, Any]

    def message(self) -> list[Any]:
        """``[t, action, old, new, reason]``: the browser's hover text needs no more."""
        return [_r(self.t), self.action, self.old, self.new, self.reason]


def _size(x: Any) -> int | None:
    return int(x) if isinstance(x, _NUMBER) and not isinstance(x, bool) else None


def decision_of(t: float, name: Any, value: Any, detail: Any) -> Decision:
    """A ``pool.autosize`` event's fields as a ``Decision`` (tolerant of missing parts)."""
    detail = detail if isinstance(detail, dict) else {}
    action = str(name or "?")
    new = _size(value)
    if new is None:
        new = _size(detail.get("new"))
    reason = detail.get("reason")
    numbers = {k: v for k, v in detail.items() if k not in ("old", "new", "reason")}
    return Decision(t, action, _size(detail.get("old")), new,
                    str(reason) if reason else action, numbers)


@dataclass(frozen=True)
class ModelView:
    """Everything a static chart needs, copied out of the model at one instant.

    ``bars`` include the bars still open at ``now_s``, closed at ``now_s``.
    """

    now_s: float
    window_s: float
    lanes: list[tuple[str, str]]  # (name, THREAD_LANE | BARRIER_LANE)
    routines: list[str]
    bars: list[tuple[int, float, float, str, int]]
    samples: list[tuple[float, int, int, int]]  # pool_series: (t, queued, busy, size)
    locks: list[LockRow]
    counters: dict[str, Any]
    findings: list[dict[str, Any]]
    dropped: int
    decisions: list[Decision] = field(default_factory=list)  # pool.autosize, oldest first
    auto: bool | None = None  # sizing automatic now; None: never automatic (or unknown)
    auto_reason: str | None = None  # the controller's latest reason, while automatic


class DashboardModel:
    """Aggregates trace events and statistics samples into bounded, drawable state.

    Not thread-safe: the dashboard calls it under its own lock.

    Args:
        window_s: Seconds of history to keep.
        merge_gap_s: Bars on one lane closer than this merge; default (None): the time
            shown so far / 4000 (see the module docstring).
        max_bars: Closed bars kept at most.
        max_samples: Pool samples kept at most (None: all, for a static report).
        max_decisions: Automatic-sizing decisions kept at most (None: all).
    """

    def __init__(
        self,
        window_s: float = WINDOW_S,
        merge_gap_s: float | None = None,
        max_bars: int = MAX_BARS,
        max_samples: int | None = MAX_SAMPLES,
        max_decisions: int | None = MAX_DECISIONS,
    ) -> None:
        if not (isinstance(window_s, int | float) and window_s > 0):
            raise ValueError(f"window_s must be a number of seconds > 0, got {window_s!r}")
        self.window_s = float(window_s)
        self.fixed_gap_s = merge_gap_s
        self.merge_gap_s = MIN_MERGE_GAP_S if merge_gap_s is None else merge_gap_s
        self.origin_ns: int | None = None
        self.last_seq = 0
        self.last_ts_ns: int | None = None
        self.lost = 0  # events missing between reads (seq gaps), a lower bound of dropped
        self.dropped = 0  # set by the owner from tracer.dropped / statistics
        self.tick = 0
        self._sent_t: float | None = None  # "t" of the last delta
        # lanes and routines: index -> name; new ones since the last delta
        self._lane_names: list[str] = []
        self._lane_types: list[str] = []
        self._lane_by_ident: dict[int, int] = {}
        self._lane_by_key: dict[tuple[Any, str], int] = {}
        self._new_lanes: list[int] = []
        self._routines: list[str] = []
        self._routine_index: dict[str | None, int] = {}
        self._new_routines: list[int] = []
        # bars
        self._bars: deque[list[Any]] = deque(maxlen=max_bars)
        self._pending: list[list[Any]] = []  # closed since the last delta
        self._mergeable: dict[tuple[int, str], list[Any]] = {}  # last pending bar per lane+kind
        self._open_tasks: dict[int, list[tuple[float, int, Any]]] = {}  # lane -> [(t0, r, job)]
        self._open_waits: dict[tuple[int, str], float] = {}  # (lane, lock) -> t0
        self._open_barriers: dict[int, tuple[float, int]] = {}  # lane -> (t0, routine)
        # samples and counters
        self._pool = PoolCounter()  # routilux.trace.pool_series, fed as events arrive
        self._samples: deque[tuple[float, int, int, int]] = deque(maxlen=max_samples)
        self._new_samples: list[tuple[float, int, int, int]] = []
        self._finished_at: deque[tuple[float, int]] = deque()  # (t, finished jobs) for jobs/s
        self._latencies: deque[tuple[float, float]] = deque(maxlen=MAX_LATENCIES)
        self.jobs = {"posted": 0, "completed": 0, "failed": 0, "cancelled": 0}
        self._last_t: float | None = None
        # automatic sizing: decisions from the trace, the state from statistics()
        self._decisions: deque[Decision] = deque(maxlen=max_decisions)
        self._new_decisions: list[Decision] = []
        self.auto: bool | None = None
        self.auto_reason: str | None = None
        self._auto_sent: tuple[bool | None, str | None] = (None, None)  # as the view starts
        # locks and findings
        self._locks: dict[str, LockRow] = {}
        self._locks_changed = False
        self._findings: list[dict[str, Any]] = []
        self._findings_changed = False
        self.counters: dict[str, Any] = {}

    # -- feeding ---------------------------------------------------------------------------

    def _t(self, ts_ns: int) -> float:
        if self.origin_ns is None:
            self.origin_ns = ts_ns
        return (ts_ns - self.origin_ns) * 1e-9

    def _lane(self, ident: Any, name: str, lane_type: str = THREAD_LANE) -> int:
        key = (ident, name)
        lane = self._lane_by_key.get(key)
        if lane is None:
            lane = len(self._lane_names)
            self._lane_by_key[key] = lane
            self._lane_names.append(name)
            self._lane_types.append(lane_type)
            self._new_lanes.append(lane)
        if lane_type == THREAD_LANE:
            self._lane_by_ident[ident] = lane
        return lane

    def _routine(self, routine: str | None) -> int:
        index = self._routine_index.get(routine)
        if index is None:
            index = len(self._routines)
            self._routine_index[routine] = index
            self._routines.append("?" if routine is None else str(routine))
            self._new_routines.append(index)
        return index

    def _close(self, lane: int, t0: float, t1: float, kind: str, routine: int) -> None:
        key = (lane, kind)
        prev = self._mergeable.get(key)
        if prev is not None and t0 - prev[2] <= self.merge_gap_s:
            if prev[4] == routine:
                prev[2] = max(prev[2], t1)
                return
            if prev[2] - prev[1] < self.merge_gap_s:
                # The predecessor is too thin to see: the merged bar takes the longer part's
                # routine, so a lane alternating routines in tiny tasks stays a few bars.
                if t1 - t0 >= prev[2] - prev[1]:
                    prev[4] = routine
                prev[2] = max(prev[2], t1)
                return
        bar = [lane, t0, t1, kind, routine]
        self._bars.append(bar)
        self._pending.append(bar)
        self._mergeable[key] = bar

    def feed(self, events: Iterable[Sequence[Any]], tasks: bool = True) -> None:
        """Take events (``TraceEvent``s or tuples in their field order), oldest first.

        Events with a seq at or below the last one seen are ignored, so overlapping reads
        are harmless; a jump in seq is counted in ``lost``. ``tasks=False`` leaves the task
        bars to ``add_spans`` (``from_events`` draws them from ``task_spans``).
        """
        # The hot loop of the dashboard: one pass, locals only, the frequent kinds inline.
        last_seq = self.last_seq
        events = [ev for ev in events if ev[0] > last_seq]
        if not events:
            return
        if self.fixed_gap_s is None:
            self._adapt_gap(events)
        lane_by_ident = self._lane_by_ident
        lane_names = self._lane_names
        routine_index = self._routine_index
        open_tasks = self._open_tasks
        mergeable = self._mergeable
        gap = self.merge_gap_s
        latencies = self._latencies
        codes = _KIND_CODES
        jobs = self.jobs
        posted = completed = failed = cancelled = 0
        origin = self.origin_ns
        ts = None
        for ev in events:
            seq, ts, kind, thread, thread_name, _worker, job, routine, _name, value, _detail = ev
            if seq <= last_seq:
                continue
            if seq != last_seq + 1 and last_seq:
                self.lost += seq - last_seq - 1
            last_seq = seq
            if origin is None:
                origin = self.origin_ns = ts
            code = codes.get(kind, _OTHER)
            if code == _SKIP:
                continue
            if code == _POSTED:
                posted += 1
                continue
            if code == _STARTED or code == _FINISHED:
                lane = lane_by_ident.get(thread)
                if lane is None or lane_names[lane] != thread_name:
                    lane = self._lane(thread, thread_name)
                r = routine_index.get(routine)
                if r is None:
                    r = self._routine(routine)
                if not tasks:
                    continue  # from_events draws the tasks from task_spans instead
                t = (ts - origin) * 1e-9
                stack = open_tasks.get(lane)
                if code == _STARTED:
                    if stack is None:
                        stack = open_tasks[lane] = []
                    stack.append((t, r, job))
                    continue
                t0 = None
                if stack:
                    top = stack[-1]
                    if top[1] == r and top[2] == job:
                        t0 = stack.pop()[0]
                    else:
                        for i in range(len(stack) - 2, -1, -1):
                            if stack[i][1] == r and stack[i][2] == job:
                                t0 = stack.pop(i)[0]
                                break
                if t0 is None:  # its start was dropped: rebuild it from the run time
                    t0 = t - value if isinstance(value, _NUMBER) else t
                prev = mergeable.get((lane, TASK))
                if prev is not None and prev[4] == r and t0 - prev[2] <= gap:
                    prev[2] = max(prev[2], t)  # the common case of _close, inline
                else:
                    self._close(lane, t0, t, TASK, r)
            elif code == _ENDED:
                if kind == "job.completed":
                    completed += 1
                elif kind == "job.failed":
                    failed += 1
                else:
                    cancelled += 1
                if isinstance(value, _NUMBER):
                    latencies.append(((ts - origin) * 1e-9, value))
            elif kind == "queue.depth":
                continue  # a periodic hint; the pool series below is exact
            else:
                self._other(ev, kind, (ts - origin) * 1e-9)
        self.last_seq = last_seq
        origin = self.origin_ns
        for p in self._pool.feed(events):
            self._add_sample((p.ts_ns - origin) * 1e-9, p.queued, p.busy, p.size or 0)
        jobs["posted"] += posted
        jobs["completed"] += completed
        jobs["failed"] += failed
        jobs["cancelled"] += cancelled
        if ts is not None and origin is not None:
            if self.last_ts_ns is None or ts > self.last_ts_ns:
                self.last_ts_ns = ts
            t = (self.last_ts_ns - origin) * 1e-9
            if self._last_t is None or t > self._last_t:
                self._last_t = t

    def _adapt_gap(self, events: Iterable[Sequence[Any]]) -> None:
        seen_s = self._last_t or 0.0
        if isinstance(events, Sequence) and events:
            origin = self.origin_ns if self.origin_ns is not None else events[0][1]
            seen_s = max(seen_s, (events[-1][1] - origin) * 1e-9)
        self.merge_gap_s = max(MIN_MERGE_GAP_S, min(self.window_s, seen_s) / MERGE_DIVISOR)

    def _thread_lane(self, ev: Sequence[Any]) -> int:
        lane = self._lane_by_ident.get(ev[3])
        if lane is None or self._lane_names[lane] != ev[4]:
            lane = self._lane(ev[3], ev[4])
        return lane

    def _other(self, ev: Sequence[Any], kind: str, t: float) -> None:
        """The rarer kinds: locks, barriers, samples, deadlocks, findings, resizes."""
        name, value, detail, thread_name = ev[8], ev[9], ev[10], ev[4]
        if kind == "lock.wait":
            lock = self._lock_row(name)
            lock.waits += 1
            if thread_name not in lock.waiters:
                lock.waiters.append(thread_name)
            if isinstance(detail, dict) and detail.get("holder_name"):
                lock.holder = str(detail["holder_name"])
            self._open_waits[(self._thread_lane(ev), str(name))] = t
        elif kind == "lock.acquired" or kind == "lock.timeout":
            lock = self._lock_row(name)
            if thread_name in lock.waiters:
                lock.waiters.remove(thread_name)
            if isinstance(value, _NUMBER):
                lock.total_wait_s += value
                lock.max_wait_s = max(lock.max_wait_s, value)
            if kind == "lock.acquired":
                lock.holder = thread_name
            else:
                lock.timeouts += 1
            lane = self._thread_lane(ev)
            t0 = self._open_waits.pop((lane, str(name)), None)
            if t0 is None and isinstance(value, _NUMBER):
                t0 = t - value
            if t0 is not None:
                self._close(lane, t0, t, LOCK, self._routine(ev[7]))
        elif kind == "lock.released":
            lock = self._lock_row(name)
            if lock.holder == thread_name:
                lock.holder = None
            caused = detail.get("caused_s") if isinstance(detail, dict) else None
            if isinstance(caused, _NUMBER) and not isinstance(caused, bool):
                site = detail.get("site")
                lock.charge(ev[7], None if site is None else str(site), float(caused))
        elif kind == "barrier.wait":
            lane = self._lane(("barrier", ev[7]), f"barrier {ev[7]}", BARRIER_LANE)
            if lane not in self._open_barriers:
                self._open_barriers[lane] = (t, self._routine(ev[7]))
        elif kind == "barrier.release":
            lane = self._lane(("barrier", ev[7]), f"barrier {ev[7]}", BARRIER_LANE)
            opened = self._open_barriers.pop(lane, None)
            if opened is not None:
                self._close(lane, opened[0], t, BARRIER, opened[1])
        elif kind == "deadlock.detected":
            message = detail.get("message") if isinstance(detail, dict) else None
            cycle = detail.get("cycle") if isinstance(detail, dict) else None
            locks = {n.strip() for n in str(name or "").split(",") if n.strip()}
            for step in cycle if isinstance(cycle, list) else ():
                if isinstance(step, dict):
                    locks.update(str(step[k]) for k in ("holds", "waits_for") if k in step)
            for lock_name in locks:
                self._lock_row(lock_name).deadlocked = True
            self.add_finding(
                {
                    "kind": "deadlock",
                    "severity": "high",
                    "title": f"Deadlock: {message or 'threads wait for each other: ' + str(name)}",
                    "key": "deadlock:" + ",".join(sorted(locks)),
                    "t": _r(t),
                }
            )
        elif kind == "pool.autosize":
            d = decision_of(t, name, value, detail)
            self._decisions.append(d)
            self._new_decisions.append(d)
            self.auto = d.action != "off"
            self.auto_reason = d.reason if self.auto else None
        elif kind == "finding":
            title = severity = key = None
            if isinstance(detail, dict):
                title, severity, key = (
                    detail.get("title"),
                    detail.get("severity"),
                    detail.get("key"),
                )
            self.add_finding(
                {
                    "kind": name or "finding",
                    "severity": severity or "medium",
                    "title": title or str(name),
                    "key": key,
                    "t": _r(t),
                }
            )

    def _lock_row(self, name: Any) -> LockRow:
        key = str(name)
        row = self._locks.get(key)
        if row is None:
            row = self._locks[key] = LockRow(key)
        self._locks_changed = True
        return row

    def _add_sample(self, t: float, queued: int, busy: int, size: int) -> None:
        sample = (t, queued, busy, size)  # t unrounded: views compare equal to pool_series
        self._samples.append(sample)
        self._new_samples.append(sample)

    def add_sample(
        self, ts_ns: int, queued: int, busy: int, size: int, finished: int | None = None
    ) -> None:
        """One ``statistics()`` snapshot: queue depth, busy threads, pool size, finished jobs.

        ``finished`` (completed + failed + cancelled so far) feeds the jobs/s counter. The
        counts are drawn only for a runtime that does not trace: a trace gives the exact
        ``pool_series`` instead, and a snapshot every 100 ms would alias with periodic work.
        """
        t = self._t(ts_ns)
        if self._pool.last is None:
            self._add_sample(t, int(queued), int(busy), int(size))
        if finished is not None:
            rates = self._finished_at
            rates.append((t, int(finished)))
            while len(rates) > 2 and rates[1][0] <= t - RATE_WINDOW_S:
                rates.popleft()
        if self._last_t is None or t > self._last_t:
            self._last_t = t

    def set_auto(self, auto: bool, reason: str | None) -> None:
        """The runtime's own word (``statistics().pool_auto``/``pool_auto_reason``): whether
        sizing is automatic now and the controller's latest reason. Holds are not traced,
        so this is the only place their reasons show. A runtime that was never automatic
        stays ``None`` (no badge, nothing to say)."""
        if auto or self.auto is not None:
            self.auto = bool(auto)
            self.auto_reason = reason if auto else None

    def add_finding(self, finding: dict[str, Any]) -> bool:
        """Add one finding (a dict: kind, severity, title; optional key, evidence, fix...).

        Adds ``notebook`` when missing. Findings with the same ``key`` (default
        ``kind:title``, as ``routilux.diagnostics`` does) are kept once; a later one fills
        in what the earlier one lacked (a trace event has no fix, ``diagnose`` has).
        Returns whether it was new.
        """
        item = {k: v for k, v in finding.items() if v is not None}
        key = item.get("key") or f"{item.get('kind')}:{item.get('title')}"
        item["key"] = key
        if not item.get("notebook"):
            item["notebook"] = notebook_for(item.get("kind"))
        for existing in self._findings:
            if existing["key"] == key:
                for name, value in item.items():
                    if value not in (None, "") and name != "t" and existing.get(name) != value:
                        existing[name] = value
                        self._findings_changed = True
                return False
        self._findings.append(item)
        del self._findings[:-MAX_FINDINGS]
        self._findings_changed = True
        return True

    # -- reading ---------------------------------------------------------------------------

    def now_s(self, now_ns: int | None = None) -> float:
        """The model's time of ``now_ns`` (default: its newest timestamp)."""
        if now_ns is not None:
            return self._t(now_ns)
        return self._last_t if self._last_t is not None else 0.0

    def compute_counters(self, now_s: float, stats: Any = None) -> dict[str, Any]:
        """posted, running, completed, failed, jobs_per_s, p95_latency_s.

        With ``stats`` (a ``RuntimeStatistics``) the job counts are the runtime's own;
        without, they are counted from the trace. jobs/s comes from recent samples, or from
        the trace's span; p95 from the latencies of jobs that ended in the window.
        """
        jobs = self.jobs
        if stats is not None:
            posted, completed, failed = stats.posted, stats.completed, stats.failed
            running = stats.running
        else:
            posted, completed, failed = jobs["posted"], jobs["completed"], jobs["failed"]
            running = max(0, posted - completed - failed - jobs["cancelled"])
        rate = 0.0
        rates = self._finished_at
        if len(rates) >= 2 and rates[-1][0] > rates[0][0]:
            rate = (rates[-1][1] - rates[0][1]) / (rates[-1][0] - rates[0][0])
        elif stats is None and self._last_t is not None:
            span = self._last_t  # seconds since the origin, the first timestamp seen
            done = completed + failed + jobs["cancelled"]
            rate = done / span if span > 0 else 0.0
        horizon = now_s - self.window_s
        latency = p95(v for t, v in self._latencies if t >= horizon)
        self.counters = {
            "posted": posted,
            "running": running,
            "completed": completed,
            "failed": failed,
            "jobs_per_s": round(rate, 1),
            "p95_latency_s": None if latency is None else _r(latency),
        }
        return self.counters

    def _prune(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        bars = self._bars
        while bars and bars[0][2] < horizon:
            bars.popleft()
        samples = self._samples
        while len(samples) > 1 and samples[1][0] <= horizon:
            samples.popleft()  # the one left is the state in effect at the horizon
        decisions = self._decisions
        while decisions and decisions[0][0] < horizon:
            decisions.popleft()

    def _open_bars(self, now_s: float) -> list[list[Any]]:
        out: list[list[Any]] = []
        for lane, stack in self._open_tasks.items():
            for t0, r, _job in stack:
                out.append([lane, _r(t0), TASK, r])
        for (lane, _lock), t0 in self._open_waits.items():
            out.append([lane, _r(t0), LOCK, -1])
        for lane, (t0, r) in self._open_barriers.items():
            out.append([lane, _r(t0), BARRIER, r])
        return out

    def _lock_table(self) -> list[LockRow]:
        rows = sorted(self._locks.values(), key=lambda r: (-r.total_wait_s, -r.waits, r.name))
        return rows

    def delta(self, now_ns: int | None = None, stats: Any = None, **extra: Any) -> dict[str, Any]:
        """The message for the browser: what changed since the previous delta.

        See the module docstring of ``_dashboard`` for the format. Consumes the pending
        bars, samples, lanes and routines; ``extra`` keys are added as they are.
        """
        now_s = self.now_s(now_ns)
        self.tick += 1
        msg: dict[str, Any] = {"tick": self.tick, "v": MESSAGE_VERSION, "reset": False}
        msg["t"] = self._sent_t = _r(now_s)
        msg["window_s"] = self.window_s
        msg["lanes"] = [[i, self._lane_names[i], self._lane_types[i]] for i in self._new_lanes]
        msg["routines"] = [[i, self._routines[i]] for i in self._new_routines]
        msg["bars"] = [[b[0], _r(b[1]), _r(b[2]), b[3], b[4]] for b in self._pending]
        msg["open"] = self._open_bars(now_s)
        msg["samples"] = _message_samples(self._new_samples, self.window_s)
        msg["counters"] = dict(self.compute_counters(now_s, stats))
        msg["dropped"] = max(self.dropped, self.lost)
        if self._locks_changed:
            msg["locks"] = [row.as_list() for row in self._lock_table()[:MAX_LOCK_ROWS]]
        if self._findings_changed:
            msg["findings"] = [dict(f) for f in self._findings]
        if self._new_decisions:
            horizon = now_s - self.window_s
            fresh = [d for d in self._new_decisions if d[0] >= horizon]
            msg["decisions"] = [d.message() for d in fresh[-MAX_MESSAGE_DECISIONS:]]
        auto = (self.auto, self.auto_reason)
        if auto != self._auto_sent:
            msg["auto"], msg["auto_reason"] = auto
            self._auto_sent = auto
        msg.update(extra)
        self._new_decisions = []
        self._new_lanes = []
        self._new_routines = []
        self._pending = []
        self._mergeable = {}
        self._new_samples = []
        self._locks_changed = False
        self._findings_changed = False
        self._prune(now_s)
        return msg

    def note(self, **extra: Any) -> dict[str, Any]:
        """A delta that carries only ``extra`` (a status or an error); consumes nothing."""
        self.tick += 1
        msg: dict[str, Any] = {"tick": self.tick, "v": MESSAGE_VERSION, "reset": False}
        msg["t"] = self._sent_t if self._sent_t is not None else _r(self.now_s())
        msg["window_s"] = self.window_s
        msg.update(extra)
        return msg

    def full(self, now_ns: int | None = None, stats: Any = None, **extra: Any) -> dict[str, Any]:
        """The whole bounded history as one message with ``reset: true``; consumes nothing.

        Sent when a view (re)connects; its ``tick`` is the last delta's, so the browser can
        ignore older deltas that arrive after it.
        """
        now_s = self.now_s(now_ns)
        self._prune(now_s)
        msg: dict[str, Any] = {"tick": self.tick, "v": MESSAGE_VERSION, "reset": True}
        msg["t"] = _r(now_s)
        msg["window_s"] = self.window_s
        msg["lanes"] = [
            [i, name, kind]
            for i, (name, kind) in enumerate(zip(self._lane_names, self._lane_types, strict=True))
        ]
        msg["routines"] = [[i, name] for i, name in enumerate(self._routines)]
        msg["bars"] = [[b[0], _r(b[1]), _r(b[2]), b[3], b[4]] for b in self._bars]
        msg["open"] = self._open_bars(now_s)
        msg["samples"] = _message_samples(self._samples, self.window_s)
        msg["counters"] = (
            dict(self.counters) if self.counters else self.compute_counters(now_s, stats)
        )
        msg["dropped"] = max(self.dropped, self.lost)
        msg["locks"] = [row.as_list() for row in self._lock_table()[:MAX_LOCK_ROWS]]
        msg["findings"] = [dict(f) for f in self._findings]
        msg["decisions"] = [d.message() for d in self._decisions]
        msg["auto"], msg["auto_reason"] = self.auto, self.auto_reason
        msg.update(extra)
        return msg

    def view(self, now_ns: int | None = None, stats: Any = None) -> ModelView:
        """A copy of the drawable state, open bars closed at now (for static charts)."""
        now_s = self.now_s(now_ns)
        bars = [(b[0], b[1], b[2], b[3], b[4]) for b in self._bars if b[2] >= now_s - self.window_s]
        for lane, t0, kind, r in self._open_bars(now_s):
            bars.append((lane, t0, now_s, kind, r))
        return ModelView(
            now_s=now_s,
            window_s=self.window_s,
            lanes=list(zip(self._lane_names, self._lane_types, strict=True)),
            routines=list(self._routines),
            bars=bars,
            samples=list(self._samples),
            locks=[replace(r, waiters=list(r.waiters), caused=[replace(c) for c in r.caused])
                   for r in self._lock_table()],
            counters=dict(self.compute_counters(now_s, stats)),
            findings=[dict(f) for f in self._findings],
            dropped=max(self.dropped, self.lost),
            decisions=[d for d in self._decisions if d[0] >= now_s - self.window_s],
            auto=self.auto,
            auto_reason=self.auto_reason,
        )

    @classmethod
    def from_events(cls, events: Sequence[Sequence[Any]], dropped: int = 0) -> DashboardModel:
        """A model of a whole recorded trace, its window spanning every event (reports)."""
        if events:
            span_s = max(1e-3, (events[-1][1] - events[0][1]) * 1e-9)
        else:
            span_s = 1.0
        model = cls(window_s=span_s * 1.02, max_bars=MAX_BARS * 4, max_samples=None,
                    max_decisions=None)
        model.feed(events, tasks=False)
        records = [e if isinstance(e, TraceEvent) else TraceEvent(*e) for e in events]
        model.add_spans(task_spans(records))
        model.dropped = dropped
        return model

    def add_spans(self, spans: Iterable[Any]) -> None:
        """Task bars from ``routilux.trace.task_spans``: the one task reading every chart
        and detector shares (a whole trace at once; the live ``feed`` pairs the same way,
        by lane and activation, as events arrive)."""
        origin = self.origin_ns or 0
        for span in spans:  # ordered by start, so bars on a lane merge as feed's do
            lane = self._lane(span.thread, span.thread_name)
            r = self._routine(span.routine)
            t0 = (span.start_ns - origin) * 1e-9
            if span.finished:
                self._close(lane, t0, (span.end_ns - origin) * 1e-9, TASK, r)
            else:
                self._open_tasks.setdefault(lane, []).append((t0, r, span.job_id))
