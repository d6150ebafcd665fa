"""What a pool thread runs: one activation (``_Task``) or one bookkeeping step (``_Callback``).

``_Plan`` is a worker's cached view of one routine that tasks run through. Tasks follow
the pool's ``PoolTask`` protocol: ``run`` off the lock, ``hold_locked`` / ``done_locked``
under it (see ``_pool.py``).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from . import _offload
from .._errors import error_text
from .._model import _hooks, _policies
from .._model._context import Activation, _activation
from .._model._job import JobContext
from .._model._routine import Routine
from .._model._slot import SlotView
from .._model._status import JobStatus
from ._calling import make_caller

# The worker (``_worker._Worker``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
_Worker = Any

# Hot-path construction of the Activation NamedTuple with every field given:
# tuple.__new__ directly, without the generated Python-level __new__ frame (same object).
_new_tuple = tuple.__new__
# Hot-path bindings: one global load instead of a global and an attribute load each.
_monotonic_ns = time.monotonic_ns
_time = time.time
_set_activation = _activation.set
_reset_activation = _activation.reset
_FAILED_OR_CANCELLED = frozenset({JobStatus.FAILED.value, JobStatus.CANCELLED.value})
_error_text = error_text  # never raises, whatever the exception's __str__ does


class _Plan:
    """A worker's cached view of one routine: its queues, lock, policy and logic caller.

    Rebuilt when the routine's ``_version`` changes (new logic, policy or slot), so the
    hot path does dictionary lookups, not introspection.
    """

    __slots__ = ("routine", "rid", "version", "lock", "queues", "views", "policy", "ptype",
                 "immediate", "logic", "_caller", "single", "executor", "task_class")

    def __init__(self, worker: _Worker, routine: Routine, rid: str) -> None:
        self.routine = routine
        self.rid = rid
        self.version = routine._version
        self.lock = worker.lock_for(rid)
        self.queues = {name: worker.queue_for(s) for name, s in routine._slots.items()}
        self.views = {name: SlotView(s, self.queues[name]) for name, s in routine._slots.items()}
        self.policy = routine._activation_policy
        self.ptype = getattr(self.policy, "_policy_type", None)
        self.logic = routine._get_logic()
        # The built-in immediate policy is applied inline: put + consume in one step.
        self.immediate = self.ptype == "immediate" and getattr(
            self.policy, "__module__", "") == _policies.__name__
        self.single = len(self.queues) == 1
        self._caller: Callable[..., Any] | None = None
        # None: sync logic on the pool thread (the fast path); else the executor that
        # runs it (an event loop for async def logic, processes, Dask): see _offload.py.
        self.executor = worker.runtime._executor_for(routine, self.logic)
        self.task_class = _Task if self.executor is None else _OffloadTask

    def caller(self) -> Callable[..., Any]:
        caller = self._caller
        if caller is None:
            if self.logic is None:
                raise RuntimeError(f"routine {self.rid!r} has no logic")
            caller = self._caller = make_caller(self.logic, list(self.queues))
        return caller


class _Task:
    """One activation: a routine's logic called with the data its policy handed over."""

    __slots__ = (
        "worker", "plan", "rid", "slot", "data", "msg", "job", "queued_ns", "started_ns",
        "attempt", "retrying", "sampled",
    )
    # ``retrying``: False; True = still in flight, settled elsewhere (a re-run timer or an
    # executor); or a float = re-run after that delay, timer started in done_locked.

    def __init__(
        self, worker: _Worker, plan: _Plan, slot: str,
        data: dict[str, list[Any]], msg: Any, job: JobContext | None,
    ) -> None:
        self.worker = worker
        self.plan = plan
        self.rid = plan.rid
        self.slot = slot
        self.data = data
        self.msg = msg
        self.job = job
        self.queued_ns = 0
        self.started_ns = 0
        self.attempt = 0
        self.retrying = False
        self.sampled = False

    @property
    def routine(self) -> Routine:
        return self.plan.routine

    def ended(self) -> bool:
        """True (and nothing to settle) when this activation must not start (the same
        test is inlined at the top of ``run``; keep the two alike)."""
        job = self.job
        if job is not None and (job.status in _FAILED_OR_CANCELLED
                                or job._deferred_failure is not None):
            # No new activation starts for a failed or cancelled job, nor for one whose
            # post found a failure still to be applied (api.md §9, §12). A pending retry
            # of it ends here too (left set, done_locked would re-arm its timer forever).
            self.retrying = False
            return True
        return False

    def run(self) -> None:
        job = self.job
        if job is not None and (job.status in _FAILED_OR_CANCELLED
                                or job._deferred_failure is not None):
            self.retrying = False  # ``ended()``, inlined: once per activation
            return
        plan = self.plan
        worker = self.worker
        rt = worker.runtime
        ws = worker.state
        rid = self.rid
        tr = rt._tracer
        self.retrying = False
        start = self.started_ns = _monotonic_ns()
        if tr is not None:
            tr.record("task.started", job.job_id if job is not None else None, rid, self.slot,
                      (start - self.queued_ns) / 1e9, None, ws.worker_id)
        token = _set_activation(_new_tuple(Activation, (job, ws, rid, plan.routine, rt, worker)))
        hooks = _hooks.active
        if hooks is not None:
            _hooks.call(hooks, "on_routine_start", rid, ws, job)
        try:
            (plan._caller or plan.caller())(self.data, self.msg, ws)
        except BaseException as exc:  # user code: handled by the error strategy
            if hooks is not None:
                _hooks.call(hooks, "on_routine_end", rid, ws, job, "failed", exc)
            _reset_activation(token)
            err = _error_text(exc)
            if tr is not None:
                job_id = job.job_id if job is not None else None
                dur = (_monotonic_ns() - start) / 1e9
                tr.record("task.error", job_id, rid, self.slot, dur, err, ws.worker_id)
                tr.record("task.finished", job_id, rid, self.slot, dur, err, ws.worker_id)
            worker.handle_error(self, exc, err, is_policy=False, settle_later=True)
            return
        if hooks is not None:
            _hooks.call(hooks, "on_routine_end", rid, ws, job, "completed", None)
        _reset_activation(token)
        ws._history.append((rid, "logic_executed", self.msg, _time()))
        if tr is not None:
            tr.record("task.finished", job.job_id if job is not None else None, rid, self.slot,
                      (_monotonic_ns() - start) / 1e9, None, ws.worker_id)

    def hold_locked(self) -> None:
        worker = self.worker
        worker.table.hold_locked(worker, self.job)

    def machinery_failed(self, exc: BaseException) -> None:
        """``run`` itself raised (not the logic): the job fails instead of completing."""
        self.retrying = False
        job = self.job
        if job is not None:
            self.worker.runtime._table.finish(
                job, JobStatus.FAILED.value, f"RoutiluxInternalError: {_error_text(exc)} (this is "
                "a bug in routilux; please report it)")

    def handoff_locked(self, follow: Any) -> Any:
        """``follow.hold_locked()`` then ``done_locked()`` (the pool thread runs ``follow``
        next): when ``follow`` holds the same job on the same worker and this run releases
        its hold, the two cancel out exactly (the job's, the worker's and the table's
        counts go +1 then -1, never through zero), so neither is done."""
        if (self.retrying is False and type(self) is _Task and follow.job is self.job
                and follow.worker is self.worker):
            return None
        follow.hold_locked()
        return self.done_locked()

    def done_locked(self) -> Any:
        retrying = self.retrying
        if retrying is False:
            worker = self.worker
            return worker.table.release_on_pool_locked(worker, self.job)
        if retrying is not True:  # a retry delay (s), decided while this run was on-thread
            worker = self.worker
            worker.runtime._call_later(retrying, worker.resubmit, self)
        return None  # still in flight


class _OffloadTask(_offload.OffloadTask, _Task):
    """A task whose plan names an executor: ``run`` hands it over (_offload.py)."""

    __slots__ = ()


class _Callback:
    """A bookkeeping step run on the pool (used to finish a job after post returns)."""

    __slots__ = ("worker", "job", "started_ns", "rid", "sampled")

    def __init__(self, worker: _Worker, job: JobContext | None) -> None:
        self.worker = worker
        self.job = job
        self.started_ns = 0
        self.rid = None
        self.sampled = True

    def run(self) -> None:
        job = self.job
        if job is not None and job._deferred_failure is not None:
            self.worker.runtime._table.finish(job, JobStatus.FAILED.value, job._deferred_failure)

    def done_locked(self) -> Any:
        worker = self.worker
        return worker.table.release_on_pool_locked(worker, self.job)
