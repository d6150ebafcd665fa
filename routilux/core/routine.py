"""Upstream's `routilux.core.routine` import path; same objects as `routilux`."""

from routilux import ExecutionContext, Routine  # noqa: F401
