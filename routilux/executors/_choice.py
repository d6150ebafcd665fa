"""Turn what a user passes as an executor (a name, an Executor, a foreign pool) into one.

Design:
- ``Routine.set_executor`` and ``Runtime(executor=)`` validate their argument here, at the
  call, so a typo fails where it was made and names the valid choices.
- Names are kept as names: the runtime makes the executor a name stands for on first use
  (and shuts it down with itself); objects the user made stay the user's.
- This module sits above the concrete executors (it wraps a ``ProcessPoolExecutor`` in a
  ``ProcessExecutor`` and a ``distributed.Client`` in a ``DaskExecutor``), so ``_base.py``,
  which they all import, imports none of them.
"""

from __future__ import annotations

import sys
from concurrent.futures import Executor as FuturesExecutor
from typing import Any

from ._base import EXECUTOR_NAMES, Executor

__all__ = ["check_executor_choice"]


def check_executor_choice(choice: Any) -> Any:
    """Validate what ``set_executor`` / ``Runtime(executor=)`` accept; returns what to keep.

    None (inherit), one of ``EXECUTOR_NAMES``, an ``Executor``, a
    ``concurrent.futures.ProcessPoolExecutor`` (wrapped, stays yours) or a
    ``distributed.Client`` (wrapped in a ``DaskExecutor``).

    Raises:
        ValueError: an unknown executor name (the message lists the names).
        TypeError: an object that is none of the above.
    """
    if choice is None or isinstance(choice, Executor):
        return choice
    if isinstance(choice, str):
        if choice not in EXECUTOR_NAMES:
            raise ValueError(
                f"unknown executor {choice!r}; choose one of {', '.join(EXECUTOR_NAMES)}, "
                "or pass an Executor (e.g. routilux.executors.DaskExecutor(client))"
            )
        return choice
    # Looked up, not imported: concurrent.futures.process imports multiprocessing (~10 ms),
    # and whoever made a ProcessPoolExecutor has loaded it already.
    process = sys.modules.get("concurrent.futures.process")
    if process is not None and isinstance(choice, process.ProcessPoolExecutor):
        # Defers multiprocessing (processes.py imports it at the top): import routilux
        # does not load the process plug-in.
        from .processes import ProcessExecutor

        return ProcessExecutor(pool=choice)
    cls = type(choice)
    # By name, not isinstance: checking against distributed.Client would import distributed.
    if cls.__name__ == "Client" and cls.__module__.startswith("distributed"):
        # Defers the Dask plug-in module: import routilux.executors leaves it unloaded (the
        # lazy face's promise); distributed itself is loaded by whoever made the Client.
        from .dask import DaskExecutor

        return DaskExecutor(choice)
    if isinstance(choice, FuturesExecutor):
        raise TypeError(
            f"{cls.__name__} is not supported as a routine executor: pass a "
            "ProcessPoolExecutor, \"threads\" for the runtime's own pool, or an "
            "routilux.executors.Executor"
        )
    raise TypeError(
        f"executor must be one of {', '.join(repr(n) for n in EXECUTOR_NAMES)}, an "
        f"routilux.executors.Executor or None, got {cls.__name__} {choice!r}"
    )
