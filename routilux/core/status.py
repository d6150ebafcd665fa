"""Upstream's `routilux.core.status` import path; same objects as `routilux`."""

from routilux import ExecutionStatus, JobStatus, RoutineStatus  # noqa: F401
