"""Slot: a routine's named input, and the per-worker FIFO queues behind it.

A ``Slot`` is a declaration shared by every worker running its flow. The items live in a
``SlotQueue`` owned by one worker (api.md §4), so two workers, or two runtimes, never see
each other's data. Slot methods address the queue of the worker whose logic or policy is
running in this thread; outside any execution they address the flow's most recently
started worker, and a slot never run under a worker keeps a standalone queue.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import SlotQueueFullError
from ._context import current_activation, get_current_job

if TYPE_CHECKING:
    from ._job import JobContext


class SlotDataPoint(NamedTuple):
    """One queued item: the payload dict, who sent it, when, and the job it belongs to."""

    data: Any
    emitted_from: str | None = None
    emitted_at: float | datetime | None = None
    job: JobContext | None = None


def validate_queue_args(max_queue_length: Any, watermark: Any) -> None:
    if not isinstance(max_queue_length, int) or isinstance(max_queue_length, bool):
        raise TypeError(f"max_queue_length must be an int, got {max_queue_length!r}")
    if max_queue_length <= 0:
        raise ValueError(f"max_queue_length must be > 0, got {max_queue_length}")
    if not isinstance(watermark, (int, float)) or not 0.0 <= watermark <= 1.0:
        raise ValueError(f"watermark must be a number in [0, 1], got {watermark!r}")


class SlotQueue:
    """A FIFO with a consumed cursor; thread-safe. ``full`` = ``max_length`` unconsumed."""

    __slots__ = ("_items", "_cursor", "_lock", "max_length", "threshold", "label")

    def __init__(self, max_length: int, threshold: int, label: str = "") -> None:
        self._items: list[SlotDataPoint] = []
        self._cursor = 0
        self._lock = threading.Lock()
        self.max_length = max_length
        self.threshold = threshold
        self.label = label

    def put(self, point: SlotDataPoint) -> int:
        """Append ``point``; returns the unconsumed count after it.

        Raises:
            SlotQueueFullError: ``max_length`` items are already unconsumed.
        """
        with self._lock:
            items = self._items
            if len(items) >= self.threshold and self._cursor:
                del items[: self._cursor]
                self._cursor = 0
            unconsumed = len(items) - self._cursor
            if unconsumed >= self.max_length:
                raise SlotQueueFullError(
                    f"slot {self.label} is full ({self.max_length} unconsumed items); "
                    "consume faster, raise max_queue_length, or check the routine's "
                    "activation policy"
                )
            items.append(point)
            return unconsumed + 1

    def put_take(self, point: SlotDataPoint) -> list[Any]:
        """``put`` then ``consume_all_new`` in one step (the immediate policy's fast path)."""
        with self._lock:
            items = self._items
            cursor = self._cursor
            if len(items) >= self.threshold and cursor:
                del items[:cursor]
                cursor = 0
            unconsumed = len(items) - cursor
            if unconsumed >= self.max_length:
                self._cursor = cursor
                raise SlotQueueFullError(
                    f"slot {self.label} is full ({self.max_length} unconsumed items); "
                    "consume faster, raise max_queue_length, or check the routine's "
                    "activation policy"
                )
            items.append(point)
            self._cursor = len(items)
            if not unconsumed:
                return [point.data]
            new = items[cursor:]
        return [p.data for p in new]

    # -- consumption --------------------------------------------------------------------
    def consume_all_new(self) -> list[Any]:
        with self._lock:
            new = self._items[self._cursor :]
            self._cursor = len(self._items)
        return [p.data for p in new]

    def consume_one_new(self) -> Any:
        with self._lock:
            if self._cursor >= len(self._items):
                return None
            point = self._items[self._cursor]
            self._cursor += 1
        return point.data

    def consume_all(self) -> list[Any]:
        with self._lock:
            everything = list(self._items)
            self._cursor = len(self._items)
        return [p.data for p in everything]

    def consume_latest_and_mark_all_consumed(self) -> Any:
        with self._lock:
            if self._cursor >= len(self._items):
                return None
            point = self._items[-1]
            self._cursor = len(self._items)
        return point.data

    def consume_oldest_of_job(self, job: Any) -> tuple[bool, Any]:
        """Remove the oldest unconsumed item of ``job``; ``(found, data)``."""
        with self._lock:
            items = self._items
            for i in range(self._cursor, len(items)):
                if items[i].job is job:
                    point = items.pop(i)
                    return True, point.data
        return False, None

    def has_job(self, job: Any) -> bool:
        with self._lock:
            items = self._items
            for i in range(self._cursor, len(items)):
                if items[i].job is job:
                    return True
        return False

    # -- inspection ---------------------------------------------------------------------
    def peek_all_new(self) -> list[Any]:
        with self._lock:
            return [p.data for p in self._items[self._cursor :]]

    def peek_one_new(self) -> Any:
        with self._lock:
            if self._cursor >= len(self._items):
                return None
            return self._items[self._cursor].data

    def peek_points_new(self) -> list[SlotDataPoint]:
        with self._lock:
            return self._items[self._cursor :]

    def peek_first_point_new(self) -> SlotDataPoint | None:
        """The oldest unconsumed point, or None: ``peek_points_new()[0]`` without the copy."""
        with self._lock:
            cursor = self._cursor
            items = self._items
            return items[cursor] if cursor < len(items) else None

    def peek_latest(self) -> Any:
        with self._lock:
            return self._items[-1].data if self._items else None

    def unconsumed(self) -> int:
        return len(self._items) - self._cursor

    def total(self) -> int:
        return len(self._items)

    def consumed(self) -> int:
        return self._cursor

    def oldest_unconsumed_at(self) -> float | datetime | None:
        with self._lock:
            if self._cursor >= len(self._items):
                return None
            return self._items[self._cursor].emitted_at


class _QueueMethods:
    """The queue face shared by a Slot and a worker-bound view of it."""

    name: str
    max_queue_length: int
    watermark: float
    watermark_threshold: int

    def _q(self) -> SlotQueue:
        raise NotImplementedError

    def enqueue(
        self, data: Any, emitted_from: str | None = None, emitted_at: Any = None
    ) -> None:
        """Append ``data``; raises ``SlotQueueFullError`` when full (the item is not stored)."""
        if emitted_at is None:
            emitted_at = datetime.now()
        self._q().put(SlotDataPoint(data, emitted_from, emitted_at, get_current_job()))

    def consume_all_new(self) -> list[Any]:
        return self._q().consume_all_new()

    def consume_one_new(self) -> Any:
        return self._q().consume_one_new()

    def consume_all(self) -> list[Any]:
        return self._q().consume_all()

    def consume_latest_and_mark_all_consumed(self) -> Any:
        return self._q().consume_latest_and_mark_all_consumed()

    def peek_all_new(self) -> list[Any]:
        return self._q().peek_all_new()

    def peek_one_new(self) -> Any:
        return self._q().peek_one_new()

    def peek_latest(self) -> Any:
        return self._q().peek_latest()

    def get_unconsumed_count(self) -> int:
        return self._q().unconsumed()

    def get_total_count(self) -> int:
        return self._q().total()

    def get_consumed_count(self) -> int:
        return self._q().consumed()

    def get_queue_state(self) -> dict[str, Any]:
        q = self._q()
        oldest = q.oldest_unconsumed_at()
        if isinstance(oldest, (int, float)):
            oldest = datetime.fromtimestamp(oldest)
        return {
            "total_count": q.total(),
            "unconsumed_count": q.unconsumed(),
            "consumed_count": q.consumed(),
            "max_length": self.max_queue_length,
            "watermark_threshold": self.watermark_threshold,
            "oldest_unconsumed": oldest.isoformat() if oldest is not None else None,
        }

    def get_queue_status(self) -> dict[str, Any]:
        q = self._q()
        unconsumed = q.unconsumed()
        usage = unconsumed / self.max_queue_length
        if usage >= 1.0:
            level = "critical"
        elif usage >= self.watermark:
            level = "high"
        elif usage >= 0.6:
            level = "medium"
        else:
            level = "low"
        return {
            "unconsumed_count": unconsumed,
            "total_count": q.total(),
            "max_length": self.max_queue_length,
            "watermark_threshold": self.watermark_threshold,
            "usage_percentage": usage,
            "pressure_level": level,
            "is_full": unconsumed >= self.max_queue_length,
            "is_near_full": usage >= self.watermark,
        }


class Slot(_QueueMethods):
    """A named input of a routine.

    Args:
        name: the slot's name, unique within its routine.
        routine: the routine that owns it.
        max_queue_length: unconsumed items a worker's queue holds before refusing more.
        watermark: fraction of ``max_queue_length`` at which consumed items are purged.
    """

    def __init__(
        self,
        name: str = "",
        routine: Any = None,
        max_queue_length: int = 1000,
        watermark: float = 0.8,
    ) -> None:
        validate_queue_args(max_queue_length, watermark)
        self.name = name
        self.routine = routine
        self.max_queue_length = max_queue_length
        self.watermark = float(watermark)
        self.watermark_threshold = int(max_queue_length * watermark)
        self.connected_events: list[Any] = []
        self._standalone: SlotQueue | None = None
        self._standalone_lock = threading.Lock()

    def new_queue(self) -> SlotQueue:
        return SlotQueue(self.max_queue_length, self.watermark_threshold, self._label())

    def _label(self) -> str:
        rid = getattr(self.routine, "_flow_routine_id", None) or getattr(self.routine, "_id", "?")
        return f"{rid}.{self.name}"

    def _q(self) -> SlotQueue:
        act = current_activation()
        worker = None
        if act is not None and act.worker_state is not None:
            worker = act.worker_state._live_worker()
        if worker is None and self.routine is not None:
            flow = getattr(self.routine, "_flow", None)
            if flow is not None:
                worker = flow._latest_worker()
        if worker is not None:
            q = worker.queue_for(self)
            if q is not None:
                return q
        with self._standalone_lock:
            if self._standalone is None:
                self._standalone = self.new_queue()
            return self._standalone

    def for_worker(self, worker_state: Any) -> SlotView:
        """A view of this slot bound to ``worker_state``'s queue."""
        live = getattr(worker_state, "_live_worker", None)
        worker = live() if live is not None else None
        if worker is None:
            raise ValueError(f"{worker_state!r} is not a live worker of any runtime")
        q = worker.queue_for(self)
        if q is None:
            raise ValueError(f"slot {self._label()!r} does not belong to that worker's flow")
        return SlotView(self, q)

    def __repr__(self) -> str:
        return f"Slot[{self._label()}]"


class SlotView(_QueueMethods):
    """A Slot bound to one worker's queue: what a policy receives in ``slots``."""

    __slots__ = ("slot", "_queue")

    def __init__(self, slot: Slot, queue: SlotQueue) -> None:
        self.slot = slot
        self._queue = queue

    def _q(self) -> SlotQueue:
        return self._queue

    def __getattr__(self, item: str) -> Any:
        return getattr(self.slot, item)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.slot.name

    @property
    def max_queue_length(self) -> int:  # type: ignore[override]
        return self.slot.max_queue_length

    @property
    def watermark(self) -> float:  # type: ignore[override]
        return self.slot.watermark

    @property
    def watermark_threshold(self) -> int:  # type: ignore[override]
        return self.slot.watermark_threshold

    def __repr__(self) -> str:
        return f"Slot[{self.slot._label()}] (bound)"


def now_ts() -> float:
    return time.time()
