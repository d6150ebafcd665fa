"""Upstream's `routilux.core.event` import path; same objects as `routilux`."""

from routilux import Event  # noqa: F401
