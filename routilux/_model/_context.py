"""What is running in this thread: the activation's job, worker and routine.

One ContextVar holds an immutable ``Activation`` frame, set once when a task starts and
reset when it ends, so the hot path pays one ``set`` and one ``reset`` per task however
many helpers read it. Threads started by user logic do not inherit it (api.md §14).

The tracer lookup used by traced locks lives here too, because "which runtime am I in"
is the same question as "which job am I in".

A leaf: it imports nothing of the model. What an activation carries is typed by the
Protocols below, which also say what the model needs from the engine (``WorkerLike``,
``RuntimeLike``): the model calls the engine through them and never imports it.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from ..trace import Tracer


class JobLike(Protocol):
    """What the model reads of a job here (``JobContext`` is the one implementation)."""

    job_id: str
    status: str


class WorkerStateLike(Protocol):
    """What the model reads of a worker's state here (``WorkerState``)."""

    worker_id: str
    flow_id: str


class RuntimeLike(Protocol):
    """What the model needs of a runtime (``Runtime``, in the engine)."""

    strict: bool

    @property
    def tracer(self) -> Tracer | None: ...

    def _state_write(self, routine: Any, act: Activation, name: str) -> None: ...


class WorkerLike(Protocol):
    """What the model needs of a live worker (the engine's ``_Worker``): routing and waits.

    ``WorkerState._live_worker()`` returns one; ``Routine.emit`` and the compat slot
    helpers call it instead of importing the engine.
    """

    runtime: Any

    def emit(self, routine: Any, event_name: str, payload: dict[str, Any],
             job: Any) -> None: ...

    def emit_from(self, rid: str, event_name: str, payload: dict[str, Any],
                  job: Any) -> None: ...

    def queue_for(self, slot: Any) -> Any: ...

    def wait_idle(self, timeout: float | None) -> bool: ...


class Activation(NamedTuple):
    """The frame of one running logic call, policy evaluation or error handling."""

    job: Any  # a JobContext (JobLike), or None outside any job
    worker_state: Any  # a WorkerState (WorkerStateLike), or None
    routine_id: str | None
    routine: Any = None
    runtime: RuntimeLike | None = None
    worker: WorkerLike | None = None  # the runtime's worker object, for emit's fast path


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


def get_current_job() -> Any:
    """The JobContext of the activation running in this thread, else ``None``."""
    act = _activation.get()
    return act.job if act is not None else None


def get_current_job_id() -> str | None:
    """The id of the current job, else ``None``."""
    act = _activation.get()
    if act is None or act.job is None:
        return None
    return act.job.job_id


def get_current_worker_state() -> Any:
    """The WorkerState of the activation running in this thread, else ``None``."""
    act = _activation.get()
    return act.worker_state if act is not None else None


def current_routine_id() -> str | None:
    act = _activation.get()
    return act.routine_id if act is not None else None


def set_current_job(job: Any) -> None:
    """Bind ``job`` as the current job of this context (for tests calling ``emit`` directly)."""
    act = _activation.get()
    if act is None:
        _activation.set(Activation(job, None, None))
    else:
        _activation.set(act._replace(job=job))


def set_current_worker_state(worker_state: Any) -> None:
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
