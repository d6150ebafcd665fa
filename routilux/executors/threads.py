"""ThreadExecutor: logic on the runtime's own pool thread (the default)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from ._base import Executor, TaskOutcome, TaskSpec

__all__ = ["ThreadExecutor"]


async def _await(awaitable: Any) -> Any:
    return await awaitable


class ThreadExecutor(Executor):
    """Run logic on the pool thread that took the activation: the default.

    The runtime never calls ``submit`` for it: an activation whose executor is "threads"
    runs inline on its pool thread, the fast path. ``async def`` logic under "threads"
    goes to the runtime's event loop instead (see ``AsyncioExecutor``), so awaiting never
    holds a pool thread. ``submit`` exists for composition and tests: it runs the logic
    in the calling thread and reports at once.
    """

    name = "threads"

    def submit(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        ctx = spec.bind()
        spec.started()
        try:
            result = ctx.run(spec.call)
            if inspect.isawaitable(result):
                ctx.run(asyncio.run, _await(result))
        except BaseException as exc:  # the logic's error goes to the runtime's strategy
            on_done(TaskOutcome(error=exc))
            return
        on_done(TaskOutcome())
