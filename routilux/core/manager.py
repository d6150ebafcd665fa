"""Upstream's `routilux.core.manager` import path; same objects as `routilux`."""

from routilux import WorkerManager, get_worker_manager, reset_worker_manager  # noqa: F401
