"""Upstream's `routilux.core.error` import path; same objects as `routilux`."""

from routilux import ErrorHandler, ErrorStrategy  # noqa: F401
