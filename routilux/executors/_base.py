"""The executor interface: one activation in, one outcome out.

Design:
- An executor runs a routine's logic somewhere other than the pool thread that took the
  activation: on an event loop, in a process pool, on a Dask cluster. Routing, policies,
  job bookkeeping and error strategies stay in the runtime; an executor only runs logic
  and reports how it ended.
- ``submit(spec, on_done)`` must not block on the logic. ``on_done(outcome)`` is called
  exactly once per submit, from any thread; until then the activation's job stays in
  flight. If ``submit`` raises, the runtime handles that as the logic's error (so an
  unpicklable argument fails its job with a message naming the field).
- In-process executors run ``spec.call()`` inside ``spec.bind()``'s context, where
  ``get_current_job()`` and ``emit`` work as in sync logic, and call ``spec.started()``
  on the thread that runs it. Out-of-process executors ship ``spec.to_bytes()`` to
  ``routilux.executors.run_remote`` and turn its reply into an outcome with
  ``routilux.executors.outcome_from_bytes``: emits and job data written there travel back
  in the outcome, and so do the start/end times (``RemoteTiming``), which the runtime
  records on a trace lane of their own (``RemoteTiming.lane``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXECUTOR_NAMES", "Executor", "RemoteTiming", "TaskOutcome", "TaskSpec", "WorkerDiedError",
]

EXECUTOR_NAMES = ("threads", "asyncio", "processes")


class WorkerDiedError(RuntimeError):
    """The process running a logic died (a process-pool child, a Dask worker).

    Handled like any error of that logic: its job fails, or runs again under RETRY.
    """


@dataclass(frozen=True)
class RemoteTiming:
    """Where and when a logic ran outside this process (trace lanes are built from it).

    ``start_wall_ns`` is ``time.time_ns()`` in the remote process when the logic started,
    ``duration_ns`` its run time there; ``lane`` names the trace lane (one per remote
    thread: ``RoutiluxProcess-<pid>``, ``Dask <host:port>/<n>``), ``thread`` is a number
    unique to that lane; ``address`` the Dask worker's, ``thread_name`` the remote thread's.
    """

    start_wall_ns: int
    duration_ns: int
    lane: str
    thread: int
    address: str | None = None
    pid: int | None = None
    thread_name: str | None = None


@dataclass
class TaskOutcome:
    """How one submitted activation ended.

    Attributes:
        error: the exception the logic raised (or why it could not run), else None.
        emits: ``(routine_id, event_name, payload)`` collected by a remote logic, routed
            by the runtime in order when the outcome arrives. In-process executors leave
            it empty: their emits are delivered as they happen.
        job_data: keys a remote logic set with ``get_current_job().set_data``.
        remote: timing of a remote run, or None for a run in this process.
    """

    error: BaseException | None = None
    emits: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    job_data: dict[str, Any] = field(default_factory=dict)
    remote: RemoteTiming | None = None


class TaskSpec:
    """One activation of a routine's logic, as an executor sees it.

    The runtime builds these; custom executors only read them. Attributes:
    ``routine_id``, ``slot`` (the slot that triggered it), ``job_id``, ``worker_id``,
    ``attempt`` (0, then 1.. for retries) and ``is_coroutine`` (the logic is ``async def``).
    """

    routine_id: str
    slot: str
    job_id: str | None
    worker_id: str | None
    attempt: int
    is_coroutine: bool

    def bind(self) -> contextvars.Context:
        """A fresh context in which ``get_current_job()``, ``emit`` etc. answer for this run."""
        raise NotImplementedError

    def call(self) -> Any:
        """Call the logic here (inside ``bind()``'s context); returns what it returns,
        a coroutine for ``async def`` logic."""
        raise NotImplementedError

    def started(self) -> None:
        """Note (trace) that the logic starts now on the calling thread."""

    def to_bytes(self) -> bytes:
        """This activation as a self-contained pickle for ``run_remote``.

        Raises:
            TypeError: something the logic needs cannot be pickled; the message names
                the routine and the field.
        """
        raise NotImplementedError


class Executor:
    """Base of routilux executors: where a routine's logic runs.

    Subclasses implement ``submit``; ``shutdown`` releases what the executor owns. An
    executor you construct is yours: a runtime shuts down only the executors it made
    itself (those chosen by name: ``"asyncio"``, ``"processes"``). Executors are context
    managers (``with ProcessExecutor() as ex: ...`` shuts it down on exit).
    """

    name = "executor"
    #: True when logic runs in another process or machine: data must be picklable,
    #: emits travel back with the result.
    remote = False

    def submit(self, spec: TaskSpec, on_done: Callable[[TaskOutcome], None]) -> None:
        """Start running ``spec``; call ``on_done(outcome)`` exactly once when it ends."""
        raise NotImplementedError

    def shutdown(self, wait: bool = True) -> None:
        """Stop; with ``wait``, let submitted work finish first. Idempotent."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def check_executor_choice(choice: Any) -> Any:
    """Validate what ``set_executor`` / ``Runtime(executor=)`` accept; returns what to keep.

    None (inherit), one of ``EXECUTOR_NAMES``, an ``Executor``, a
    ``concurrent.futures.ProcessPoolExecutor`` (wrapped, stays yours) or a
    ``distributed.Client`` (wrapped in a ``DaskExecutor``).
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
    from concurrent.futures import Executor as FuturesExecutor
    from concurrent.futures import ProcessPoolExecutor

    if isinstance(choice, ProcessPoolExecutor):
        from .processes import ProcessExecutor

        return ProcessExecutor(pool=choice)
    cls = type(choice)
    if cls.__name__ == "Client" and cls.__module__.startswith("distributed"):
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
