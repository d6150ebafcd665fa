"""Upstream's `routilux.core.connection` import path; same objects as `routilux`."""

from routilux import Connection  # noqa: F401
