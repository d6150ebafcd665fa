"""Upstream's `routilux.core.flow` import path; same objects as `routilux`."""

from routilux import Flow  # noqa: F401
