"""Upstream's `routilux.core.runtime` import path; same objects as `routilux`."""

from routilux import Runtime, RuntimeStatistics  # noqa: F401
