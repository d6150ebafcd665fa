"""Upstream's `routilux.core.worker` import path; same objects as `routilux`."""

from routilux import ExecutionRecord, WorkerState  # noqa: F401
