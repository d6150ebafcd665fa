"""The pool over time: busy threads, queued activations and size, one sample per change."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ._event import _NUM
from ._lanes import LANE_POOL, _lane_of
from ._sources import _source_events


class PoolSample(NamedTuple):
    """The pool from one instant on, until the next sample: what ``pool_series`` returns.

    Immutable (a ``NamedTuple``, as ``TraceEvent`` is: as frozen as a frozen dataclass and
    far cheaper to build, and a flood makes one per task event).
    """

    ts_ns: int
    """``time.monotonic_ns()`` from which these counts hold."""
    busy: int
    """Tasks on pool threads between their ``task.started`` and ``task.finished`` (a
    thread waiting for a lock or at a barrier inside logic is busy; coroutines on the event
    loop's lane and remote lanes hold no pool thread)."""
    queued: int
    """Activations between their ``task.queued`` and ``task.started``."""
    size: int | None
    """The pool's size (``None`` until the trace says)."""


_POOL_KINDS = frozenset({
    "task.started", "task.finished", "task.queued", "pool.size", "pool.resize",
    "queue.depth", "job.failed", "job.cancelled",
})
_BY_TIME = operator.itemgetter(1, 0)  # (ts_ns, seq)
_UNSET = object()
_new_sample = tuple.__new__  # PoolSample without its generated Python __new__ (a flood's cost)


class PoolCounter:
    """Folds trace events into ``PoolSample``s incrementally (``pool_series`` in pieces).

    For a live reader (the dashboard) that reads the trace by cursor: ``feed`` each batch
    and get the samples it adds. Each batch is taken in time order (``ts_ns``, then seq);
    an event older than the last sample (a remote task's start arriving late) counts from
    the last sample's time, so samples never go back in time.

    Rules, the same as ``pool_series``:

    - busy: +1 at a ``task.started`` on a pool lane (``task_spans`` lanes), -1 at its
      ``task.finished``. A finish whose start was dropped changes nothing; a new start on
      a pool thread that still has one open replaces it (a thread runs one task at a time).
    - queued: +1 at ``task.queued``, -1 at the ``task.started`` of the same job, routine
      and slot on any lane. A start that lands before its ``task.queued`` (the runtime
      records the queueing after handing the task over) cancels that ``task.queued``
      instead; a start with no ``task.queued`` at all (it was dropped) changes nothing.
      Activations still queued when their job fails or is cancelled leave the count at
      the ``job.failed`` / ``job.cancelled``: the runtime drops them unstarted.
    - size: the ``pool.size`` value (recorded when tracing starts), then each
      ``pool.resize``; until either is seen, the first ``queue.depth`` sample's size.

    Args:
        size: the pool size to assume until the trace says (default unknown: ``None``).
    """

    __slots__ = ("_busy", "_credit", "_lanes", "_last", "_open", "_pending", "_queued",
                 "_size", "_size_known")

    def __init__(self, size: int | None = None) -> None:
        self._busy = 0
        self._queued = 0
        self._size = size
        self._size_known = False  # a pool.size / pool.resize was seen
        self._open: dict[tuple[int, str], tuple[Any, ...]] = {}  # pool thread -> open key
        self._pending: dict[tuple[Any, ...], int] = {}  # (job, routine, slot) -> queued
        self._credit: dict[tuple[Any, ...], int] = {}  # started before their task.queued
        self._lanes: dict[tuple[int, str], bool] = {}  # (thread, name) -> a pool lane
        self._last: PoolSample | None = None

    @property
    def last(self) -> PoolSample | None:
        """The newest sample (the pool as of the last event fed), or None before any."""
        return self._last

    def feed(self, events: Iterable[Sequence[Any]]) -> list[PoolSample]:
        """Fold ``events`` (``TraceEvent``s or tuples in their field order); the new samples.

        The first event about the pool starts the series with a sample (the state after
        it). After that a sample is added only when a count changes; changes at one
        instant make one sample.
        """
        # One flat loop with locals: the live dashboard folds every event through here.
        rows = [r for r in events if r[2] in _POOL_KINDS]
        rows.sort(key=_BY_TIME)
        out: list[PoolSample] = []
        busy, queued, size = self._busy, self._queued, self._size
        open_, pending, credit, lanes = self._open, self._pending, self._credit, self._lanes
        last = self._last
        if last is None:
            lts, lb, lq, ls = None, _UNSET, _UNSET, _UNSET
        else:
            lts, lb, lq, ls = last
        for row in rows:
            ts, kind = row[1], row[2]
            if kind == "task.started":
                tn = row[3:5]  # (thread, thread_name)
                key = row[6:9]  # (job, routine, slot)
                detail = row[10]
                if detail is None:
                    pool = lanes.get(tn)
                    if pool is None:
                        pool = lanes[tn] = _lane_of(tn[0], tn[1], None) == LANE_POOL
                else:
                    pool = _lane_of(tn[0], tn[1], detail) == LANE_POOL
                if pool:
                    if tn not in open_:
                        busy += 1
                    open_[tn] = key
                n = pending.get(key)
                if n:
                    queued -= 1
                    if n > 1:
                        pending[key] = n - 1
                    else:
                        del pending[key]
                else:
                    credit[key] = credit.get(key, 0) + 1
            elif kind == "task.finished":
                tn = row[3:5]
                if open_.get(tn) == row[6:9]:
                    del open_[tn]
                    busy -= 1
            elif kind == "task.queued":
                key = row[6:9]
                c = credit.get(key)
                if c:
                    credit[key] = c - 1
                else:
                    pending[key] = pending.get(key, 0) + 1
                    queued += 1
            elif kind == "pool.size" or kind == "pool.resize":
                value = row[9]
                if isinstance(value, _NUM) and value >= 1:
                    size = int(value)
                    self._size_known = True
            elif kind == "queue.depth":
                detail = row[10]
                if not self._size_known and size is None and isinstance(detail, dict) \
                        and isinstance(detail.get("size"), _NUM):
                    size = int(detail["size"])
            else:  # job.failed / job.cancelled: its queued activations are dropped
                job = row[6]
                for key in [k for k in pending if k[0] == job]:
                    queued -= pending.pop(key)
            if busy != lb or queued != lq or size != ls:
                if lts is not None and ts < lts:
                    ts = lts  # never back in time (a late remote start)
                sample = _new_sample(PoolSample, (ts, busy, queued, size))
                if out and ts == lts:  # lts is out[-1]'s time whenever out is not empty
                    out[-1] = sample  # several changes at one instant: the state after all
                    if len(out) > 1 and out[-2][1:] == sample[1:]:
                        out.pop()  # ... which undid each other
                        sample = out[-1]
                else:
                    out.append(sample)
                lts, lb, lq, ls = sample
        self._busy, self._queued, self._size = busy, queued, size
        if out:
            self._last = out[-1]
        return out


def pool_series(source: Any) -> list[PoolSample]:
    """Busy threads, queued activations and pool size over a trace: one sample per change.

    Exact: at every instant the sample in effect equals what the task events say (the
    rules are ``PoolCounter``'s), unlike the ``queue.depth`` samples, which are taken every
    ~100 ms and miss what happens between. Every chart of the pool and the detectors read
    this series.

    Args:
        source: a ``Tracer``, a traced ``Runtime``, a saved trace's path, or an iterable
            of ``TraceEvent``.

    Returns:
        ``PoolSample``s in time order; the first at the first event about the pool (the
        state after it), then one per change. Empty for a trace without such events.

    Raises:
        TypeError: ``source`` is none of those.
        ValueError: a runtime that does not trace.
    """
    return PoolCounter().feed(_source_events(source, "pool_series"))
