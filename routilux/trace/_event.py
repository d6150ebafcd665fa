"""``TraceEvent`` and ``EVENT_KINDS``: what one recorded event is, shared by every module here."""

from __future__ import annotations

from typing import Any, NamedTuple

EVENT_KINDS: dict[str, str] = {
    "job.posted": "a job was posted: routine is the entry routine, name the entry slot",
    "job.completed": "a job finished without error; value is its latency in seconds",
    "job.failed": "a job ended in error; value is its latency in seconds, detail the error",
    "job.cancelled": "a job was cancelled; value is its latency in seconds, detail the reason",
    "slot.enqueue": "a slot received data and its policy fired; value is its unconsumed item count afterwards (a held arrival is its barrier.wait / policy.hold)",
    "slot.full": "a slot refused an item; value is its max_queue_length",
    "policy.hold": "an activation policy declined to run yet; value is the unconsumed count",
    "barrier.wait": "an all-slots-ready routine waits; detail maps each slot to its count",
    "barrier.release": "a barrier joined one item per slot; value is the distinct job count",
    "task.queued": "an activation joined the run queue; value is the queue depth afterwards",
    "task.started": "a pool thread took a task; value is its run-queue wait in seconds",
    "task.finished": "a task's logic returned or raised; value is its run time in seconds",
    "task.error": "a task's logic raised; detail is 'ExcType: message'",
    "task.sample": "a stack sample of a long-running task; detail is the formatted stack",
    "state.write": "a routine attribute was assigned while its logic ran; name is the attribute",
    "pool.size": "tracing started; value is the worker pool's size then",
    "pool.resize": "the worker pool changed size; value is the new size, detail the old one",
    "pool.autosize": "automatic sizing decided; name the action, value the size, detail "
                     "{old, new, reason, numbers}",
    "queue.depth": "periodic sample; value is queued activations, detail {busy, size}",
    "lock.wait": "a thread started waiting for a contended traced lock; name is the lock",
    "lock.acquired": "a traced lock was acquired after a wait; value is seconds waited",
    "lock.released": "a traced lock was released after a wait for it, or while others waited; "
                     "value is seconds held (None if not known), detail the waiting it caused",
    "lock.timeout": "a lock acquire gave up; value is seconds waited",
    "lock.order": "a thread holding lock detail.held took lock name; detail has both ids and "
                  "the site (file:line), recorded once per new edge",
    "deadlock.detected": "threads wait for each other's locks in a cycle; detail is the cycle",
    "finding": "a pitfall detector's verdict; name is the finding kind",
}


class TraceEvent(NamedTuple):
    """One thing that happened in the runtime, as recorded by a ``Tracer``.

    A ``NamedTuple`` rather than a frozen dataclass: it is just as immutable and far cheaper
    to build, which matters when a reader converts a hundred thousand events. See
    docs/trace_events.md for what each field means for each kind.
    """

    seq: int
    """1-based, strictly increasing within one tracer; buffer order is seq order."""
    ts_ns: int
    """``time.monotonic_ns()`` when the event was recorded."""
    kind: str
    """One of ``EVENT_KINDS`` (not enforced when recording)."""
    thread: int
    """``threading.get_ident()`` of the recording thread."""
    thread_name: str
    """Name of the recording thread when it first recorded."""
    worker_id: str | None = None
    """The routilux WorkerState id (not the thread), if any."""
    job_id: str | None = None
    routine: str | None = None
    """Routine id within its flow."""
    name: str | None = None
    """Slot, event, lock or attribute name, depending on the kind."""
    value: int | float | None = None
    """A number whose meaning depends on the kind: a depth, a duration in seconds, a size."""
    detail: Any = None
    """A small JSON-able value, or None."""

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict keyed by field name, in field order."""
        return dict(zip(self._fields, self, strict=True))


_FIELDS: tuple[str, ...] = TraceEvent._fields
_make_event = TraceEvent._make
_NUM = (int, float)  # a number in ``value``; bools are ints too, and a value is never a bool
