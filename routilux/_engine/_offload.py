"""The runtime's side of routilux.executors: hand an activation over, settle it on return.

Design (invariants):
- A pool thread takes an activation as usual. When a routine's plan names an executor, the
  plan makes its tasks of a class that mixes ``OffloadTask`` into the engine's task class
  (``class _OffloadTask(OffloadTask, _Task)``, where ``_Task`` is defined): its ``run``
  hands the activation over instead of calling the logic. This module therefore never
  imports the task class; the engine composes the two and the plan picks one of them, so
  the sync fast path (``_Task.run``) carries no offload branch. ``run`` marks the task so
  the pool thread releases nothing (``retrying``: "still in flight"), builds a
  ``TaskSpec`` and submits it. The pool thread is free again at once.
- The job's hold taken by ``schedule`` stays with the activation until the executor
  reports (``on_done``): the job stays in flight while a coroutine awaits, a child
  process computes, a Dask worker runs. ``wait_until_all_workers_idle`` counts it too.
- On return: job data set remotely is applied, remote emits are routed in order (on a
  pool thread, because routing evaluates downstream policies: user code, handed over with
  ``worker.resubmit``), then the error strategy (``_Worker.handle_error``) decides. A
  RETRY runs a *copy* of the task (of the class its plan chose), so the original task
  object, still being settled by its pool thread, is never touched again; the hold moves
  to the copy. Otherwise the hold is released.
- The spec carries the codec's entry points (``to_bytes``, ``remote_call``, ``outcome``),
  so executors import nothing but ``executors._base``; the codec (``_wire.py``, which
  loads cloudpickle) is imported on the first remote activation.
- Trace: in-process executors record ``task.started`` / ``task.finished`` on the thread
  that runs the logic (the event loop's lane). Remote runs come back with their times and
  are recorded with ``Tracer.record_as`` on a lane per remote thread, converted to this
  process's monotonic clock through the wall clock and clamped to [dispatch, now].

Rejected: a pool thread waiting for the remote result (simple, but a pool of 4 could then
run only 4 process or Dask tasks at once, however many cores the cluster has).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from types import ModuleType
from typing import Any

from .._errors import error_text
from .._model._context import Activation, _activation
from ..executors._base import TaskOutcome, TaskSpec

__all__ = ["OffloadTask", "is_coroutine_logic"]

logger = logging.getLogger("routilux")


_error_text = error_text  # a broken exception's text must not break its failure path


def is_coroutine_logic(fn: Any) -> bool:
    """True for ``async def`` logic (functions, bound methods, partials, async __call__)."""
    if fn is None:
        return False
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def _wire() -> ModuleType:
    """The activation codec, imported on the first remote activation.

    Deferred: it loads cloudpickle and builds its tables (about 5 ms with
    ``python -X importtime``), which ``import routilux`` and flows that never leave the
    process need not pay.
    """
    from . import _wire as wire  # defers cloudpickle (see above)

    return wire


class OffloadTask:
    """The offload branch of an engine task: ``run`` hands the activation to an executor.

    A mixin: the module that defines the engine's task class composes
    ``class _OffloadTask(OffloadTask, _Task)`` and a plan whose routine runs on an executor
    makes its tasks of that class. Everything else (the slots read here: ``worker``,
    ``plan``, ``rid``, ``slot``, ``data``, ``msg``, ``job``, ``queued_ns``, ``started_ns``,
    ``attempt``, ``retrying``; ``ended()``, ``hold_locked``, ``done_locked``) is the task
    class's.
    """

    __slots__ = ()

    def run(self) -> None:
        """Submit to the plan's executor (on a pool thread); the job stays held until it
        reports."""
        if self.ended():  # type: ignore[attr-defined]
            return
        task: Any = self
        spec = _Offloaded(task)
        task.retrying = True  # the pool thread releases nothing: spec.finish settles the hold
        try:
            spec.executor.submit(spec, spec.finish)
        except BaseException as exc:  # e.g. unpicklable data: handled as the logic's error
            if not spec.finished:
                spec.finish(TaskOutcome(error=exc))


class _Offloaded(TaskSpec):
    """A ``TaskSpec`` over one runtime task, and the settling of its outcome."""

    __slots__ = ("dispatched_ns", "executor", "finished", "task")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.executor = task.plan.executor
        self.dispatched_ns = time.monotonic_ns()
        self.finished = False

    # -- what executors read ---------------------------------------------------------------
    @property
    def routine_id(self) -> str:  # type: ignore[override]
        return self.task.rid

    @property
    def slot(self) -> str:  # type: ignore[override]
        return self.task.slot

    @property
    def job_id(self) -> str | None:  # type: ignore[override]
        job = self.task.job
        return job.job_id if job is not None else None

    @property
    def worker_id(self) -> str | None:  # type: ignore[override]
        return self.task.worker.state.worker_id

    @property
    def attempt(self) -> int:  # type: ignore[override]
        return self.task.attempt

    @property
    def is_coroutine(self) -> bool:  # type: ignore[override]
        return is_coroutine_logic(self.task.plan.logic)

    def bind(self) -> contextvars.Context:
        t = self.task
        w = t.worker
        ctx = contextvars.Context()
        ctx.run(_activation.set, Activation(job=t.job, worker_state=w.state, routine_id=t.rid,
                                            routine=t.plan.routine, runtime=w.runtime,
                                            worker=w))
        return ctx

    def call(self) -> Any:
        t = self.task
        plan = t.plan
        return (plan._caller or plan.caller())(t.data, t.msg, t.worker.state)

    def started(self) -> None:
        t = self.task
        start = t.started_ns = time.monotonic_ns()
        tr = t.worker.runtime._tracer
        if tr is not None:
            job = t.job
            # The executor's name marks the lane as holding no pool thread (pool_series).
            tr.record("task.started", job.job_id if job is not None else None, t.rid, t.slot,
                      (start - t.queued_ns) / 1e9,
                      {"executor": getattr(self.executor, "name", type(self.executor).__name__)},
                      t.worker.state.worker_id)

    def to_bytes(self) -> bytes:
        t = self.task
        plan = t.plan
        return _wire().encode_activation(
            routine_id=t.rid, slot=t.slot, slot_names=list(plan.queues), logic=plan.logic,
            data=t.data, msg=t.msg, routine=plan.routine, job=t.job,
            worker_state=t.worker.state, target=type(self.executor).__name__,
        )

    @property
    def remote_call(self) -> Callable[[bytes], bytes]:  # type: ignore[override]
        return _wire().run_remote

    def outcome(self, reply: bytes) -> TaskOutcome:
        return _wire().outcome_from_bytes(reply)

    def __repr__(self) -> str:
        return f"<TaskSpec routine={self.routine_id!r} job={self.job_id} attempt={self.attempt}>"

    # -- settling (any thread) ------------------------------------------------------------
    def finish(self, outcome: TaskOutcome) -> None:
        """``on_done``: record, then settle here or on the pool."""
        if self.finished:
            logger.error("routilux: %r reported twice by %r; this is a bug in that executor",
                         self, self.executor)
            return
        self.finished = True
        task = self.task
        worker = task.worker
        tr = worker.runtime._tracer
        if tr is not None:
            self._record_end(tr, outcome)
        if outcome.emits:
            # Routing evaluates downstream policies (user code): a pool thread does it.
            # resubmit releases the hold instead if the pool has closed meanwhile (the
            # runtime shut down: the job was cancelled).
            worker.resubmit(_Completion(self, outcome))
            return
        if not self.settle(outcome):
            worker.release(task.job)

    def settle(self, outcome: TaskOutcome) -> bool:
        """Apply job data, route emits, apply the error strategy; True if a retry took the hold."""
        task = self.task
        worker = task.worker
        job = task.job
        if outcome.job_data and job is not None:
            for key, value in outcome.job_data.items():
                job.set_data(key, value)
        error = outcome.error
        routines = worker.flow.routines
        for rid, event_name, payload in outcome.emits:
            try:
                if rid not in routines:
                    raise RuntimeError(
                        f"a remote logic emitted {event_name!r} from routine {rid!r}, which is "
                        f"not in flow {worker.flow.flow_id!r}")
                worker.emit_from(rid, event_name, payload, job)
            except Exception as exc:  # as if emit had raised inside the logic
                if error is None:
                    error = exc
                break
        if error is None:
            worker.state._history.append((task.rid, "logic_executed", task.msg, time.time()))
            return False
        rt = worker.runtime
        if isinstance(error, CancelledError) and (job is None or job.is_terminal or rt._shut_down):
            return False  # abandoned at shutdown: the job already says so
        plan = task.plan
        retry = plan.task_class(worker, plan, task.slot, task.data, task.msg, job)
        retry.attempt = task.attempt
        worker.handle_error(retry, error, _error_text(error), is_policy=False)
        return retry.retrying

    def _record_end(self, tr: Any, outcome: TaskOutcome) -> None:
        t = self.task
        job = t.job
        job_id = job.job_id if job is not None else None
        wid = t.worker.state.worker_id
        err = _error_text(outcome.error) if outcome.error is not None else None
        remote = outcome.remote
        if remote is None:
            if not t.started_ns:  # it never started (submit failed, worker died): no slice
                if err is not None:
                    tr.record("task.error", job_id, t.rid, t.slot, 0.0, err, wid)
                return
            dur = (time.monotonic_ns() - t.started_ns) / 1e9
            if err is not None:
                tr.record("task.error", job_id, t.rid, t.slot, dur, err, wid)
            tr.record("task.finished", job_id, t.rid, t.slot, dur, err, wid)
            return
        now = time.monotonic_ns()
        start = remote.start_wall_ns + (now - time.time_ns())
        start = min(max(start, self.dispatched_ns), now)
        end = min(start + remote.duration_ns, now)
        lane, thread = remote.lane, remote.thread
        where = {"executor": getattr(self.executor, "name", type(self.executor).__name__),
                 "address": remote.address, "pid": remote.pid, "thread": remote.thread_name}
        tr.record_as(thread, "task.started", job_id, t.rid, t.slot, (start - t.queued_ns) / 1e9,
                     where, wid, lane, ts_ns=start)
        dur = (end - start) / 1e9
        if err is not None:
            tr.record_as(thread, "task.error", job_id, t.rid, t.slot, dur, err, wid, lane,
                         ts_ns=end)
        tr.record_as(thread, "task.finished", job_id, t.rid, t.slot, dur, err, wid, lane,
                     ts_ns=end)


class _Completion:
    """A pool task that settles a remote outcome (routes its emits, applies the strategy)."""

    __slots__ = (
        "job",
        "moved",
        "outcome",
        "queued_ns",
        "rid",
        "sampled",
        "slot",
        "spec",
        "started_ns",
        "worker",
    )

    def __init__(self, spec: _Offloaded, outcome: TaskOutcome) -> None:
        self.spec = spec
        self.outcome = outcome
        self.worker = spec.task.worker
        self.job = spec.task.job
        self.started_ns = 0
        self.queued_ns = 0
        self.rid = None  # bookkeeping, not an activation: running_tasks() skips it
        self.slot = None
        self.sampled = True
        self.moved = False

    def run(self) -> None:
        self.moved = self.spec.settle(self.outcome)

    def done_locked(self) -> Any:
        if self.moved:
            return None  # a retry holds the job now
        return self.worker.release_locked(self.job)
