"""The timeline's data: lanes, routines and bars (tasks, lock waits, barrier waits).

- One lane per recording thread that ran a task or waited for a lock, keyed by
  ``(thread, thread_name)`` because idents are recycled; one extra lane per all-slots-ready
  routine that held items at its barrier. Idle is the absence of a bar on a thread lane.
- A bar is ``[lane, t0, t1, kind, routine]``: ``kind`` is ``"task"``, ``"lock"`` (waiting
  for a traced lock) or ``"barrier"`` (items waiting for the rest of a set); ``routine``
  indexes ``routines``. Times are seconds since the model's origin (its first timestamp).
- Bounded twice: bars older than the window are pruned, and at most ``max_bars`` are kept.
  Bars closer together than the merge gap on one lane merge (same kind; same routine, or a
  predecessor too thin to see), so a lane busy with tiny tasks costs a few bars per tick
  instead of thousands. Open tasks per lane are bounded too (``MAX_OPEN_PER_LANE``): a
  start whose finish was dropped would otherwise stay open forever.

The containers are public attributes: the model's per-event loop binds them to locals
(the dashboard folds every trace event through it), and only this module and that loop
change them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["BARRIER", "BARRIER_LANE", "LOCK", "MAX_MESSAGE_BARS", "MERGE_DIVISOR",
           "MIN_MERGE_GAP_S", "TASK", "THREAD_LANE", "Timeline"]

TASK, LOCK, BARRIER = "task", "lock", "barrier"
THREAD_LANE, BARRIER_LANE = "thread", "barrier"
MAX_OPEN_PER_LANE = 64  # open tasks kept per lane (nested calls); older ones were dropped
MERGE_DIVISOR = 4_000  # adaptive merge gap = seconds shown / MERGE_DIVISOR
MIN_MERGE_GAP_S = 20e-6  # seconds; closer bars merge even at the very start
MAX_MESSAGE_BARS = 1_000  # closed bars per message before the merge gap is widened
_DIGITS = 5


def _r(x: float) -> float:
    return round(x, _DIGITS)


class Timeline:
    """Lanes, routines and bars, with what is new since the last message.

    Args:
        max_bars: Closed bars kept at most.
        merge_gap_s: Bars on one lane closer than this merge.
    """

    def __init__(self, max_bars: int, merge_gap_s: float) -> None:
        self.merge_gap_s = merge_gap_s
        self.gap_floor_s = 0.0  # raised by a message with too many bars (bound_bars)
        self.lane_names: list[str] = []
        self.lane_types: list[str] = []
        self.lane_by_ident: dict[Any, int] = {}
        self.lane_by_key: dict[tuple[Any, str], int] = {}
        self.new_lanes: list[int] = []
        self.routines: list[str] = []
        self.routine_index: dict[str | None, int] = {}
        self.new_routines: list[int] = []
        self.bars: deque[list[Any]] = deque(maxlen=max_bars)
        self.pending: list[list[Any]] = []  # closed since the last message
        # last pending bar per kind and lane: what a new bar may merge into
        self.mergeable: dict[str, dict[int, list[Any]]] = {TASK: {}, LOCK: {}, BARRIER: {}}
        self.open_tasks: dict[int, list[tuple[float, int, Any]]] = {}  # lane -> [(t0, r, job)]
        self.open_waits: dict[tuple[int, str], float] = {}  # (lane, lock) -> t0
        self.open_barriers: dict[int, tuple[float, int]] = {}  # lane -> (t0, routine)
        self.barrier_lanes: dict[Any, int] = {}  # routine -> its barrier's lane

    def lane(self, ident: Any, name: str, lane_type: str = THREAD_LANE) -> int:
        key = (ident, name)
        lane = self.lane_by_key.get(key)
        if lane is None:
            lane = len(self.lane_names)
            self.lane_by_key[key] = lane
            self.lane_names.append(name)
            self.lane_types.append(lane_type)
            self.new_lanes.append(lane)
        if lane_type == THREAD_LANE:
            self.lane_by_ident[ident] = lane
        return lane

    def barrier_lane(self, routine: Any) -> int:
        """The lane of the items an all-slots-ready routine holds at its barrier."""
        lane = self.barrier_lanes.get(routine)
        if lane is None:
            lane = self.barrier_lanes[routine] = self.lane(("barrier", routine),
                                                           f"barrier {routine}", BARRIER_LANE)
        return lane

    def thread_lane(self, ident: Any, name: str) -> int:
        lane = self.lane_by_ident.get(ident)
        if lane is None or self.lane_names[lane] != name:
            lane = self.lane(ident, name)
        return lane

    def routine(self, routine: str | None) -> int:
        index = self.routine_index.get(routine)
        if index is None:
            index = len(self.routines)
            self.routine_index[routine] = index
            self.routines.append("?" if routine is None else str(routine))
            self.new_routines.append(index)
        return index

    def adapt_gap(self, shown_s: float) -> None:
        """The adaptive merge gap for a view showing ``shown_s`` seconds: a quarter pixel
        of a 1000-pixel view, or the floor a crowded message set (``bound_bars``)."""
        self.merge_gap_s = max(MIN_MERGE_GAP_S, self.gap_floor_s, shown_s / MERGE_DIVISOR)

    def bound_bars(self, bars: list[list[Any]], window_s: float) -> None:
        """A message with more than ``MAX_MESSAGE_BARS`` closed bars raises the adaptive
        gap's floor for what follows: to the gap at which its lanes, over the time it
        spans, hold at most that many (bars further apart than the gap), capped at a full
        window's gap. Early in a run, zoomed to fill the width, 32 lanes of 1 ms tasks
        made ~2,400 bars a tick, and walking, rounding and encoding them was most of the
        pump's cost."""
        if len(bars) <= MAX_MESSAGE_BARS:
            return
        span = max(b[2] for b in bars) - min(b[1] for b in bars)
        lanes = len({b[0] for b in bars})
        self.gap_floor_s = min(window_s / MERGE_DIVISOR,
                               max(self.gap_floor_s, span * lanes / MAX_MESSAGE_BARS))

    def open_task(self, lane: int, t0: float, routine: int, job: Any) -> None:
        stack = self.open_tasks.get(lane)
        if stack is None:
            stack = self.open_tasks[lane] = []
        elif len(stack) >= MAX_OPEN_PER_LANE:
            del stack[0]  # its finish was dropped: it would never close
        stack.append((t0, routine, job))

    def close(self, lane: int, t0: float, t1: float, kind: str, routine: int) -> None:
        """A finished bar: merged into the lane's previous one when closer than the gap."""
        merge = self.mergeable[kind]
        prev = merge.get(lane)
        gap = self.merge_gap_s
        if prev is not None and t0 - prev[2] <= gap:
            if prev[4] == routine:
                if t1 > prev[2]:
                    prev[2] = t1
                return
            if prev[2] - prev[1] < gap:
                # The predecessor is too thin to see: the merged bar takes the longer part's
                # routine, so a lane alternating routines in tiny tasks stays a few bars.
                if t1 - t0 >= prev[2] - prev[1]:
                    prev[4] = routine
                if t1 > prev[2]:
                    prev[2] = t1
                return
        bar = [lane, t0, t1, kind, routine]
        self.bars.append(bar)
        self.pending.append(bar)
        merge[lane] = bar

    def open_bars(self) -> list[list[Any]]:
        """Every bar open now: ``[lane, t0, kind, routine]`` (a lock wait's routine is -1)."""
        out: list[list[Any]] = []
        for lane, stack in self.open_tasks.items():
            for t0, r, _job in stack:
                out.append([lane, _r(t0), TASK, r])
        for (lane, _lock), t0 in self.open_waits.items():
            out.append([lane, _r(t0), LOCK, -1])
        for lane, (t0, r) in self.open_barriers.items():
            out.append([lane, _r(t0), BARRIER, r])
        return out

    def prune(self, horizon_s: float) -> None:
        bars = self.bars
        while bars and bars[0][2] < horizon_s:
            bars.popleft()

    def take(self) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
        """New lanes, new routines and bars closed since the last message, as sent; they
        stop being new (and the closed bars stop merging)."""
        lanes = [[i, self.lane_names[i], self.lane_types[i]] for i in self.new_lanes]
        routines = [[i, self.routines[i]] for i in self.new_routines]
        bars = [[b[0], _r(b[1]), _r(b[2]), b[3], b[4]] for b in self.pending]
        self.new_lanes = []
        self.new_routines = []
        self.pending = []
        for merge in self.mergeable.values():
            merge.clear()
        return lanes, routines, bars

    def everything(self) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
        """Every lane, routine and kept bar, as sent (the reconnect frame)."""
        lanes = [[i, name, kind] for i, (name, kind)
                 in enumerate(zip(self.lane_names, self.lane_types, strict=True))]
        routines = [[i, name] for i, name in enumerate(self.routines)]
        bars = [[b[0], _r(b[1]), _r(b[2]), b[3], b[4]] for b in self.bars]
        return lanes, routines, bars
