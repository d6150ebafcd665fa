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
  ``spec.remote_call`` (a picklable function that runs it anywhere routilux is installed)
  and turn its reply into an outcome with ``spec.outcome(reply)``: emits and job data
  written there travel back in the outcome, and so do the start/end times
  (``RemoteTiming``), which the runtime records on a trace lane of their own
  (``RemoteTiming.lane``).
- This module is the executors' whole view of routilux: the runtime hands them everything
  else through ``TaskSpec``, so an executor never imports the model or the engine (the
  activation codec behind ``to_bytes``/``remote_call``/``outcome`` is the engine's).
  Choosing an executor from a name or a foreign pool object is ``_choice.py``'s job.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._errors import RoutiluxError

__all__ = [
    "EXECUTOR_NAMES", "Executor", "RemoteLogicError", "RemoteTiming", "TaskOutcome", "TaskSpec",
    "WorkerDiedError",
]

EXECUTOR_NAMES = ("threads", "asyncio", "processes")


class WorkerDiedError(RoutiluxError, RuntimeError):
    """The process running a logic died (a process-pool child, a Dask worker).

    Handled like any error of that logic: its job fails, or runs again under RETRY. A
    ``RoutiluxError`` like everything routilux raises; still a ``RuntimeError``, as it was
    before, so existing ``except RuntimeError`` clauses keep catching it.
    """


class RemoteLogicError(RoutiluxError):
    """A remote logic raised an exception that could not be pickled back; carries its text
    (``"ExcType: message"``), with the remote traceback as ``__cause__``."""


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
        """This activation as a self-contained pickle for ``remote_call``.

        Raises:
            TypeError: something the logic needs cannot be pickled; the message names
                the routine and the field.
        """
        raise NotImplementedError

    #: ``remote_call(payload) -> reply``: runs a ``to_bytes()`` payload in the process that
    #: calls it (a process-pool child, a Dask worker) and never raises for the logic's own
    #: errors. A module-level function, so it pickles by reference; the remote side needs
    #: the same routilux version installed. Set by the runtime
    #: (``routilux.executors.run_remote``).
    remote_call: Callable[[bytes], bytes]

    def outcome(self, reply: bytes) -> TaskOutcome:
        """The ``TaskOutcome`` a ``remote_call`` reply stands for (error, emits, job data,
        remote timing).

        Raises:
            RuntimeError: the reply came from a different routilux version.
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

