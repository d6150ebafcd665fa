"""When the whole process was descheduled, read from the monitor's missed ``queue.depth`` ticks.

On a loaded machine the scheduler can stop every thread of the process at once (issue 12,
two CPU hogs stretched 20 ms tasks to 0.2 s on every thread). That time is nobody's
blocking and nobody's wait for a thread, so the pool detectors take it off first.
"""

from __future__ import annotations

import itertools
import statistics as _stats
from collections.abc import Sequence

from ..trace import TraceEvent

__all__ = ["STALL_FACTOR", "overlap_s", "process_stalls"]

STALL_FACTOR = 1.3  # a gap between monitor samples this many intervals long is a stall


def process_stalls(events: Sequence[TraceEvent]) -> list[tuple[int, int]]:
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


def overlap_s(intervals: Sequence[tuple[int, int]], start: int, end: int) -> float:
    """Seconds of [start, end] covered by ``intervals`` (disjoint, sorted)."""
    total = 0
    for a, b in intervals:
        if b <= start:
            continue
        if a >= end:
            break
        total += min(b, end) - max(a, start)
    return total / 1e9
