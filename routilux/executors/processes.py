"""ProcessExecutor: logic in a process pool, for CPU-bound routines the GIL would serialise.

Design:
- A ``concurrent.futures.ProcessPoolExecutor`` sized to the CPU count, created at the
  first submit, started with the "forkserver" method where there is one (children never
  inherit the runtime's threads and locks; "spawn" elsewhere).
- The pool thread that took the activation pickles it (``spec.to_bytes()``), submits it
  (to run ``spec.remote_call`` in a child) and returns to the run queue at once: no pool thread waits for a child. The future's
  done-callback hands the reply to the runtime, which routes the collected emits on its
  pool.
- A child that dies (``os._exit``, a segfault, the OOM killer) breaks a
  ``ProcessPoolExecutor`` for good, and it fails *every* pending future with it. Each
  child therefore reports which activation it starts (its token and pid, on a queue set
  up by the pool's initializer). When the pool breaks, the activations that had started
  in a child that was already dead fail with ``WorkerDiedError`` (their jobs fail, or
  retry under RETRY); every other one (queued, or running in a child the broken pool
  then terminates) is submitted again to a fresh pool, up to ``MAX_RESUBMITS`` times.
  A pool passed in (``pool=``) has no such queue: a break fails all it held.
- Interpreter exit never waits for a child (issue 13; api.md §9: a forgotten shutdown
  never blocks exit). ``concurrent.futures`` joins its pools' manager threads at exit,
  and they wait for running work; a ``threading`` exit hook registered after it (so run
  before it) kills the children of the pools this module started first.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ._base import Executor, TaskOutcome, TaskSpec, WorkerDiedError

__all__ = ["ProcessExecutor"]

logger = logging.getLogger("routilux")

MAX_RESUBMITS = 3  # times one activation is sent again after pools broke under it


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
        self._abandoned = False  # the interpreter is exiting: outcomes are not delivered
        self._tokens = itertools.count(1)
        _live.add(self)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a ProcessExecutor after shutdown")
            if self._pool is None:
                ctx = self._mp_context or _default_context()
                started = ctx.SimpleQueue()
                pool = ProcessPoolExecutor(self.max_workers, mp_context=ctx,
                                           initializer=_child_init, initargs=(started,))
                pool._routilux_started = started  # type: ignore[attr-defined]
                # Start every process now: the pool otherwise adds one per submit that
                # finds none idle, so a first burst would run on fewer cores than it could.
                for _ in range(self.max_workers):
                    pool.submit(os.getpid)
                self._pool = pool
            return self._pool

    def submit(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        if self._closed:
            raise RuntimeError("cannot submit to a ProcessExecutor after shutdown")
        self._send(spec.to_bytes(), spec, on_done, 0)

    def _send(self, payload: bytes, spec: TaskSpec, on_done: Callable[[TaskOutcome], None],
              resent: int) -> None:
        pool = self._ensure_pool()
        token = next(self._tokens)
        try:
            future = pool.submit(_run_tracked, token, spec.remote_call, payload)
        except BrokenProcessPool:
            if not self._owns_pool:
                raise
            # A child died earlier: that pool is done for. Start a new one and resubmit.
            self._drop_pool(pool)
            pool = self._ensure_pool()
            future = pool.submit(_run_tracked, token, spec.remote_call, payload)
        future.add_done_callback(
            lambda f: self._done(f, pool, token, payload, spec, on_done, resent))

    def _drop_pool(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def _done(self, future: Future[bytes], pool: ProcessPoolExecutor, token: int,
              payload: bytes, spec: TaskSpec, on_done: Callable[[TaskOutcome], None],
              resent: int) -> None:
        """Deliver the outcome, unless the pool broke under an activation it did not kill."""
        if self._abandoned:
            return
        if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool) \
                and not self._closed and resent < MAX_RESUBMITS \
                and not _held_by_the_dead(pool, token):
            try:
                self._drop_pool(pool)
                self._send(payload, spec, on_done, resent + 1)
                return
            except Exception:  # a fresh pool cannot start: report the break itself
                logger.exception("routilux: could not resubmit an activation after a "
                                 "process pool broke")
        on_done(_outcome_of(future, spec))

    def _abandon(self) -> None:
        """Interpreter exit: kill this executor's children so nothing waits for them."""
        self._abandoned = True
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is None or not self._owns_pool:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            try:
                proc.kill()
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        pool.shutdown(wait=False, cancel_futures=True)

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


_live: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()
_started_queue: Any = None  # in a child: where it reports the activations it starts


def _child_init(started: Any) -> None:
    global _started_queue
    _started_queue = started
    # A Ctrl-C in a terminal reaches the whole process group; the parent decides what
    # stops (it cancels queued jobs, lets running logic finish), not each child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_tracked(token: int, call: Callable[[bytes], bytes], payload: bytes) -> bytes:
    """In a child: report (token, pid) before running ``call(payload)`` (the spec's
    ``remote_call``), so a break can be attributed."""
    if _started_queue is not None:
        _started_queue.put((token, os.getpid()))
    return call(payload)


_broken_lock = threading.Lock()


def _held_by_the_dead(pool: ProcessPoolExecutor, token: int) -> bool:
    """Had activation ``token`` started in a child of ``pool`` that died on its own?

    Called from the broken pool's manager thread while it fails the pending futures,
    before it terminates the surviving children: the children already dead then are the
    ones that broke the pool. Without a started-queue (a pool passed in), every pending
    activation counts as held.
    """
    started = getattr(pool, "_routilux_started", None)
    if started is None:
        return True
    with _broken_lock:
        info = getattr(pool, "_routilux_broken", None)
        if info is None:
            dead = {pid for pid, proc in list(getattr(pool, "_processes", {}).items())
                    if proc.exitcode is not None}
            where: dict[int, int] = {}
            try:
                while not started.empty():
                    tok, pid = started.get()
                    where[tok] = pid
            except (OSError, EOFError, ValueError):
                pass
            info = pool._routilux_broken = (dead, where)  # type: ignore[attr-defined]
    dead, where = info
    pid = where.get(token)
    return pid is not None and pid in dead


def _exit_hook() -> None:
    for ex in list(_live):
        try:
            ex._abandon()
        except Exception:  # exiting anyway: log and go on
            logger.exception("routilux: could not stop %r at exit", ex)


# Registered after concurrent.futures.process registered its own (at its import, above),
# so it runs first: threading runs these hooks in reverse order, before joining threads.
threading._register_atexit(_exit_hook)  # type: ignore[attr-defined]


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
        return spec.outcome(future.result())
    except Exception as decode_error:
        return TaskOutcome(error=decode_error)
