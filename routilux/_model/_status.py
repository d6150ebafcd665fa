"""Status enums: ``str`` enums, so each member equals its lowercase value.

``str(JobStatus.PENDING)`` is ``'JobStatus.PENDING'``, as upstream Routilux's plain
``(str, Enum)`` members print (its tests assert it); ``format()`` and f-strings give the
value (``f"{JobStatus.PENDING}"`` is ``'pending'``), so messages built from a status stay
readable and equal to what a job's plain-string ``status`` prints.
"""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class ExecutionStatus(_StrEnum):
    """The state of a worker (one live instance of a flow)."""

    PENDING = "pending"
    RUNNING = "running"
    IDLE = "idle"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RoutineStatus(_StrEnum):
    """The state a routine's entry in ``routine_states`` reports."""

    PENDING = "pending"
    RUNNING = "running"
    IDLE = "idle"
    COMPLETED = "completed"
    FAILED = "failed"
    ERROR_CONTINUED = "error_continued"
    SKIPPED = "skipped"


class JobStatus(_StrEnum):
    """The state of one posted job."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})
