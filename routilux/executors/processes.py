"""ProcessExecutor: logic in a process pool, for CPU-bound routines the GIL would serialise.

Design:
- A ``concurrent.futures.ProcessPoolExecutor`` sized to the CPU count, created at the
  first submit, started with the "forkserver" method where there is one (children never
  inherit the runtime's threads and locks; "spawn" elsewhere).
- The pool thread that took the activation pickles it (``spec.to_bytes()``), submits it
  and returns to the run queue at once: no pool thread waits for a child. The future's
  done-callback hands the reply to the runtime, which routes the collected emits on its
  pool.
- A child that dies (``os._exit``, a segfault, the OOM killer) breaks a
  ``ProcessPoolExecutor`` for good: the activations it held fail with
  ``WorkerDiedError`` (their jobs fail, or retry under RETRY), and the next submit
  starts a fresh pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ._base import Executor, TaskOutcome, TaskSpec, WorkerDiedError
from ._remote import outcome_from_bytes, run_remote

__all__ = ["ProcessExecutor"]

logger = logging.getLogger("routilux")


def _default_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessExecutor(Executor):
    """Run logic in worker processes.

    What the logic gets is a pickled copy (slot data, policy message, the routine's
    attributes and config, a snapshot of the job and worker state); what it emits and the
    job data it sets come back with the result. See docs/executors.md.

    Args:
        max_workers: processes in the pool; default ``os.cpu_count()``.
        mp_context: a ``multiprocessing`` context or start-method name; default
            "forkserver" where available, else "spawn".
        pool: an existing ``ProcessPoolExecutor`` to use instead (it stays yours:
            ``shutdown`` leaves it running).
    """

    name = "processes"
    remote = True

    def __init__(self, max_workers: int | None = None, mp_context: Any = None,
                 pool: ProcessPoolExecutor | None = None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool)
                                        or not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be an int >= 1 or None, got {max_workers!r}")
        if isinstance(mp_context, str):
            mp_context = multiprocessing.get_context(mp_context)
        self.max_workers = max_workers or os.cpu_count() or 1
        self._mp_context = mp_context
        self._pool = pool
        self._owns_pool = pool is None
        self._lock = threading.Lock()
        self._closed = False

    def _ensure_pool(self) -> ProcessPoolExecutor:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a ProcessExecutor after shutdown")
            if self._pool is None:
                pool = ProcessPoolExecutor(
                    self.max_workers, mp_context=self._mp_context or _default_context())
                # Start every process now: the pool otherwise adds one per submit that
                # finds none idle, so a first burst would run on fewer cores than it could.
                for _ in range(self.max_workers):
                    pool.submit(os.getpid)
                self._pool = pool
            return self._pool

    def submit(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        if self._closed:
            raise RuntimeError("cannot submit to a ProcessExecutor after shutdown")
        payload = spec.to_bytes()
        pool = self._ensure_pool()
        try:
            future = pool.submit(run_remote, payload)
        except BrokenProcessPool:
            if not self._owns_pool:
                raise
            # A child died earlier: that pool is done for. Start a new one and resubmit.
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            future = self._ensure_pool().submit(run_remote, payload)
        future.add_done_callback(lambda f: on_done(_outcome_of(f, spec)))

    def shutdown(self, wait: bool = True) -> None:
        """Close the pool this executor started (a pool passed in stays open)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and self._owns_pool:
            pool.shutdown(wait=wait, cancel_futures=True)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._pool else "not started")
        return f"<ProcessExecutor max_workers={self.max_workers} {state}>"


def _outcome_of(future: Future[bytes], spec: TaskSpec) -> TaskOutcome:
    if future.cancelled():
        return TaskOutcome(error=CancelledError(
            f"routine {spec.routine_id!r}: its process-pool task was cancelled (shutdown)"))
    exc = future.exception()
    if exc is not None:
        if isinstance(exc, BrokenProcessPool):
            error = WorkerDiedError(
                f"routine {spec.routine_id!r}: the worker process running it died "
                f"(BrokenProcessPool: {exc}); the pool restarts for later work")
            error.__cause__ = exc
            return TaskOutcome(error=error)
        return TaskOutcome(error=exc)
    try:
        return outcome_from_bytes(future.result())
    except Exception as decode_error:
        return TaskOutcome(error=decode_error)
