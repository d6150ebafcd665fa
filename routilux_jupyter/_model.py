"""Trace events -> what the dashboard draws: lanes, bars, samples, counters, locks, findings.

Pure data: no widgets, no threads, no runtime. The live dashboard's pump reads only the
events new since its last tick (``tracer.read_rows(since)``: ``read`` as plain tuples),
``feed``s them here with one ``statistics()`` sample, then asks for a ``delta``: the small
message the browser applies. The static charts ask for a ``view``.

The parts, one module each, all folded incrementally and bounded whatever the trace size:

- ``_timeline.Timeline``: lanes, routines and bars (tasks, lock waits, barrier waits);
  bars merge below the merge gap and leave with the window.
- ``_pool_model.PoolSeries``: ``routilux.trace.pool_series`` folded by a ``PoolCounter``
  (exact at every instant; the same series the detectors read, issue 12), thinned per
  bucket below a pixel of the view when there are too many; automatic sizing's
  ``Decision``s on its size line.
- ``_lock_model.LockTable``: waits, holders, waiters and the waiting charged to holders.
- ``_findings_model.FindingList``: findings from the trace and from ``diagnose``.

``feed`` is the only per-event code: one flat loop over tuples with the frequent kinds
inline (task starts and finishes, job ends), the rare ones through ``_other``. Its cost is
linear in the events fed and independent of what was fed before; a delta's in what changed.
By default the merge gap follows the time shown, ``min(window_s, seconds seen so far) /
4000``: well below one pixel of a view that shows that much time, so merging never hides
what could be seen (a short run, zoomed to fill the width, keeps its fine detail), unless
a message would carry more than ``MAX_MESSAGE_BARS`` bars: then the gap widens, at most to
a full window's (``Timeline.bound_bars``), so messages stay small.

Automatic sizing: whether it is on now, and the controller's latest reason (holds included,
which are not traced), come from ``statistics()`` (``set_auto``); a trace alone tells it
from its last on/off decision.

Rejected: building a pandas frame per tick (allocates per column, ~10x slower for small
batches); keeping every bar and sample and thinning at draw time (unbounded memory in a
long session); re-reading the whole trace per tick (cost grows with the trace).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from routilux.trace import TraceEvent, task_spans

from ._counters import JobCounters, p95
from ._findings_model import FindingList, finding_of, notebook_for
from ._lock_model import MAX_CAUSED_ROWS, MAX_LOCK_ROWS, LockRow, LockTable
from ._pool_model import (MAX_KEPT_SAMPLES, MAX_MESSAGE_SAMPLES, Decision, PoolSeries,
                          decision_of, message_rows, thin)
from ._timeline import (BARRIER, BARRIER_LANE, LOCK, MAX_MESSAGE_BARS, MERGE_DIVISOR,
                        MIN_MERGE_GAP_S, TASK, THREAD_LANE, Timeline)

__all__ = ["BARRIER", "BARRIER_LANE", "LOCK", "MAX_CAUSED_ROWS", "MAX_LOCK_ROWS",
           "MAX_MESSAGE_BARS", "MAX_MESSAGE_SAMPLES", "MERGE_DIVISOR", "MIN_MERGE_GAP_S", "MESSAGE_VERSION", "TASK", "THREAD_LANE", "DashboardModel",
           "Decision", "ModelView", "notebook_for", "p95"]

MESSAGE_VERSION = 1  # "v" of every delta; bump when the browser side must change too
WINDOW_S = 30.0  # seconds of history the live view keeps
MAX_BARS = 6_000  # closed bars kept, whatever the window
MAX_DECISIONS = 200  # pool.autosize decisions kept live (those inside the window)
MAX_MESSAGE_DECISIONS = 20  # new decisions per message at most, the newest
_DIGITS = 5  # decimals of seconds in messages (10 microseconds)
_NUMBER = (int, float)
# Kinds feed() passes over: the pool series counts task.queued; task.error is followed by
# its task.finished; queue.depth is a periodic hint (the pool series is exact).
_SKIP = frozenset({"slot.enqueue", "task.queued", "policy.hold", "task.error", "queue.depth"})


def _r(x: float) -> float:
    return round(x, _DIGITS)


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
        max_samples: Pool samples kept before they are thinned per bucket (None: all, for
            a static report).
        max_decisions: Automatic-sizing decisions kept at most (None: all).
        live: The live pump's model: a flood's pool samples are thinned as they are fed
            (``PoolSeries.feed``), not only when a message is built.
    """

    def __init__(
        self,
        window_s: float = WINDOW_S,
        merge_gap_s: float | None = None,
        max_bars: int = MAX_BARS,
        max_samples: int | None = MAX_KEPT_SAMPLES,
        max_decisions: int | None = MAX_DECISIONS,
        live: bool = False,
    ) -> None:
        if not (isinstance(window_s, int | float) and window_s > 0):
            raise ValueError(f"window_s must be a number of seconds > 0, got {window_s!r}")
        self.window_s = float(window_s)
        self.fixed_gap_s = merge_gap_s
        self.origin_ns: int | None = None
        self.last_seq = 0
        self.last_ts_ns: int | None = None
        self.lost = 0  # events missing between reads (seq gaps), a lower bound of dropped
        self.dropped = 0  # set by the owner from tracer.dropped / statistics
        self.tick = 0
        self._sent_t: float | None = None  # "t" of the last delta
        self.timeline = Timeline(max_bars, MIN_MERGE_GAP_S if merge_gap_s is None
                                 else merge_gap_s)
        self.pool = PoolSeries(self.window_s, max_samples, thin_on_feed=live)
        self.locks = LockTable()
        self.findings = FindingList()
        self._counts = JobCounters()
        self.jobs = self._counts.jobs
        self._last_t: float | None = None
        self._decisions: deque[Decision] = deque(maxlen=max_decisions)
        self._new_decisions: list[Decision] = []
        self.auto: bool | None = None
        self.auto_reason: str | None = None
        self._auto_sent: tuple[bool | None, str | None] = (None, None)  # as the view starts
        self.counters: dict[str, Any] = {}

    @property
    def merge_gap_s(self) -> float:
        return self.timeline.merge_gap_s

    # -- feeding ---------------------------------------------------------------------------

    def _t(self, ts_ns: int) -> float:
        if self.origin_ns is None:
            self.origin_ns = ts_ns
        return (ts_ns - self.origin_ns) * 1e-9

    def _new_rows(self, events: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
        """The events after ``last_seq``; seq gaps counted in ``lost``. A cursor read is
        one contiguous run of seqs, checked in O(1); anything else is checked per event."""
        rows = events if isinstance(events, list) else list(events)
        last_seq = self.last_seq
        if not rows:
            return rows
        first, last = rows[0][0], rows[-1][0]
        if first > last_seq and last - first + 1 == len(rows):
            if last_seq and first != last_seq + 1:
                self.lost += first - last_seq - 1
            return rows
        kept = []
        for ev in rows:
            seq = ev[0]
            if seq <= last_seq:
                continue
            if last_seq and seq != last_seq + 1:
                self.lost += seq - last_seq - 1
            last_seq = seq
            kept.append(ev)
        return kept

    def feed(self, events: Iterable[Sequence[Any]], tasks: bool = True) -> None:
        """Take events (``TraceEvent``s or tuples in their field order), oldest first.

        Events with a seq at or below the last one seen are ignored, so overlapping reads
        are harmless; a jump in seq is counted in ``lost``. ``tasks=False`` leaves the task
        bars to ``add_spans`` (``from_events`` draws them from ``task_spans``).
        """
        rows = self._new_rows(events)
        if not rows:
            return
        if self.origin_ns is None:
            self.origin_ns = rows[0][1]
        if self.fixed_gap_s is None:
            self._adapt_gap(rows[-1][1])
        # The hot loop of the dashboard: one pass, locals only, the frequent kinds inline.
        tl = self.timeline
        lane_by_ident, lane_names = tl.lane_by_ident, tl.lane_names
        routine_index, open_tasks = tl.routine_index, tl.open_tasks
        merge_task = tl.mergeable[TASK]
        barrier_lanes, open_barriers = tl.barrier_lanes, tl.open_barriers
        gap = tl.merge_gap_s
        latencies = self._counts.latencies
        skip = _SKIP
        posted = completed = failed = cancelled = 0
        origin = self.origin_ns
        for ev in rows:
            kind = ev[2]
            if kind == "task.finished" or kind == "task.started":
                thread = ev[3]
                lane = lane_by_ident.get(thread)
                if lane is None or lane_names[lane] != ev[4]:
                    lane = tl.lane(thread, ev[4])
                r = routine_index.get(ev[7])
                if r is None:
                    r = tl.routine(ev[7])
                if not tasks:
                    continue  # from_events draws the tasks from task_spans instead
                t = (ev[1] - origin) * 1e-9
                stack = open_tasks.get(lane)
                if kind == "task.started":
                    if stack is None or len(stack) >= 64:
                        tl.open_task(lane, t, r, ev[6])
                    else:
                        stack.append((t, r, ev[6]))
                    continue
                t0 = None
                if stack:
                    top = stack[-1]
                    job = ev[6]
                    if top[1] == r and top[2] == job:
                        t0 = stack.pop()[0]
                    else:
                        for i in range(len(stack) - 2, -1, -1):
                            if stack[i][1] == r and stack[i][2] == job:
                                t0 = stack.pop(i)[0]
                                break
                if t0 is None:  # its start was dropped: rebuild it from the run time
                    value = ev[9]
                    t0 = t - value if isinstance(value, _NUMBER) else t
                prev = merge_task.get(lane)
                if prev is not None and prev[4] == r and t0 - prev[2] <= gap:
                    if t > prev[2]:
                        prev[2] = t  # the common case of Timeline.close, inline
                else:
                    tl.close(lane, t0, t, TASK, r)
            elif kind in skip:
                continue
            elif kind == "barrier.wait":  # a fan-in's items: one opens the barrier's bar
                lane = barrier_lanes.get(ev[7])
                if lane is None or lane not in open_barriers:
                    self._other(ev, kind, (ev[1] - origin) * 1e-9)
            elif kind == "job.posted":
                posted += 1
            elif kind == "job.completed":
                completed += 1
                value = ev[9]
                if isinstance(value, _NUMBER):
                    latencies.append(((ev[1] - origin) * 1e-9, value))
            elif kind == "job.failed" or kind == "job.cancelled":
                if kind == "job.failed":
                    failed += 1
                else:
                    cancelled += 1
                value = ev[9]
                if isinstance(value, _NUMBER):
                    latencies.append(((ev[1] - origin) * 1e-9, value))
            else:
                self._other(ev, kind, (ev[1] - origin) * 1e-9)
        self.last_seq = rows[-1][0]
        self.pool.feed(rows)
        jobs = self.jobs
        jobs["posted"] += posted
        jobs["completed"] += completed
        jobs["failed"] += failed
        jobs["cancelled"] += cancelled
        ts = rows[-1][1]
        if self.last_ts_ns is None or ts > self.last_ts_ns:
            self.last_ts_ns = ts
        t = (self.last_ts_ns - origin) * 1e-9
        if self._last_t is None or t > self._last_t:
            self._last_t = t

    def _adapt_gap(self, newest_ns: int) -> None:
        seen_s = max(self._last_t or 0.0, (newest_ns - (self.origin_ns or newest_ns)) * 1e-9)
        self.timeline.adapt_gap(min(self.window_s, seen_s))

    def _other(self, ev: Sequence[Any], kind: str, t: float) -> None:
        """The rarer kinds: locks, barriers, deadlocks, findings, automatic sizing."""
        name, value, detail, thread_name = ev[8], ev[9], ev[10], ev[4]
        tl = self.timeline
        if kind == "lock.wait":
            self.locks.wait(name, thread_name, detail)
            tl.open_waits[(tl.thread_lane(ev[3], thread_name), str(name))] = t
        elif kind == "lock.acquired" or kind == "lock.timeout":
            self.locks.done(name, thread_name, value, kind == "lock.acquired")
            lane = tl.thread_lane(ev[3], thread_name)
            t0 = tl.open_waits.pop((lane, str(name)), None)
            if t0 is None and isinstance(value, _NUMBER):
                t0 = t - value
            if t0 is not None:
                tl.close(lane, t0, t, LOCK, tl.routine(ev[7]))
        elif kind == "lock.released":
            self.locks.released(name, thread_name, ev[7], detail)
        elif kind == "barrier.wait":
            lane = tl.barrier_lane(ev[7])
            if lane not in tl.open_barriers:
                tl.open_barriers[lane] = (t, tl.routine(ev[7]))
        elif kind == "barrier.release":
            lane = tl.barrier_lane(ev[7])
            opened = tl.open_barriers.pop(lane, None)
            if opened is not None:
                tl.close(lane, opened[0], t, BARRIER, opened[1])
        elif kind == "deadlock.detected":
            self.add_finding(self.locks.deadlock(name, detail, _r(t)))
        elif kind == "pool.autosize":
            d = decision_of(t, name, value, detail)
            self._decisions.append(d)
            self._new_decisions.append(d)
            self.auto = d.action != "off"
            self.auto_reason = d.reason if self.auto else None
        elif kind == "finding":
            self.add_finding(finding_of(name, detail, _r(t)))

    def add_sample(
        self, ts_ns: int, queued: int, busy: int, size: int, finished: int | None = None
    ) -> None:
        """One ``statistics()`` snapshot: queue depth, busy threads, pool size, finished jobs.

        ``finished`` (completed + failed + cancelled so far) feeds the jobs/s counter. The
        counts are drawn only for a runtime that does not trace: a trace gives the exact
        ``pool_series`` instead, and a snapshot every 100 ms would alias with periodic work.
        """
        t = self._t(ts_ns)
        self.pool.snapshot(ts_ns, queued, busy, size)
        if finished is not None:
            self._counts.finished(t, finished)
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
        """Add one finding (see ``FindingList.add``); returns whether it was new."""
        return self.findings.add(finding)

    # -- reading ---------------------------------------------------------------------------

    def now_s(self, now_ns: int | None = None) -> float:
        """The model's time of ``now_ns`` (default: its newest timestamp)."""
        if now_ns is not None:
            return self._t(now_ns)
        return self._last_t if self._last_t is not None else 0.0

    def compute_counters(self, now_s: float, stats: Any = None) -> dict[str, Any]:
        """posted, running, completed, failed, jobs_per_s, p95_latency_s (``JobCounters``)."""
        self.counters = self._counts.compute(now_s, self.window_s, self._last_t, stats)
        return self.counters

    def _prune(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        self.timeline.prune(horizon)
        self.pool.prune(horizon)
        decisions = self._decisions
        while decisions and decisions[0][0] < horizon:
            decisions.popleft()

    def _head(self, now_s: float, reset: bool) -> dict[str, Any]:
        return {"tick": self.tick, "v": MESSAGE_VERSION, "reset": reset, "t": _r(now_s),
                "window_s": self.window_s}

    def delta(self, now_ns: int | None = None, stats: Any = None, **extra: Any) -> dict[str, Any]:
        """The message for the browser: what changed since the previous delta.

        See the module docstring of ``_widgets`` for the format. Consumes the pending
        bars, samples, lanes and routines; ``extra`` keys are added as they are. Its size
        is bounded by what changed (samples thinned per bucket past MAX_MESSAGE_SAMPLES).
        """
        now_s = self.now_s(now_ns)
        self.tick += 1
        msg = self._head(now_s, False)
        self._sent_t = msg["t"]
        msg["lanes"], msg["routines"], msg["bars"] = self.timeline.take()
        if self.fixed_gap_s is None:
            self.timeline.bound_bars(msg["bars"], self.window_s)
        msg["open"] = self.timeline.open_bars()
        msg["samples"] = message_rows(self.pool.take(self.origin_ns or 0))
        msg["counters"] = dict(self.compute_counters(now_s, stats))
        msg["dropped"] = max(self.dropped, self.lost)
        if self.locks.changed:
            msg["locks"] = self.locks.message()
        if self.findings.changed:
            msg["findings"] = self.findings.message()
        if self._new_decisions:
            horizon = now_s - self.window_s
            fresh = [d for d in self._new_decisions if d[0] >= horizon]
            msg["decisions"] = [d.message() for d in fresh[-MAX_MESSAGE_DECISIONS:]]
            self._new_decisions = []
        auto = (self.auto, self.auto_reason)
        if auto != self._auto_sent:
            msg["auto"], msg["auto_reason"] = auto
            self._auto_sent = auto
        msg.update(extra)
        self._prune(now_s)
        return msg

    def note(self, **extra: Any) -> dict[str, Any]:
        """A delta that carries only ``extra`` (a status or an error); consumes nothing."""
        self.tick += 1
        msg = self._head(self._sent_t if self._sent_t is not None else self.now_s(), False)
        msg.update(extra)
        return msg

    def full(self, now_ns: int | None = None, stats: Any = None, **extra: Any) -> dict[str, Any]:
        """The whole bounded history as one message with ``reset: true``; consumes nothing.

        Sent when a view (re)connects; its ``tick`` is the last delta's, so the browser can
        ignore older deltas that arrive after it.
        """
        now_s = self.now_s(now_ns)
        self._prune(now_s)
        msg = self._head(now_s, True)
        msg["lanes"], msg["routines"], msg["bars"] = self.timeline.everything()
        msg["open"] = self.timeline.open_bars()
        samples = self.pool.rows(self.origin_ns or 0)
        if len(samples) > MAX_MESSAGE_SAMPLES:
            samples = thin(samples, self.pool.bucket_s, 0, 1, 2)
        msg["samples"] = message_rows(samples)
        msg["counters"] = (
            dict(self.counters) if self.counters else self.compute_counters(now_s, stats)
        )
        msg["dropped"] = max(self.dropped, self.lost)
        msg["locks"] = self.locks.message(consume=False)
        msg["findings"] = self.findings.message(consume=False)
        msg["decisions"] = [d.message() for d in self._decisions]
        msg["auto"], msg["auto_reason"] = self.auto, self.auto_reason
        msg.update(extra)
        return msg

    def view(self, now_ns: int | None = None, stats: Any = None) -> ModelView:
        """A copy of the drawable state, open bars closed at now (for static charts)."""
        now_s = self.now_s(now_ns)
        tl = self.timeline
        horizon = now_s - self.window_s
        bars = [(b[0], b[1], b[2], b[3], b[4]) for b in tl.bars if b[2] >= horizon]
        for lane, t0, kind, r in tl.open_bars():
            bars.append((lane, t0, now_s, kind, r))
        return ModelView(
            now_s=now_s,
            window_s=self.window_s,
            lanes=list(zip(tl.lane_names, tl.lane_types, strict=True)),
            routines=list(tl.routines),
            bars=bars,
            samples=self.pool.rows(self.origin_ns or 0),
            locks=[r.copy() for r in self.locks.rows()],
            counters=dict(self.compute_counters(now_s, stats)),
            findings=self.findings.message(consume=False),
            dropped=max(self.dropped, self.lost),
            decisions=[d for d in self._decisions if d[0] >= horizon],
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
        tl = self.timeline
        for span in spans:  # ordered by start, so bars on a lane merge as feed's do
            lane = tl.lane(span.thread, span.thread_name)
            r = tl.routine(span.routine)
            t0 = (span.start_ns - origin) * 1e-9
            if span.finished:
                tl.close(lane, t0, (span.end_ns - origin) * 1e-9, TASK, r)
            else:
                tl.open_task(lane, t0, r, span.job_id)
