"""Upstream's `routilux.core.registry` import path; same objects as `routilux`."""

from routilux import FlowRegistry, WorkerRegistry, get_flow_registry, get_worker_registry  # noqa: F401
