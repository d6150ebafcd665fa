"""DaskExecutor: logic as tasks on a Dask ``distributed`` cluster; the flow stays here.

Design:
- Routing, policies, job tracking and error strategies stay in the runtime; only the logic
  call travels. The pool thread that took an activation pickles it, submits
  ``spec.remote_call(payload)`` to the client (``pure=False``: every activation runs) and goes
  back to the run queue. The future's done-callback (a client callback thread) hands the
  reply to the runtime, which routes the emits collected remotely and applies the job
  data the logic set.
- The executor keeps each future until it is done: a ``distributed`` future that nobody
  references is released, and the scheduler would forget its task.
- Trace events of each remote run (start, duration, worker address, thread) come back
  with the reply and are recorded with ``Tracer.record_as`` on one lane per Dask worker
  thread.
- A worker that dies mid-task: the scheduler re-runs the task elsewhere, up to
  ``distributed.scheduler.allowed-failures`` times, then raises ``KilledWorker``, which
  fails the job with a message saying so (or retries it under RETRY). A cluster that goes
  away cancels the futures, which fails their jobs. And every job has its flow's
  execution_timeout. Nothing waits forever.
- ``distributed`` is imported only when an executor is made, so ``routilux`` runs without
  it; without it that raises an ImportError naming ``pip install routilux[dask]``.

The workers must be able to import ``routilux`` (the same version) and whatever the logic
imports; functions and classes defined in ``__main__`` or a notebook travel by value.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from ._base import Executor, TaskOutcome, TaskSpec, WorkerDiedError

__all__ = ["DaskExecutor"]

_INSTALL_HINT = (
    "DaskExecutor needs dask.distributed, which is not installed; "
    "install it with: pip install routilux[dask]"
)


def _import_distributed() -> Any:
    try:
        # Defers distributed (an optional dependency, seconds to import): loaded when a
        # DaskExecutor is made, never by import routilux.
        import distributed
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return distributed


class DaskExecutor(Executor):
    """Run logic on a Dask cluster through a ``distributed.Client``.

    Args:
        client: a connected ``distributed.Client``. It stays yours: ``shutdown`` cancels
            this executor's unfinished tasks but does not close the client.
        address: instead of ``client``, a scheduler address ("tcp://host:8786"); the
            executor then opens a client and closes it at ``shutdown``.
        **submit_kwargs: passed to every ``client.submit`` (e.g. ``resources={"GPU": 1}``,
            ``workers=[...]``, ``priority=``). ``retries=`` re-runs a task whose logic
            raised *on Dask*, before the routine's error strategy sees the error.

    Raises:
        ImportError: ``distributed`` is not installed (``pip install routilux[dask]``).
        TypeError: neither or both of ``client`` and ``address`` given.
    """

    name = "dask"
    remote = True

    def __init__(self, client: Any = None, *, address: str | None = None,
                 **submit_kwargs: Any) -> None:
        distributed = _import_distributed()
        if (client is None) == (address is None):
            raise TypeError("DaskExecutor needs a distributed.Client or an address= (not both)")
        if client is None:
            client = distributed.Client(address)
            self._owns_client = True
        else:
            if not isinstance(client, distributed.Client):
                raise TypeError(
                    f"DaskExecutor needs a distributed.Client, got {type(client).__name__}")
            self._owns_client = False
        for key in ("pure", "key"):
            if key in submit_kwargs:
                raise TypeError(f"DaskExecutor sets {key}= itself; do not pass it")
        self.client = client
        self._submit_kwargs = submit_kwargs
        self._lock = threading.Lock()
        self._futures: set[Any] = set()
        self._closed = False
        self._seq = itertools.count(1)

    def submit(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        if self._closed:
            raise RuntimeError("cannot submit to a DaskExecutor after shutdown")
        payload = spec.to_bytes()
        key = f"routilux-{spec.routine_id}-{next(self._seq)}-{id(self):x}"
        future = self.client.submit(spec.remote_call, payload, pure=False, key=key,
                                    **self._submit_kwargs)
        with self._lock:
            closed = self._closed  # a shutdown(wait=False) raced this submit: cancel it too
            self._futures.add(future)
        if closed:
            self.client.cancel([future])

        def done(f: Any) -> None:
            with self._lock:
                self._futures.discard(f)
            on_done(_outcome_of(f, spec))

        future.add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, let submitted tasks finish, else cancel them
        (their jobs fail). Closes the client only if this executor opened it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            futures = list(self._futures)
        if futures:
            if wait:
                _import_distributed().wait(futures)
            else:
                self.client.cancel(futures)
        if self._owns_client:
            self.client.close()

    @property
    def pending(self) -> int:
        """Tasks submitted to the cluster whose results have not come back yet."""
        with self._lock:
            return len(self._futures)

    def __repr__(self) -> str:
        return f"<DaskExecutor {self.client!r} pending={self.pending}>"


def _outcome_of(future: Any, spec: TaskSpec) -> TaskOutcome:
    status = future.status
    if status == "finished":
        try:
            return spec.outcome(future.result())
        except Exception as exc:
            return TaskOutcome(error=exc)
    if status == "cancelled":
        return TaskOutcome(error=CancelledError(
            f"routine {spec.routine_id!r}: its Dask task was cancelled "
            "(the client closed or the executor shut down)"))
    try:
        exc = future.exception()
    except Exception as lost:  # the client lost the future's state: say so
        exc = lost
    distributed = _import_distributed()
    killed = getattr(distributed, "KilledWorker", None)
    if killed is not None and isinstance(exc, killed):
        return TaskOutcome(error=WorkerDiedError(
            f"routine {spec.routine_id!r}: the Dask worker(s) running it died; "
            f"the scheduler gave up after retrying elsewhere ({type(exc).__name__}: {exc})"))
    if exc is None:
        exc = RuntimeError(f"routine {spec.routine_id!r}: Dask task ended with status {status!r}")
    return TaskOutcome(error=exc)
