"""``run_sync``: finish a coroutine from synchronous code, also inside a running loop.

In a notebook, top-level ``await job`` and ``await runtime.wait_async()`` need nothing from
here. ``run_sync`` is for code that must stay synchronous (a helper function, a library
calling ``asyncio.run``) while the kernel's event loop is running. Only then is
``nest_asyncio2`` imported and applied to that loop: never at import of ``routilux`` or of
this package.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")
NEST_ASYNCIO2_MIN = "1.6"


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` to completion and return its result (or raise its exception).

    With no event loop running in this thread this is ``asyncio.run``. With one running (a
    notebook cell), ``nest_asyncio2`` is applied to that loop once, so it can be re-entered.

    Raises:
        TypeError: ``awaitable`` is not awaitable (e.g. a coroutine function, not called).
        ImportError: A loop is running and nest-asyncio2 is missing.
    """
    if not inspect.isawaitable(awaitable):
        hint = " (call it: run_sync(f()), not run_sync(f))" if callable(awaitable) else ""
        raise TypeError(
            f"run_sync needs an awaitable such as a coroutine, got {type(awaitable).__name__}{hint}"
        )
    coro: Any = awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    try:
        import nest_asyncio2
    except ImportError as exc:
        coro.close()
        raise ImportError(
            f"run_sync inside a running event loop needs nest-asyncio2>={NEST_ASYNCIO2_MIN}; "
            f"install it with: pip install 'nest-asyncio2>={NEST_ASYNCIO2_MIN}' "
            f"(or pip install 'routilux[jupyter]'), or use top-level await in the cell"
        ) from exc
    nest_asyncio2.apply(loop)
    return loop.run_until_complete(coro)
