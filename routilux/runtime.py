"""compat: `routilux.runtime.Runtime`, as the docs import it."""

from routilux import Runtime, RuntimeStatistics  # noqa: F401
