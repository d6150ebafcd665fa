"""Upstream's `routilux.core.hooks` import path; same objects as `routilux`."""

from routilux import (  # noqa: F401
    ExecutionHooksInterface,
    NullExecutionHooks,
    get_execution_hooks,
    reset_execution_hooks,
    set_execution_hooks,
)
