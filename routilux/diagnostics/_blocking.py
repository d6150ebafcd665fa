"""Blocking the pool: tasks that held a pool thread far longer than their peers (``blocking``).

Read from the tasks ``routilux.trace.task_spans`` rebuilds on pool threads (a coroutine on
the event loop's lane or logic on a remote lane holds no pool thread). A task is reported
when it ran at least *blocking_min_s* = 0.1 s **and** activations waited in the run queue
while it ran **and** either

- *outlier*: it ran *blocking_ratio* = 10 times the median of its routine's other tasks
  (the routine needs *blocking_min_peers* = 3 finished peers; otherwise the median of all
  other tasks is used), and at least *blocking_lone_s* = 1.0 s: on a busy machine the
  scheduler alone stretches a short task tenfold, with its stack still in the call it was
  making (a 20 ms ``time.sleep`` took 0.55 s beside two CPU hogs); or
- *saturated*, when no short peers exist: long tasks held every pool thread while the
  queue was not empty (a moment of ``routilux.trace.pool_series`` with busy >= size and
  queued > 0 that only long tasks overlap). A routine whose tasks are short does not
  qualify: a few stretched ones are not "all long".

"Waited" means such a moment during the task, or another activation whose queue wait
(``task.started`` value, or a ``task.queued`` still waiting) overlaps the task by
*blocking_queue_wait_s* = 0.05 s.

Scheduler delay is not blocking: time the whole process was stalled (the monitor missed
its ``queue.depth`` tick) is taken off each task first, and an outlier during which pool
threads sat idle with work queued (``UNDISPATCHED_SHARE`` of its time) is dropped: the
queue waited for the scheduler, not for the task.

The ``task.sample`` stacks of the flagged tasks (or, for a live runtime, stacks taken by
``diagnose`` itself) say where it blocks, by majority, e.g. "time.sleep in fetch() at
notebook cell line 4". One finding per routine.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..trace import PoolCounter, TraceEvent
from ._finding import DEFAULT_THRESHOLDS, Finding, fmt_s, seqs
from ._stacks import locate
from ._stalls import overlap_s, process_stalls
from ._tasks import POOL_LANES, Span, Wait, pool_size, queue_waits, tasks

__all__ = ["UNDISPATCHED_SHARE", "WAITERS_CAP", "detect_blocking"]

UNDISPATCHED_SHARE = 0.5  # an outlier's time with idle threads and queued work: not blocking
WAITERS_CAP = 1000  # queue waits counted per long task (evidence "waiting" stops there)


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
    spans, stalled = _spans_without_stalls(events, now_ns)
    long_spans = [s for s in spans if s.dur_s >= blocking_min_s]
    if not long_spans:
        return []
    pool = _PoolDuring(events, statistics, spans, long_spans, now_ns,
                       blocking_queue_wait_s, blocking_min_peers)
    flagged: dict[Any, list[_Hit]] = defaultdict(list)
    for span in long_spans:
        hit = pool.judge(span, blocking_ratio, blocking_min_s, blocking_lone_s)
        if hit is not None:
            flagged[span.routine].append(hit)
    if not flagged:
        return []
    task_samples: dict[int, list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "task.sample":
            task_samples[e.thread].append(e)
    live = {r.get("thread"): r for r in running if r.get("stack")}
    return [_finding(routine, hits, pool.size, stalled, task_samples, live)
            for routine, hits in flagged.items()]


def _spans_without_stalls(events: Sequence[TraceEvent], now_ns: int,
                          ) -> tuple[list[Span], dict[tuple[int, str, int], float]]:
    """The pool tasks with the time the whole process was stalled taken off each, and
    that time per task (by thread, thread name and start)."""
    stalls = process_stalls(events)
    stalled: dict[tuple[int, str, int], float] = {}
    spans = []
    for s in tasks(events, now_ns, POOL_LANES):
        lost = overlap_s(stalls, s.start_ns, s.end_ns)
        if lost > 0:  # judge the time the process ran, not the time it was descheduled
            stalled[(s.thread, s.thread_name, s.start_ns)] = lost
            s = s._replace(dur_s=max(0.0, s.dur_s - lost))
        spans.append(s)
    return spans, stalled


class _Hit(NamedTuple):
    """A task flagged as blocking, with what it is judged against."""

    span: Span
    shape: str  # "outlier" or "saturated"
    ref: float | None  # the median run time it was compared with
    waiting: int  # activations that waited behind it
    support: list[TraceEvent]


class _PoolDuring:
    """What the pool and its queue did while each task ran, indexed for O(log n) lookups."""

    def __init__(self, events: Sequence[TraceEvent], statistics: Any, spans: list[Span],
                 long_spans: list[Span], now_ns: int, queue_wait_s: float,
                 min_peers: int) -> None:
        self.waits = queue_waits(events, now_ns)
        self.wait_ends = [w.end_ns for w in self.waits]
        self.max_wait_ns = max((w.end_ns - w.begin_ns for w in self.waits), default=0)
        self.series = PoolCounter().feed(events)  # = routilux.trace.pool_series(events)
        self.series_ts = [p.ts_ns for p in self.series]
        self.size = pool_size(events, statistics, self.series)
        by_routine: dict[Any, list[float]] = defaultdict(list)
        for s in spans:
            if s.finished:
                by_routine[s.routine].append(s.dur_s)
        for durs in by_routine.values():
            durs.sort()
        self.by_routine = by_routine
        self.every = sorted(d for durs in by_routine.values() for d in durs)
        self.long_starts = sorted(s.start_ns for s in long_spans)
        self.long_ends = sorted(s.end_ns for s in long_spans)
        self.min_overlap_ns = int(queue_wait_s * 1e9)
        self.min_peers = min_peers

    def judge(self, span: Span, ratio: float, min_s: float, lone_s: float) -> _Hit | None:
        """``span`` as a blocking task (outlier or saturated), or None if it is not one."""
        # The pool as it was while the task ran: from the sample in effect at its start.
        i = max(0, bisect.bisect_right(self.series_ts, span.start_ns) - 1)
        j = bisect.bisect_right(self.series_ts, span.end_ns)
        full = [p for p in self.series[i:j] if p.queued > 0 and p.size and p.busy >= p.size]
        own = self.median_without(self.by_routine.get(span.routine, []), span)
        ref = own if own is not None else self.median_without(self.every, span)
        if ref is not None and span.dur_s >= ratio * ref:
            shape = "outlier"
            if span.dur_s < lone_s:
                # A short task stretched tenfold: on a loaded machine the scheduler alone
                # does that (a 20 ms sleep took 0.55 s beside two CPU hogs, its stack still
                # in time.sleep), so an outlier must hold its thread blocking_lone_s.
                return None
            if self.undispatched(span) >= UNDISPATCHED_SHARE:
                # Threads sat idle with work queued meanwhile: the queue waited for the
                # scheduler to run them (a loaded machine), not for this task (issue 12).
                return None
        elif own is not None and own < min_s:
            return None  # its routine's tasks are short: a few stretched ones are not "all long"
        else:  # no short peers: did long tasks hold every thread while the queue waited?
            full = [p for p in full
                    if self.long_running_at(max(p.ts_ns, span.start_ns)) >= (p.size or 1)]
            if not full:
                return None
            shape = "saturated"
        # Saturated samples already give the queue depth: then a few waiters suffice.
        waiters = self.waiters_of(span, 10 if full else WAITERS_CAP)
        waiting = max(len(waiters), max((p.queued for p in full), default=0))
        if waiting <= 0:
            return None  # nobody waited behind it: it cost a thread, not a queue
        return _Hit(span, shape, ref, waiting, list(span.evs) + [w.ev for w in waiters[:10]])

    def median_without(self, durs: list[float], span: Span) -> float | None:
        """The median of sorted ``durs`` without ``span``'s own run time, in O(log n)."""
        skip = None
        if span.finished:
            k = bisect.bisect_left(durs, span.dur_s)
            if k < len(durs) and durs[k] == span.dur_s:
                skip = k
        n = len(durs) - (skip is not None)
        if n < self.min_peers or n == 0:
            return None

        def nth(k: int) -> float:
            return durs[k + 1] if skip is not None and k >= skip else durs[k]

        mid = n // 2
        return nth(mid) if n % 2 else (nth(mid - 1) + nth(mid)) / 2

    def undispatched(self, span: Span) -> float:
        """The share of ``span`` during which a pool thread was idle while work queued."""
        series = self.series
        k = max(0, bisect.bisect_right(self.series_ts, span.start_ns) - 1)
        idle_ns = 0
        while k < len(series) and series[k].ts_ns < span.end_ns:
            p = series[k]
            nxt = series[k + 1].ts_ns if k + 1 < len(series) else span.end_ns
            lo, hi = max(p.ts_ns, span.start_ns), min(nxt, span.end_ns)
            if hi > lo and p.queued > 0 and p.size and p.busy < p.size:
                idle_ns += hi - lo
            k += 1
        return idle_ns / max(1, span.end_ns - span.start_ns)

    def long_running_at(self, ts: int) -> int:
        """How many long tasks were running at ``ts``."""
        return bisect.bisect_right(self.long_starts, ts) - bisect.bisect_left(self.long_ends, ts)

    def waiters_of(self, span: Span, cap: int) -> list[Wait]:
        """Other activations whose queue wait overlapped the task (at most ``cap``)."""
        out = []
        min_overlap_ns = self.min_overlap_ns
        lo = bisect.bisect_left(self.wait_ends, span.start_ns + min_overlap_ns)
        hi = bisect.bisect_right(self.wait_ends, span.end_ns + self.max_wait_ns)
        for k in range(lo, hi):  # no slice: a long queue would be copied per task
            w = self.waits[k]
            if w.ev is not span.evs[0] and \
                    min(w.end_ns, span.end_ns) - max(w.begin_ns, span.start_ns) >= min_overlap_ns:
                out.append(w)
                if len(out) >= cap:
                    break
        return out


def _where_it_blocks(hits: list[_Hit], task_samples: Mapping[int, list[TraceEvent]],
                     live: Mapping[Any, Mapping[str, Any]],
                     ) -> tuple[str | None, bool, Any, list[TraceEvent]]:
    """(place, whether it waits there, the stack, the samples that show it) by majority.

    The place most of the flagged tasks' stacks show (ties: the longest task's). Each task
    is sampled once, at a monitor tick after it ran 0.1 s; on a loaded machine a late tick
    can land just after the wait ended (the loop line after a time.sleep), so one task's
    sample alone may name the wrong line (a soak run of notebook 02 beside two CPU hogs,
    issue 12).
    """
    seen: list[tuple[tuple[str | None, bool], Any, TraceEvent | None]] = []
    for h in hits:
        s = h.span
        sample = next((e for e in task_samples.get(s.thread, ())
                       if s.start_ns <= e.ts_ns <= s.end_ns), None)
        if sample is not None:
            seen.append((locate(sample.detail), sample.detail, sample))
        elif not s.finished and s.thread in live:
            seen.append((locate(live[s.thread]["stack"]), live[s.thread]["stack"], None))
    if not seen:
        where, is_waiting = locate(None)
        return where, is_waiting, None, []
    votes = Counter(place for place, _, _ in seen)
    best = votes.most_common(1)[0][0]  # equal counts: the first seen wins
    (where, is_waiting), stack, _ = next(x for x in seen if x[0] == best)
    return where, is_waiting, stack, [x[2] for x in seen if x[0] == best and x[2] is not None]


def _finding(routine: Any, hits: list[_Hit], size: int | None,
             stalled: Mapping[tuple[int, str, int], float],
             task_samples: Mapping[int, list[TraceEvent]],
             live: Mapping[Any, Mapping[str, Any]]) -> Finding:
    """One routine's finding, told from its longest flagged task."""
    hits.sort(key=lambda h: -h.span.dur_s)
    span, ref = hits[0].span, hits[0].ref
    shape = hits[0].shape
    waiting = max(h.waiting for h in hits)
    support = [e for h in hits for e in h.support]
    where, is_waiting, stack, samples = _where_it_blocks(hits, task_samples, live)
    support += samples
    any_outlier = any(h.shape == "outlier" for h in hits)
    unfinished = sum(1 for h in hits if not h.span.finished)
    so_far = "" if span.finished else " so far"
    if any_outlier and ref is not None:
        ratio = span.dur_s / ref if ref > 0 else math.inf
        head = (f"Routine {routine!r} held a pool thread for {fmt_s(span.dur_s)}{so_far} "
                f"({ratio:.0f}x its median of {fmt_s(ref)})")
    else:
        head = (f"Routine {routine!r} held all {size or 'the'} pool threads with tasks "
                f"of up to {fmt_s(span.dur_s)}{so_far}")
    lost = stalled.get((span.thread, span.thread_name, span.start_ns), 0.0)
    if lost:
        head += f" (not counting {fmt_s(lost)} the whole process was stalled)"
    title = f"{head} while {waiting} activation{'s' * (waiting != 1)} waited in the queue"
    if where:
        title += f"; it {'blocks' if is_waiting else 'was'} at {where}"
    return Finding(
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
        _fix(size, waiting, where, is_waiting), seqs(support), key=f"blocking:{routine}",
    )


def _fix(size: int | None, waiting: int, where: str | None, is_waiting: bool) -> str:
    """Keep blocking calls off the pool; a pool size to try; a word on CPU-bound work."""
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
    return fix
