"""Which executor runs a plan's logic: the pool thread, a chosen executor, or one made here.

A runtime's default choice (``Runtime(executor=...)``) and a routine's own
(``routine.set_executor``) are names or ``Executor`` objects, already checked by
``executors._choice``. Names the runtime must serve itself (``"asyncio"`` for coroutine
logic, ``"processes"``) are made on first use, one per runtime, and closed with it, or
by a finaliser if the runtime is dropped without ``shutdown()``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from .._model._routine import Routine
from ._offload import is_coroutine_logic

logger = logging.getLogger("routilux")


class ExecutorChoice:
    """A runtime's executors: its default choice and the executors it made by name."""

    __slots__ = ("default", "owned", "_lock")

    def __init__(self, default: Any) -> None:
        self.default = default
        self.owned: dict[str, Any] = {}  # by name: made (lazily) here and closed by close()
        self._lock = threading.Lock()

    def for_plan(self, owner: object, routine: Routine, logic: Any) -> Any:
        """The executor that runs ``logic``; None for the pool thread itself.

        ``owner`` (the runtime) is watched by a finaliser once this makes an executor,
        so its threads or processes end with the runtime even without ``shutdown()``.
        """
        choice = routine.__dict__.get("_executor")
        if choice is None:
            choice = self.default
        name = choice if isinstance(choice, str) else getattr(choice, "name", None)
        if choice is None or name in ("threads", "asyncio"):
            if not is_coroutine_logic(logic):
                return None  # sync logic: the pool thread (an event loop is for coroutines)
            return choice if name == "asyncio" and not isinstance(choice, str) \
                else self._owned(owner, "asyncio")
        if isinstance(choice, str):
            return self._owned(owner, choice)
        return choice

    def _owned(self, owner: object, name: str) -> Any:
        ex = self.owned.get(name)
        if ex is not None:
            return ex
        with self._lock:
            ex = self.owned.get(name)
            if ex is None:
                # Here, not at import: ProcessExecutor imports multiprocessing and
                # concurrent.futures.process, AsyncioExecutor asyncio; `import routilux`
                # loads neither.
                if name == "asyncio":
                    from ..executors.asyncio import AsyncioExecutor as make  # defers asyncio
                else:
                    from ..executors.processes import ProcessExecutor as make  # multiprocessing
                ex = make()
                if not self.owned:  # closed with a runtime never shut down
                    weakref.finalize(owner, close_executors, self.owned)
                self.owned[name] = ex
            return ex

    def close(self, wait: bool) -> None:
        """Shut down the executors made here (event loop thread, process pool)."""
        close_executors(self.owned, wait=wait)


def close_executors(executors: dict[str, Any], wait: bool = False) -> None:
    """Shut down ``executors``; a failure is logged and the others still close."""
    for ex in list(executors.values()):
        try:
            ex.shutdown(wait=wait)
        except Exception:
            logger.exception("routilux: shutting down %r failed", ex)
