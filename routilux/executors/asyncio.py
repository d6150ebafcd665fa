"""AsyncioExecutor: ``async def`` logic on one event loop thread, so awaits hold no pool thread.

Design:
- One daemon thread runs one event loop, started at the first submit (thread name
  ``RoutiluxAsyncLoop``); ``shutdown`` cancels what still runs, stops the loop and joins
  the thread.
- ``submit`` is thread-safe (``call_soon_threadsafe``). Each activation becomes an
  ``asyncio.Task`` created with ``context=spec.bind()``, so ``get_current_job()`` and
  ``emit`` inside the coroutine answer for its own job, whatever else the loop runs.
- ``task.started`` / ``task.finished`` are recorded from the loop thread: in a trace all
  coroutine logic shares that one lane, overlapping.
- Sync code inside a coroutine blocks every coroutine of the loop; CPU-bound work belongs
  in a ``ProcessExecutor`` (or ``await asyncio.to_thread(...)``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from ._base import Executor, TaskOutcome, TaskSpec

__all__ = ["AsyncioExecutor"]

logger = logging.getLogger("routilux")

JOIN_TIMEOUT_S = 5.0  # seconds shutdown waits for the loop thread


class AsyncioExecutor(Executor):
    """Run coroutine logic on a private event loop in one daemon thread.

    Args:
        thread_name: name of the loop thread (the trace lane's name).
    """

    name = "asyncio"

    def __init__(self, thread_name: str = "RoutiluxAsyncLoop") -> None:
        self.thread_name = thread_name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, or None before the first submit / after shutdown."""
        return self._loop

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to an AsyncioExecutor after shutdown")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(target=self._run_loop, args=(loop, ready),
                                          name=self.thread_name, daemon=True)
                thread.start()
                ready.wait()
                self._thread = thread
                self._loop = loop
            return self._loop

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def submit(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        if self._closed:
            raise RuntimeError("cannot submit to an AsyncioExecutor after shutdown")
        self._ensure_loop().call_soon_threadsafe(self._start, spec, on_done)

    def _start(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        loop = self._loop
        assert loop is not None
        task = loop.create_task(self._drive(spec, on_done), context=spec.bind())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _drive(spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        spec.started()
        try:
            result = spec.call()
            if inspect.isawaitable(result):
                await result
        except BaseException as exc:  # incl. CancelledError at shutdown: the job learns it
            outcome = TaskOutcome(error=exc)
        else:
            outcome = TaskOutcome()
        try:
            on_done(outcome)
        except Exception:
            logger.exception("routilux: finishing a coroutine logic failed; "
                             "this is a bug in routilux")

    def shutdown(self, wait: bool = True) -> None:
        """Cancel coroutines still running, stop the loop and join its thread.

        ``wait`` is accepted for the interface: a runtime drains its jobs before it
        shuts its executors down, so what is left here is abandoned work.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(self._cancel_and_stop)
        except RuntimeError:  # the loop is already closed
            pass
        if thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
        self._loop = None

    def _cancel_and_stop(self) -> None:
        loop = self._loop
        assert loop is not None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            loop.stop()
            return
        gathered = asyncio.gather(*tasks, return_exceptions=True)
        gathered.add_done_callback(lambda _f: loop.stop())

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._loop else "not started")
        return f"<AsyncioExecutor {state} tasks={len(self._tasks)}>"
