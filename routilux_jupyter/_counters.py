"""The counters line: jobs posted, running, completed, failed, jobs/s and the p95 latency.

Bounded: the latencies of the most recent ``MAX_LATENCIES`` jobs (the p95 is over those
that ended in the window) and the finished-jobs samples of the last ``RATE_WINDOW_S``.
The model's per-event loop counts job ends into ``jobs`` and appends to ``latencies``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

__all__ = ["MAX_LATENCIES", "RATE_WINDOW_S", "JobCounters", "p95"]

MAX_LATENCIES = 5_000  # most recent job latencies for the p95
RATE_WINDOW_S = 2.0  # jobs/s is measured over about this many seconds of samples
_DIGITS = 5
_SECOND = itemgetter(1)


def p95(values: Iterable[float]) -> float | None:
    """The 95th percentile (nearest rank) of ``values``, or None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return ordered[rank - 1]


class JobCounters:
    """Job counts from the trace, latencies of recent jobs, finished jobs over time."""

    def __init__(self) -> None:
        self.jobs = {"posted": 0, "completed": 0, "failed": 0, "cancelled": 0}
        self.latencies: deque[tuple[float, float]] = deque(maxlen=MAX_LATENCIES)  # (t, s)
        self._finished_at: deque[tuple[float, int]] = deque()  # (t, finished jobs)
        self.last: dict[str, Any] = {}
        self._p95_of: tuple[Any, ...] | None = None  # what the cached p95 was computed over
        self._p95: float | None = None

    def finished(self, t: float, finished: int) -> None:
        """``statistics()``'s finished jobs (completed + failed + cancelled) at ``t``."""
        rates = self._finished_at
        rates.append((t, int(finished)))
        while len(rates) > 2 and rates[1][0] <= t - RATE_WINDOW_S:
            rates.popleft()

    def compute(self, now_s: float, window_s: float, last_t: float | None,
                stats: Any = None) -> dict[str, Any]:
        """posted, running, completed, failed, jobs_per_s, p95_latency_s.

        With ``stats`` (a ``RuntimeStatistics``) the job counts are the runtime's own;
        without, they are counted from the trace. jobs/s comes from recent samples, or from
        the trace's span (``last_t``: seconds from its first to its newest timestamp); p95
        from the latencies of jobs that ended in the window.
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
        elif stats is None and last_t is not None:
            done = completed + failed + jobs["cancelled"]
            rate = done / last_t if last_t > 0 else 0.0
        horizon = now_s - window_s
        latencies = self.latencies
        whole = not latencies or latencies[0][0] >= horizon
        key = (len(latencies), latencies[-1] if latencies else None, whole)
        if key == self._p95_of:  # nothing new ended, nothing left the window: as before
            latency = self._p95
        elif whole:  # all in the window: no filter in Python
            latency = p95(map(_SECOND, latencies))
        else:
            latency = p95(v for t, v in latencies if t >= horizon)
        if whole:
            self._p95_of, self._p95 = key, latency
        self.last = {
            "posted": posted,
            "running": running,
            "completed": completed,
            "failed": failed,
            "jobs_per_s": round(rate, 1),
            "p95_latency_s": None if latency is None else round(latency, _DIGITS),
        }
        return self.last
