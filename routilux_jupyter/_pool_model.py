"""The "Queue depth and busy threads" panel's data: ``routilux.trace.pool_series``, live.

``PoolSeries`` folds trace events with a ``routilux.trace.PoolCounter`` (the same rules and
the same samples as ``pool_series``: one per change of busy threads, queued activations or
pool size, exact at every instant) and keeps them bounded:

- New samples wait in ``unsent`` as the counter's own ``PoolSample``s (nothing is built
  per sample on the fold). A message takes them all, unless there are more than
  ``MAX_MESSAGE_SAMPLES``: then, per time bucket of ``window_s / MAX_MESSAGE_SAMPLES``
  (below a pixel of the view), the bucket's first state, its highest queue, its most busy
  threads and its last state, so no peak and no step is lost at the view's resolution (a
  flood changes the pool at every event: 100,000 samples in one refresh). Past that
  count each new batch is thinned as it is folded (``feed``), so a flood's samples never
  pile up.
- What was sent is kept (``kept``) until it leaves the window; past ``max_kept`` samples
  the kept ones are thinned the same way, in buckets of ``window_s / (max_kept / 8)``
  (the view's pixel or coarser), which leaves about half of ``max_kept`` (four per
  bucket at most). So memory and a reconnecting view's frame are bounded whatever the
  trace size, and the static picture draws what the browser was sent.

A runtime that does not trace has no events: its ``statistics()`` snapshots are the
samples instead (``snapshot``), never mixed with a trace's (they would alias with
periodic work).

Automatic sizing's decisions (``pool.autosize`` events) mark the size line: ``Decision``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from routilux.trace import PoolCounter, PoolSample

__all__ = ["MAX_MESSAGE_SAMPLES", "Decision", "PoolSeries", "decision_of", "thin"]

MAX_MESSAGE_SAMPLES = 4_000  # pool samples per message before they are thinned per bucket
MAX_KEPT_SAMPLES = 8 * MAX_MESSAGE_SAMPLES  # kept live before they are thinned again
_DIGITS = 5  # decimals of seconds in messages (10 microseconds)
_NUMBER = (int, float)

Row = tuple[float, int, int, int]  # (t, queued, busy, size): the model's sample


def thin(samples: Sequence[Any], bucket: float, t: int = 0, q: int = 2, b: int = 1,
         ) -> list[Any]:
    """Per bucket of ``bucket`` time units from the bucket's first sample: its first
    sample, the one with the highest queue, the one with the most busy threads and its
    last, in time order (``t``, ``q``, ``b`` index time, queued and busy in a sample).

    ``samples`` is a list in time order. Linear, with the per-sample work in C (bisect,
    map, max, index): a flood's 10,000 samples thin in well under a millisecond.
    """
    out: list[Any] = []
    n = len(samples)
    at, qof, bof = itemgetter(t), itemgetter(q), itemgetter(b)
    i = 0
    while i < n:
        j = bisect_left(samples, samples[i][t] + bucket, i + 1, n, key=at)
        if j - i <= 2:
            out.extend(samples[i:j])
        else:
            group = samples[i:j]
            qs = list(map(qof, group))
            bs = list(map(bof, group))
            keep = sorted({0, qs.index(max(qs)), bs.index(max(bs)), j - i - 1})
            out.extend(group[k] for k in keep)
        i = j
    return out


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
        return [round(self.t, _DIGITS), self.action, self.old, self.new, self.reason]


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


class PoolSeries:
    """``pool_series`` folded as events arrive, bounded by the window (see the module doc).

    Not thread-safe: the model's owner serializes calls.

    Args:
        window_s: Seconds of history shown (sets the thinning bucket).
        max_kept: Samples kept before they are thinned (None: all, for a static report).
        thin_on_feed: Thin a flood's samples as they are folded (see ``feed``).
    """

    def __init__(self, window_s: float, max_kept: int | None = MAX_KEPT_SAMPLES,
                 thin_on_feed: bool = False) -> None:
        self.window_s = window_s
        self.max_kept = max_kept
        self.thin_on_feed = thin_on_feed
        self.counter = PoolCounter()
        self.unsent: list[PoolSample] = []  # the counter's samples since the last message
        self.kept: deque[Row] = deque()  # sent samples, (t, queued, busy, size), in the window
        self.traced = False  # a trace event about the pool was seen: snapshots are not drawn
        self._thinning = False  # the unsent samples passed MAX_MESSAGE_SAMPLES: thin batches

    @property
    def bucket_s(self) -> float:
        """Thinning bucket: below one pixel of a view showing ``window_s``."""
        return self.window_s / MAX_MESSAGE_SAMPLES

    def feed(self, rows: Iterable[Sequence[Any]]) -> None:
        """Fold trace rows (any kinds; the counter picks the pool's) in seq order.

        With ``thin_on_feed`` (the live pump), once the unsent samples pass
        ``MAX_MESSAGE_SAMPLES`` the message will be thinned anyway, so each new batch is
        thinned as it comes: a flood's samples (one per event) are dropped right after the
        fold instead of piling up until the message, which made the garbage collector run
        more often for every thread (measured: one more full collection per 2.5 s of a
        traced fan-out flood, about 100 ms). ``view()`` then holds what the browser gets.
        """
        new = self.counter.feed(rows)
        if not new:
            return
        self.traced = True
        if self.thin_on_feed and (self._thinning
                                  or len(self.unsent) + len(new) > MAX_MESSAGE_SAMPLES):
            bucket = self.bucket_s * 1e9
            if not self._thinning:
                self.unsent = thin(self.unsent, bucket)
                self._thinning = True
            self.unsent.extend(thin(new, bucket))
        else:
            self.unsent.extend(new)

    def snapshot(self, ts_ns: int, queued: int, busy: int, size: int) -> None:
        """A ``statistics()`` snapshot: a sample only while the trace has said nothing."""
        if not self.traced and self.counter.last is None:
            self.unsent.append(PoolSample(ts_ns, int(busy), int(queued), int(size)))

    def take(self, origin_ns: int) -> list[Row]:
        """The unsent samples as model rows, thinned past ``MAX_MESSAGE_SAMPLES``; they
        move to ``kept``. ``t`` is seconds since ``origin_ns``, unrounded (views compare
        equal to ``pool_series``)."""
        unsent = self.unsent
        if not unsent:
            return []
        self.unsent = []
        if self._thinning or len(unsent) > MAX_MESSAGE_SAMPLES:
            unsent = thin(unsent, self.bucket_s * 1e9)  # joins buckets split between batches
        self._thinning = False
        rows = [((p[0] - origin_ns) * 1e-9, p[2], p[1], p[3] or 0) for p in unsent]
        self.kept.extend(rows)
        if self.max_kept is not None and len(self.kept) > self.max_kept:
            # Buckets of window / (max_kept / 8): at most four samples each, so a window's
            # worth (plus the tick not yet pruned) comes to about half of max_kept.
            bucket = max(self.bucket_s, self.window_s * 8 / self.max_kept)
            self.kept = deque(thin(list(self.kept), bucket, 0, 1, 2))
        return rows

    def rows(self, origin_ns: int) -> list[Row]:
        """Every sample held, kept then unsent (unthinned), in time order."""
        out = list(self.kept)
        out.extend(((p[0] - origin_ns) * 1e-9, p[2], p[1], p[3] or 0) for p in self.unsent)
        return out

    def prune(self, horizon_s: float) -> None:
        """Drop kept samples before ``horizon_s``, but the one in effect at it."""
        kept = self.kept
        while len(kept) > 1 and kept[1][0] <= horizon_s:
            kept.popleft()


def message_rows(rows: Iterable[Row]) -> list[list[Any]]:
    """Samples as the browser takes them: ``[t, queued, busy, size]``, t rounded."""
    return [[round(r[0], _DIGITS), r[1], r[2], r[3]] for r in rows]
