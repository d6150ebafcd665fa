"""Where a routine's logic runs: executors behind one small interface.

``routine.set_executor(...)`` (or ``Runtime(executor=...)`` for every routine) picks one:

- ``"threads"`` (default) - the runtime's own pool thread; ``async def`` logic goes to the
  runtime's event loop instead, so awaiting I/O holds no pool thread.
- ``"asyncio"`` - ``AsyncioExecutor``: coroutine logic on one event-loop thread per runtime.
- ``"processes"`` - ``ProcessExecutor``: a process pool sized to the CPU count, for
  CPU-bound logic (data must be picklable).
- ``DaskExecutor(client)`` - logic as tasks on a Dask ``distributed`` cluster.

The interface (``Executor.submit(spec, on_done)``) and what remote logic can and cannot
touch are described in docs/executors.md. ``DaskExecutor`` imports ``distributed`` only
when one is made; the other executors load on first use (module ``__getattr__``, as
``concurrent.futures`` does), so ``import routilux`` stays light.

``run_remote`` and ``outcome_from_bytes`` are the activation codec, which belongs to the
engine (``routilux._engine._wire``); they are re-exported here because custom
out-of-process executors were documented to call them. New code uses ``spec.remote_call``
and ``spec.outcome(reply)`` instead, and the executor modules themselves import only
``_base``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._base import (
    Executor,
    RemoteLogicError,
    RemoteTiming,
    TaskOutcome,
    TaskSpec,
    WorkerDiedError,
)

__all__ = [
    "AsyncioExecutor",
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "RemoteLogicError",
    "RemoteTiming",
    "TaskOutcome",
    "TaskSpec",
    "ThreadExecutor",
    "WorkerDiedError",
    "outcome_from_bytes",
    "run_remote",
]

# Loaded on first use: processes.py imports multiprocessing (~10 ms), and the codec (the
# engine's _wire.py) imports cloudpickle (~5 ms with it); neither belongs in import routilux.
_LAZY = {
    "AsyncioExecutor": ".asyncio",
    "DaskExecutor": ".dask",
    "ProcessExecutor": ".processes",
    "ThreadExecutor": ".threads",
    "run_remote": "routilux._engine._wire",
    "outcome_from_bytes": "routilux._engine._wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
