"""Execution hooks: upstream Routilux's observer interface for a run's lifecycle.

One process-wide hooks object (``set_execution_hooks``) hears about workers, jobs,
routine activations, emits and slot deliveries. Design:

- No hooks set (the default, and ``NullExecutionHooks``): every call site is one test of
  the module global ``active`` against None; nothing is built or called.
- Hooks run synchronously in the thread where the event happens (a post's caller, the
  pool thread running a logic, the thread that emits), sometimes while a routine's
  delivery lock is held: keep them short, and do not block in them.
- A hook that raises is logged through ``logging.getLogger("routilux")`` with its
  traceback and detached (``active`` falls back to None), as trio does with a failing
  instrument: observers never break the run, never kill a pool thread.
- ``on_routine_start`` returning False (upstream: "pause") is not supported: the
  activation runs; ``on_event_emit`` returning False drops that emit (recorded in the
  history as ``emit_dropped``), and ``on_slot_before_enqueue`` returning
  ``(False, reason)`` drops that one delivery.

The tracer is not a hooks implementation: it keeps its own direct call sites, because a
hooks dispatch per trace event (a method call plus argument objects) costs more than the
tracer's one append on the traced hot path (docs/compat.md has the numbers).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._flow import Flow
    from ._job import JobContext
    from ._routine import Event
    from ._slot import Slot
    from ._worker_state import WorkerState

logger = logging.getLogger("routilux")


class ExecutionHooksInterface(ABC):
    """What an observer of execution implements (upstream's names and signatures)."""

    @abstractmethod
    def on_worker_start(self, flow: Flow, worker_state: WorkerState) -> None:
        """A worker (a live instance of ``flow``) started: ``exec`` or a first ``post``."""

    @abstractmethod
    def on_worker_stop(self, flow: Flow, worker_state: WorkerState, status: str) -> None:
        """A worker stopped at shutdown; ``status`` is "completed" or "cancelled"."""

    @abstractmethod
    def on_job_start(self, job_context: JobContext, worker_state: WorkerState) -> None:
        """A job was posted (called in the posting thread, before its item is delivered)."""

    @abstractmethod
    def on_job_end(
        self, job_context: JobContext, worker_state: WorkerState,
        status: str = "completed", error: Exception | None = None,
    ) -> None:
        """A job reached its terminal status; ``error`` is the failure (the exception a
        logic raised, else one whose text is the job's ``error``). Called right after the
        transition, so ``job.wait()`` may return just before it."""

    @abstractmethod
    def on_routine_start(
        self, routine_id: str, worker_state: WorkerState,
        job_context: JobContext | None = None,
    ) -> bool:
        """A routine's logic is about to run on a pool thread (the return value is ignored)."""
        return True

    @abstractmethod
    def on_routine_end(
        self, routine_id: str, worker_state: WorkerState,
        job_context: JobContext | None = None, status: str = "completed",
        error: Exception | None = None,
    ) -> None:
        """A routine's logic returned ("completed") or raised ("failed", with ``error``)."""

    @abstractmethod
    def on_event_emit(
        self, event: Event, source_routine_id: str, worker_state: WorkerState,
        job_context: JobContext | None = None, data: dict[str, Any] | None = None,
    ) -> bool:
        """A routine emits ``event`` with ``data``; return False to drop this emit."""
        return True

    def on_slot_before_enqueue(
        self, slot: Slot, routine_id: str, job_context: JobContext | None,
        data: dict[str, Any], flow_id: str,
    ) -> tuple[bool, str | None]:
        """An item is about to enter ``slot``; return ``(False, reason)`` to drop it."""
        return True, None


class NullExecutionHooks(ExecutionHooksInterface):
    """The no-op hooks (what ``get_execution_hooks()`` returns when none are set)."""

    def on_worker_start(self, flow: Flow, worker_state: WorkerState) -> None:
        pass

    def on_worker_stop(self, flow: Flow, worker_state: WorkerState, status: str) -> None:
        pass

    def on_job_start(self, job_context: JobContext, worker_state: WorkerState) -> None:
        pass

    def on_job_end(self, job_context: JobContext, worker_state: WorkerState,
                   status: str = "completed", error: Exception | None = None) -> None:
        pass

    def on_routine_start(self, routine_id: str, worker_state: WorkerState,
                         job_context: JobContext | None = None) -> bool:
        return True

    def on_routine_end(self, routine_id: str, worker_state: WorkerState,
                       job_context: JobContext | None = None, status: str = "completed",
                       error: Exception | None = None) -> None:
        pass

    def on_event_emit(self, event: Event, source_routine_id: str, worker_state: WorkerState,
                      job_context: JobContext | None = None,
                      data: dict[str, Any] | None = None) -> bool:
        return True


_NULL = NullExecutionHooks()

# The hooks the runtime calls, or None: the one cheap check on every call site.
active: ExecutionHooksInterface | None = None


def get_execution_hooks() -> ExecutionHooksInterface:
    """The hooks in effect (a ``NullExecutionHooks`` when none are set)."""
    hooks = active
    return hooks if hooks is not None else _NULL


def set_execution_hooks(hooks: ExecutionHooksInterface) -> None:
    """Make ``hooks`` the process-wide observer (replacing any previous one).

    Raises:
        TypeError: ``hooks`` does not implement ``ExecutionHooksInterface``.
    """
    global active
    if not isinstance(hooks, ExecutionHooksInterface):
        raise TypeError(
            f"execution hooks must be an ExecutionHooksInterface (subclass it, or "
            f"NullExecutionHooks, and override what you need), got {type(hooks).__name__}"
        )
    active = None if type(hooks) is NullExecutionHooks else hooks


def reset_execution_hooks() -> None:
    """Back to no hooks (``NullExecutionHooks``)."""
    global active
    active = None


def failed(hooks: ExecutionHooksInterface, name: str) -> None:
    """A hook raised (call from inside the ``except``): log it and detach ``hooks``."""
    global active
    logger.exception(
        "routilux: execution hook %s.%s raised; the hooks are detached (the run goes on)",
        type(hooks).__name__, name,
    )
    if active is hooks:
        active = None


def call(hooks: ExecutionHooksInterface, name: str, *args: Any) -> Any:
    """``hooks.<name>(*args)``, detaching ``hooks`` if it raises; None after a failure."""
    try:
        return getattr(hooks, name)(*args)
    except Exception:  # noqa: BLE001 - any observer failure: log, detach, go on
        failed(hooks, name)
        return None


def allow_enqueue(hooks: ExecutionHooksInterface, slot: Slot, routine_id: str,
                  job: JobContext | None, data: Any, flow_id: str) -> bool:
    """``on_slot_before_enqueue``: False drops this one delivery (its reason is logged)."""
    result = call(hooks, "on_slot_before_enqueue", slot, routine_id, job, data, flow_id)
    if result is None:
        return True
    try:
        should_enqueue, reason = result
    except (TypeError, ValueError):
        logger.error(
            "routilux: %s.on_slot_before_enqueue returned %r, not (should_enqueue, reason); "
            "the hooks are detached", type(hooks).__name__, result,
        )
        reset_if(hooks)
        return True
    if not should_enqueue:
        logger.info("routilux: delivery to %s.%s dropped by execution hooks: %s",
                    routine_id, slot.name, reason)
        return False
    return True


def reset_if(hooks: ExecutionHooksInterface) -> None:
    global active
    if active is hooks:
        active = None
