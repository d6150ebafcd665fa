"""What is running in this thread: the activation's job, worker and routine.

One ContextVar holds an immutable ``Activation`` frame, set once when a task starts and
reset when it ends, so the hot path pays one ``set`` and one ``reset`` per task however
many helpers read it. Threads started by user logic do not inherit it (api.md §14).

The tracer lookup used by traced locks lives here too, because "which runtime am I in"
is the same question as "which job am I in".
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ._job import JobContext
    from ._worker_state import WorkerState
    from .trace import Tracer


class Activation(NamedTuple):
    """The frame of one running logic call, policy evaluation or error handling."""

    job: JobContext | None
    worker_state: WorkerState | None
    routine_id: str | None
    routine: Any = None
    runtime: Any = None
    worker: Any = None  # the runtime's private worker object, for emit's fast path


_activation: ContextVar[Activation | None] = ContextVar("routilux_activation", default=None)

# The most recently created runtime that traces: where locks used outside any
# activation (a notebook cell, a thread the user started) record their waits.
_default_tracer_runtime: weakref.ref[Any] | None = None


def current_activation() -> Activation | None:
    return _activation.get()


def enter(activation: Activation) -> Any:
    """Bind ``activation`` to this context; returns the token for ``leave``."""
    return _activation.set(activation)


def leave(token: Any) -> None:
    _activation.reset(token)


def get_current_job() -> JobContext | None:
    """The JobContext of the activation running in this thread, else ``None``."""
    act = _activation.get()
    return act.job if act is not None else None


def get_current_job_id() -> str | None:
    """The id of the current job, else ``None``."""
    act = _activation.get()
    if act is None or act.job is None:
        return None
    return act.job.job_id


def get_current_worker_state() -> WorkerState | None:
    """The WorkerState of the activation running in this thread, else ``None``."""
    act = _activation.get()
    return act.worker_state if act is not None else None


def current_routine_id() -> str | None:
    act = _activation.get()
    return act.routine_id if act is not None else None


def set_current_job(job: JobContext | None) -> None:
    """Bind ``job`` as the current job of this context (for tests calling ``emit`` directly)."""
    act = _activation.get()
    if act is None:
        _activation.set(Activation(job, None, None))
    else:
        _activation.set(act._replace(job=job))


def set_current_worker_state(worker_state: WorkerState | None) -> None:
    """Bind ``worker_state`` as the current worker of this context (for tests)."""
    act = _activation.get()
    if act is None:
        _activation.set(Activation(None, worker_state, None))
    else:
        _activation.set(act._replace(worker_state=worker_state))


def set_default_tracer_runtime(runtime: Any) -> None:
    global _default_tracer_runtime
    _default_tracer_runtime = weakref.ref(runtime)


def current_tracer() -> Tracer | None:
    """The tracer of the runtime running this activation, else of the newest tracing runtime."""
    act = _activation.get()
    if act is not None and act.runtime is not None:
        return act.runtime.tracer
    ref = _default_tracer_runtime
    if ref is None:
        return None
    runtime = ref()
    if runtime is None:
        return None
    return runtime.tracer
