"""Runtime: workers (live flow instances), job tracking, and the pool their logic runs on.

Design (invariants):
- Routing runs in the delivering thread (the poster, or the pool thread whose logic
  emits): enqueue + policy + consume happen under a per-(worker, routine) lock, and a
  firing policy puts one task on the run queue. emit never waits for downstream logic.
- Bookkeeping (jobs in flight, worker in-flight counts, counters) happens under the
  pool's lock, in the same acquisition in which a pool thread takes its next task.
- A job is in flight while its post, an activation under it, a retry or a time-interval
  re-check it owns is outstanding; at zero it completes, unless it already finished.
- Worker threads and the monitor hold the runtime weakly; all threads are daemons.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import os
import random
import sys
import threading
import time
import traceback
from _thread import allocate_lock as _allocate_lock
from _thread import get_ident as _get_ident
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from . import _autosize, _context, _entry, _hooks, _monitoring, _output
from ._calling import make_caller
from ._context import Activation, _activation
from ._engine import _offload
from ._error_handler import ErrorHandler, ErrorStrategy
from ._errors import QueueFullError, SlotQueueFullError, WorkerNotRunningError, error_text
from ._flow import Flow
from ._job import JobContext, call_done_callback, release_gate
from ._pool import PoolStatistics, WorkerPool, _wait_uninterrupted, check_pool_size
from ._registry import FlowRegistry, WorkerRegistry
from ._routine import Routine
from ._slot import Slot, SlotDataPoint, SlotQueue, SlotView
from ._status import TERMINAL_JOB_STATUSES, ExecutionStatus
from ._validate import check_number
from ._worker_state import WorkerState
from .executors._choice import check_executor_choice
from .trace import Tracer

logger = logging.getLogger("routilux")

MAX_FINISHED_JOBS = 10_000  # finished jobs kept per runtime for get_job / list_jobs
SHARED_POOL_SIZE = 100  # threads of the process-wide pool used by Runtime(thread_pool_size=0)
SAMPLE_INTERVAL_S = 0.1  # seconds between queue-depth samples while tracing
LONG_TASK_SAMPLE_S = 0.1  # seconds a task runs before its stack is sampled once
DEADLINE_SWEEP_S = 0.5  # seconds between sweeps of finished jobs off the deadline queues
DEADLINE_COMPACT_MIN = 4096  # deadline entries before finished ones are swept mid-queue
WAIT_SLICE_S = 0.1  # seconds a waiter sleeps at most before re-checking (lost wake-ups)
_DEFAULT_HANDLER = ErrorHandler(ErrorStrategy.STOP)
_FAILED_OR_CANCELLED = frozenset({"failed", "cancelled"})
_IMMEDIATE_MSG = {"reason": "immediate"}


def _worker_of(worker_state: Any) -> _Worker | None:
    """The live worker behind a WorkerState, else None."""
    ref = getattr(worker_state, "_worker_ref", None)
    return ref() if ref is not None else None


_error_text = error_text  # never raises, whatever the exception's __str__ does


@dataclass(frozen=True)
class RuntimeStatistics:
    """A snapshot of a runtime, safe to read from any thread.

    ``pool_size`` is the size last set (the pool converges to it); ``threads`` the live
    pool threads; ``busy``/``idle`` threads; ``queued`` activations waiting in the run
    queue; ``jobs`` status -> count over every job posted; ``in_flight`` outstanding
    activations, retries and re-checks; ``trace_dropped`` events the tracer discarded;
    ``shared_pool`` True for ``thread_pool_size=0`` (compat): ``pool_size`` then is the
    process-wide pool's, shared with every other such runtime, so ``busy`` and ``queued``
    include their work too. ``pool_auto``: the size is automatic
    (``thread_pool_size="auto"``); then ``pool_auto_reason`` is the controller's latest
    decision, with its numbers.
    """

    pool_size: int
    threads: int
    busy: int
    idle: int
    queued: int
    max_queue_size: int | None
    jobs: dict[str, int]
    posted: int
    completed: int
    failed: int
    cancelled: int
    running: int
    in_flight: int
    workers: int
    tasks_completed: int
    trace_dropped: int
    uptime_s: float
    shut_down: bool
    shared_pool: bool = False  # thread_pool_size=0: the process-wide 100-thread pool
    pool_auto: bool = False
    pool_auto_reason: str | None = None


# ---------------------------------------------------------------------------------------
# Tasks: what a pool thread runs.
# ---------------------------------------------------------------------------------------
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
            self.policy, "__module__", "") == "routilux._policies"
        self.single = len(self.queues) == 1
        self._caller: Callable[..., Any] | None = None
        # None: sync logic on the pool thread (the fast path); else the executor that
        # runs it (an event loop for async def logic, processes, Dask): see _engine/_offload.py.
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
        """True (and nothing to settle) when this activation must not start."""
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
        if self.ended():
            return
        job = self.job
        plan = self.plan
        worker = self.worker
        rt = worker.runtime
        ws = worker.state
        rid = self.rid
        tr = rt._tracer
        self.retrying = False
        start = self.started_ns = time.monotonic_ns()
        if tr is not None:
            tr.record("task.started", job.job_id if job is not None else None, rid, self.slot,
                      (start - self.queued_ns) / 1e9, None, ws.worker_id)
        token = _activation.set(Activation(job, ws, rid, plan.routine, rt, worker))
        hooks = _hooks.active
        if hooks is not None:
            _hooks.call(hooks, "on_routine_start", rid, ws, job)
        try:
            (plan._caller or plan.caller())(self.data, self.msg, ws)
        except BaseException as exc:  # user code: handled by the error strategy
            if hooks is not None:
                _hooks.call(hooks, "on_routine_end", rid, ws, job, "failed", exc)
            _activation.reset(token)
            err = _error_text(exc)
            if tr is not None:
                job_id = job.job_id if job is not None else None
                dur = (time.monotonic_ns() - start) / 1e9
                tr.record("task.error", job_id, rid, self.slot, dur, err, ws.worker_id)
                tr.record("task.finished", job_id, rid, self.slot, dur, err, ws.worker_id)
            worker.handle_error(self, exc, err, is_policy=False, settle_later=True)
            return
        if hooks is not None:
            _hooks.call(hooks, "on_routine_end", rid, ws, job, "completed", None)
        _activation.reset(token)
        ws._history.append((rid, "logic_executed", self.msg, time.time()))
        if tr is not None:
            tr.record("task.finished", job.job_id if job is not None else None, rid, self.slot,
                      (time.monotonic_ns() - start) / 1e9, None, ws.worker_id)

    def hold_locked(self) -> None:
        self.worker.hold_locked(self.job)

    def machinery_failed(self, exc: BaseException) -> None:
        """``run`` itself raised (not the logic): the job fails instead of completing."""
        self.retrying = False
        job = self.job
        if job is not None:
            self.worker.runtime._finish(
                job, "failed", f"RoutiluxInternalError: {_error_text(exc)} (this is a bug "
                "in routilux; please report it)")

    def done_locked(self) -> Any:
        retrying = self.retrying
        if retrying is False:
            return self.worker.release_locked(self.job)
        if retrying is not True:  # a retry delay (s), decided while this run was on-thread
            worker = self.worker
            worker.runtime._call_later(retrying, worker.resubmit, self)
        return None  # still in flight


class _OffloadTask(_offload.OffloadTask, _Task):
    """A task whose plan names an executor: ``run`` hands it over (_engine/_offload.py)."""

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
            self.worker.runtime._finish(job, "failed", job._deferred_failure)

    def done_locked(self) -> Any:
        return self.worker.release_locked(self.job)


# ---------------------------------------------------------------------------------------
# Worker: one live instance of a flow.
# ---------------------------------------------------------------------------------------
class _Worker:
    """A WorkerState plus per-worker slot queues; owns no thread."""

    def __init__(self, runtime: Runtime, flow: Flow, state: WorkerState) -> None:
        self.runtime = runtime
        self.flow = flow  # strong: routing never goes back through the registry
        self.state = state
        self.inflight = 0  # under the pool lock
        self.accepting = True
        self.abandoned = False
        self._queues: dict[tuple[str, str], SlotQueue] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._plans: dict[str, _Plan] = {}
        self._setup_lock = threading.Lock()
        self._warned_no_policy: set[str] = set()
        self._rechecks: dict[str, list[Any]] = {}  # rid -> [due, owner job, cancelled]
        state.__dict__["_worker_ref"] = weakref.ref(self)

    # -- per-routine resources, created on first use ----------------------------------
    def queue_for(self, slot: Slot) -> SlotQueue | None:
        routine = slot.routine
        rid = getattr(routine, "_flow_routine_id", None)
        if rid is None or self.flow.routines.get(rid) is not routine:
            return None
        key = (rid, slot.name)
        q = self._queues.get(key)
        if q is None:
            with self._setup_lock:
                q = self._queues.get(key)
                if q is None:
                    q = slot.new_queue()
                    self._queues[key] = q
        return q

    def lock_for(self, rid: str) -> threading.RLock:
        lock = self._locks.get(rid)
        if lock is None:
            with self._setup_lock:
                lock = self._locks.setdefault(rid, threading.RLock())
        return lock

    def plan(self, rid: str) -> _Plan:
        plan = self._plans.get(rid)
        if plan is None or plan.version != plan.routine._version:
            plan = _Plan(self, self.flow.routines[rid], rid)
            self._plans[rid] = plan
        return plan

    # -- bookkeeping (pool lock held) -----------------------------------------------------
    def hold_locked(self, job: JobContext | None) -> None:
        self.inflight += 1
        rt = self.runtime
        rt._inflight += 1
        if job is not None:
            job._pending += 1
            if not job._counted:
                job._counted = True
                rt._job_counts["running"] += 1
                rt._posted += 1
        if self.inflight == 1 and self.state.status == ExecutionStatus.IDLE:
            self.state.status = ExecutionStatus.RUNNING

    def release_locked(self, job: JobContext | None) -> Any:
        """Drop one hold. When it was the job's last, the hold passes to the returned
        (auto-complete, job) step, so nothing reports idle before the job is finished."""
        rt = self.runtime
        # Plain statements only until the waiters' wake-up (see _pool.py, interrupts).
        if job is not None:
            job._pending -= 1
            # While post runs, it finishes the job itself (_settle_post): a job is terminal
            # only after post returns (api.md §9).
            if job._pending == 0 and job.status == "running" and not job._in_post:
                return (rt._auto_complete, job)  # still in flight until it is finished
        self.inflight -= 1
        rt._inflight -= 1
        if self.inflight == 0 and self.state.status == ExecutionStatus.RUNNING:
            self.state.status = ExecutionStatus.IDLE
        if rt._inflight == 0 and rt._waiters:
            rt._wake_waiters_locked()
        return None

    def release_final_locked(self) -> None:
        """The hold an auto-complete step carried (see release_locked), once it is done."""
        rt = self.runtime
        self.inflight -= 1
        rt._inflight -= 1
        if self.inflight == 0 and self.state.status == ExecutionStatus.RUNNING:
            self.state.status = ExecutionStatus.IDLE
        if rt._inflight == 0 and rt._waiters:
            rt._wake_waiters_locked()

    def hold(self, job: JobContext | None) -> None:
        with self.runtime._lock:
            self.hold_locked(job)

    def release(self, job: JobContext | None) -> None:
        with self.runtime._lock:
            finished = self.release_locked(job)
        if finished is not None:
            finished[0](finished[1])

    # -- routing --------------------------------------------------------------------------
    def deliver(
        self, rid: str, slot_name: str, data: Any, job: JobContext | None,
        emitted_from: str | None, on_accept: Callable[[], JobContext] | None = None,
    ) -> bool:
        """Enqueue one item and evaluate the routine's policy; True if a task was scheduled.

        ``on_accept`` (post only) creates the job once the slot has room, under the same
        lock, so a full slot registers nothing.
        """
        plan = self._plans.get(rid)
        if plan is None or plan.version != plan.routine._version:
            plan = self.plan(rid)
        q = plan.queues[slot_name]
        tr = self.runtime._tracer
        with plan.lock:
            if on_accept is not None:
                if q.unconsumed() >= q.max_length:
                    if tr is not None:
                        tr.record("slot.full", None, rid, slot_name, q.max_length, None,
                                  self.state.worker_id)
                    raise SlotQueueFullError(
                        f"slot {rid}.{slot_name} is full ({q.max_length} unconsumed items); "
                        "no job was registered"
                    )
                job = on_accept()
            hooks = _hooks.active
            if hooks is not None and not _hooks.allow_enqueue(
                    hooks, plan.routine._slots[slot_name], rid, job, data, self.flow.flow_id):
                return False
            point = SlotDataPoint(data, emitted_from, time.time(), job)
            if plan.immediate and plan.logic is not None:
                try:
                    items = q.put_take(point)
                except SlotQueueFullError:
                    self._trace_full(tr, job, rid, slot_name, q)
                    raise
                # No slot.enqueue here: the item is consumed in the same step, and the
                # task.queued event that follows says the same (see docs/trace_events.md).
                if plan.single:
                    batch = {slot_name: items}
                else:
                    batch = {name: other.consume_all_new() if other.unconsumed() else []
                             for name, other in plan.queues.items()}
                    batch[slot_name] = items
                self.schedule(plan.task_class(self, plan, slot_name, batch, _IMMEDIATE_MSG, job))
                return True
            try:
                depth = q.put(point)
            except SlotQueueFullError:
                self._trace_full(tr, job, rid, slot_name, q)
                raise
            if tr is not None:
                tr.record("slot.enqueue", job.job_id if job else None, rid, slot_name,
                          depth, None, self.state.worker_id)
            return self._evaluate(plan, slot_name, job)

    def _trace_full(self, tr: Any, job: Any, rid: str, slot_name: str, q: SlotQueue) -> None:
        if tr is not None:
            tr.record("slot.full", job.job_id if job else None, rid, slot_name,
                      q.max_length, None, self.state.worker_id)

    def _evaluate(self, plan: _Plan, slot_name: str, job: JobContext | None) -> bool:
        """Run the policy once for an arrival (the plan's lock held)."""
        rid = plan.rid
        routine = plan.routine
        policy = plan.policy
        if policy is None or plan.logic is None:
            if rid not in self._warned_no_policy:
                self._warned_no_policy.add(rid)
                what = "activation policy" if policy is None else "logic"
                logger.warning(
                    "routine %r has no %s: its slots fill up and it never runs "
                    "(set_activation_policy(immediate_policy()) is the usual choice)",
                    rid, what,
                )
            return False
        rt = self.runtime
        tr = rt._tracer
        ws = self.state
        views = plan.views
        ptype = plan.ptype
        barrier_jobs: list[str | None] | None = None
        if tr is not None and ptype == "all_slots_ready":
            barrier_jobs = []
            for view in views.values():
                points = view._queue.peek_points_new()
                first = points[0] if points else None
                barrier_jobs.append(first.job.job_id if first and first.job else None)
        token = _activation.set(Activation(job, ws, rid, routine, rt))
        try:
            result = policy(views, ws)
            fire, data_slice, msg = self._check_policy_result(rid, result)
        except Exception as exc:
            _activation.reset(token)
            err = _error_text(exc)
            if tr is not None:
                tr.record("task.error", job.job_id if job else None, rid, slot_name, 0.0,
                          f"policy: {err}", ws.worker_id)
            self.handle_error(None, exc, err, is_policy=True, job=job, rid=rid)
            return False
        except BaseException:
            # KeyboardInterrupt / SystemExit in the delivering thread is not the policy's
            # error to handle: it goes to whoever posted (post cancels its job).
            _activation.reset(token)
            raise
        _activation.reset(token)
        job_id = job.job_id if job is not None else None
        if not fire:
            if tr is not None:
                if ptype == "all_slots_ready":
                    counts = {n: v._queue.unconsumed() for n, v in views.items()}
                    tr.record("barrier.wait", job_id, rid, slot_name,
                              views[slot_name]._queue.unconsumed(), counts, ws.worker_id)
                else:
                    tr.record("policy.hold", job_id, rid, slot_name,
                              views[slot_name]._queue.unconsumed(), None, ws.worker_id)
            if ptype == "time_interval":
                self._schedule_recheck(plan, job)
            return False
        if barrier_jobs is not None and tr is not None:
            if getattr(policy, "_policy_config", {}).get("match_job"):
                barrier_jobs = [job_id] * len(barrier_jobs)
            tr.record("barrier.release", job_id, rid, slot_name,
                      len(set(barrier_jobs)), barrier_jobs, ws.worker_id)
        data = {name: list(data_slice.get(name) or ()) for name in plan.queues}
        self.schedule(plan.task_class(self, plan, slot_name, data, msg, job))
        return True

    @staticmethod
    def _check_policy_result(rid: str, result: Any) -> tuple[bool, Mapping[str, Any], Any]:
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise TypeError(
                f"the activation policy of routine {rid!r} returned {result!r}; a policy must "
                "return (should_activate: bool, data_slice: dict[str, list], policy_message)"
            )
        fire, data_slice, msg = result
        if not fire:
            return False, {}, msg
        if data_slice is None:
            data_slice = {}
        if not isinstance(data_slice, Mapping):
            raise TypeError(
                f"the activation policy of routine {rid!r} returned data_slice "
                f"{data_slice!r}; a policy must return (should_activate: bool, "
                "data_slice: dict[str, list], policy_message)"
            )
        return True, data_slice, msg

    def schedule(self, task: _Task) -> None:
        """Put ``task`` on the run queue, or keep it as the emitting thread's next task.

        When logic running on a pool thread emits while no thread is idle, the activation
        it triggers waits in that thread's "next" slot instead of the shared queue, and
        runs as soon as the emitting logic returns (see _pool.py). A job then runs its
        stages depth-first instead of re-queueing behind every newer job: lower latency,
        fewer jobs in flight, one queue round trip less per stage. Only the latest such
        activation of a logic call is kept there; an earlier one goes to the shared queue.
        """
        rt = self.runtime
        pool = rt._pool
        task.queued_ns = time.monotonic_ns()
        tr = rt._tracer
        # Only when the pool is full: with room for another thread, spawn it, or a logic
        # that emits and then waits for its downstream would wait for itself.
        # And only for a job already counted: a job posted from inside logic must count
        # as running at once, or another thread's wait_until_all_jobs_finished may pass.
        job = task.job
        if not pool._parked and pool._alive >= pool._size and (job is None or job._counted):
            me = _get_ident()
            if me in pool._threads:
                nexts = pool.next_tasks
                # pop, not get: an idle thread may steal the entry meanwhile (_pool._work),
                # and whoever pops a task owns it, so it never runs twice.
                previous = nexts.pop(me, None)
                nexts[me] = task  # held (counted in flight) when a thread picks it up
                # A thread may have parked since we looked. If the pool lock is free and
                # nobody is parked, any thread that parks later sees the entry first and
                # steals it instead; otherwise wake one to steal it.
                if pool._parked or pool.lock.locked():
                    pool.wake_one_for_next()
                if tr is not None:
                    job = task.job
                    tr.record("task.queued", job.job_id if job else None, task.rid,
                              task.slot, len(pool.tasks) + len(nexts), None,
                              self.state.worker_id)
                if previous is None:
                    return
                # To the front: it is a running job's next step (a sibling of the task just
                # kept), and behind newer posts a barrier joining the siblings would pile up.
                previous.worker._enqueue(previous, traced=False, front=True)
                return
        self._enqueue(task, traced=tr is not None)

    def _enqueue(self, task: _Task, traced: bool, front: bool = False) -> None:
        rt = self.runtime
        pool = rt._pool
        job = task.job
        with rt._lock:
            if pool._closed:
                raise RuntimeError("cannot submit to a pool after shutdown")
            # Hold and queue in one run of plain statements ending in one C call, so an
            # interrupt in the posting thread lands before both or after both (_pool.py).
            if job is not None and job._post_hold:
                job._post_hold = False  # the first activation takes over post's own hold
                (pool.tasks.appendleft if front else pool.tasks.append)(task)
            else:
                self.inflight += 1
                rt._inflight += 1
                if job is not None:
                    job._pending += 1
                    if not job._counted:
                        job._counted = True
                        rt._job_counts["running"] += 1
                        rt._posted += 1
                (pool.tasks.appendleft if front else pool.tasks.append)(task)
            try:
                pool.wake_locked()
            except BaseException:
                _repair_wake_locked(pool)
                raise
            depth = len(pool.tasks) + len(pool.next_tasks)
            if self.state.status == ExecutionStatus.IDLE:
                self.state.status = ExecutionStatus.RUNNING
        if traced:
            rt._tracer.record("task.queued", job.job_id if job else None, task.rid, task.slot,
                              depth, None, self.state.worker_id)

    def emit(self, routine: Routine, event_name: str, payload: dict[str, Any],
             job: JobContext | None) -> None:
        rid = routine._flow_routine_id
        if rid is None or self.flow.routines.get(rid) is not routine:
            raise RuntimeError(f"{routine!r} is not part of this worker's flow {self.flow.flow_id!r}")
        self.emit_from(rid, event_name, payload, job)

    def emit_from(self, rid: str, event_name: str, payload: dict[str, Any],
                  job: JobContext | None) -> None:
        """Deliver one emitted item to every slot wired to ``rid.event_name``, in order."""
        ws = self.state
        if job is not None and job.status in _FAILED_OR_CANCELLED:
            ws._history.append((rid, "emit_dropped", (event_name, payload), time.time()))
            return
        hooks = _hooks.active
        if hooks is not None:
            event = self.flow.routines[rid]._events.get(event_name)
            if _hooks.call(hooks, "on_event_emit", event, rid, ws, job, payload) is False:
                ws._history.append((rid, "emit_dropped", (event_name, payload), time.time()))
                return
        ws._history.append((rid, "event_emit", (event_name, payload), time.time()))
        rejected: list[str] | None = None
        for trid, sname in self.flow._routes.get((rid, event_name), ()):
            try:
                self.deliver(trid, sname, dict(payload), job, rid)
            except SlotQueueFullError:
                if rejected is None:
                    rejected = []
                rejected.append(f"{trid}.{sname}")
        if rejected:
            raise SlotQueueFullError(
                f"emit({event_name!r}) from routine {rid!r}: slot(s) {', '.join(rejected)} "
                "full; the other targets received the item"
            )

    # -- time-interval re-checks ----------------------------------------------------------
    def _schedule_recheck(self, plan: _Plan, job: JobContext | None) -> None:
        if not any(q.unconsumed() for q in plan.queues.values()):
            return
        rid = plan.rid
        config = getattr(plan.policy, "_policy_config", {}) or {}
        interval = float(config.get("min_interval_seconds", 0.0))
        last = self.state._policy_state.get((rid, "time_interval"))
        due = (last or time.time()) + interval
        rt = self.runtime
        entry = self._rechecks.get(rid)
        old_owner = None
        with rt._lock:
            if entry is not None and not entry[2]:
                old_owner = entry[1]
                entry[1] = job
                self.hold_locked(job)
                finished = self.release_locked(old_owner)
            else:
                entry = [due, job, False]
                self._rechecks[rid] = entry
                self.hold_locked(job)
                finished = None
                rt._call_later(max(due - time.time(), 0.0), self._run_recheck, (rid, entry))
        if finished is not None:
            finished[0](finished[1])

    def _run_recheck(self, arg: tuple[str, list[Any]]) -> None:
        rid, entry = arg
        with self.lock_for(rid):
            if self._rechecks.get(rid) is entry:
                del self._rechecks[rid]
            entry[2] = True
            job = entry[1]
            if job is None or job.status not in _FAILED_OR_CANCELLED:
                plan = self.plan(rid)
                self._evaluate(plan, next(iter(plan.queues), ""), job)
        self.release(job)

    # -- errors ---------------------------------------------------------------------------
    def handle_error(
        self, task: _Task | None, exc: BaseException, err: str, *, is_policy: bool,
        job: JobContext | None = None, rid: str | None = None, settle_later: bool = False,
    ) -> None:
        """Apply the routine's (else the flow's, else STOP) strategy to one failure.

        ``settle_later``: the failed run is still on a pool thread, whose ``done_locked``
        starts a retry's timer (so a re-run never overlaps this run's settling).
        """
        if task is not None:
            job, rid = task.job, task.rid
        assert rid is not None
        routine = self.flow.routines.get(rid)
        handler = (routine._error_handler if routine is not None else None) \
            or self.flow.error_handler or _DEFAULT_HANDLER
        ws = self.state
        ws.record_execution(rid, "logic_error", {"error": err})
        job_id = job.job_id if job is not None else None
        logger.warning("routine %r (job %s) raised %s", rid, job_id, err)
        strategy = handler.strategy
        rt = self.runtime
        if strategy == ErrorStrategy.RETRY and not is_policy and task is not None \
                and handler.is_retryable(exc) and task.attempt < handler.max_retries:
            task.attempt += 1
            handler.retry_count = task.attempt
            ws.record_execution(rid, "retry", {"attempt": task.attempt, "error": err})
            delay = handler.delay_for(task.attempt)
            if settle_later:
                # The timer starts in done_locked, once this run is off the thread: a zero
                # delay must not let another thread re-run the task before it is settled.
                task.retrying = delay
            else:
                task.retrying = True
                rt._call_later(delay, self.resubmit, task)
            return
        if strategy == ErrorStrategy.CONTINUE:
            ws.record_execution(rid, "error_continued",
                                {"error": err, "error_type": type(exc).__name__})
            ws._merge_routine_state(rid, {"status": "error_continued", "error": err})
            return
        if strategy == ErrorStrategy.SKIP:
            ws.record_execution(rid, "skipped", {"error": err})
            ws._merge_routine_state(rid, {"status": "skipped", "error": err})
            return
        ws._merge_routine_state(rid, {"status": "failed", "error": err})
        if job is not None:
            job._exception = exc  # what on_job_end hooks receive
            if getattr(job, "_in_post", False):
                job._deferred_failure = err  # applied after post returns (api.md §9)
            else:
                rt._finish(job, "failed", err)

    def resubmit(self, task: Any) -> None:
        """Put ``task``, which already holds its job, on the run queue; release the hold
        instead if the pool has closed. (Retries, and offloaded outcomes to settle.)"""
        rt = self.runtime
        task.queued_ns = time.monotonic_ns()
        with rt._lock:
            finished = None
            if rt._pool.closed:
                finished = self.release_locked(task.job)
            else:
                rt._pool.submit_locked(task)
        if finished is not None:
            finished[0](finished[1])

    def wait_idle(self, timeout: float | None) -> bool:
        return self.runtime._wait(lambda: not self.inflight, timeout)


# ---------------------------------------------------------------------------------------
# The process-wide shared pool (thread_pool_size=0).
# ---------------------------------------------------------------------------------------
class WorkerManager:
    """Owner of the process-wide pool shared by every ``Runtime(thread_pool_size=0)``."""

    def __init__(self, max_workers: int = SHARED_POOL_SIZE) -> None:
        self.max_workers = max_workers
        self.thread_pool = WorkerPool(max_workers, name_prefix="RoutiluxWorker-shared")

    def shutdown(self, timeout: float | None = 5.0) -> None:
        self.thread_pool.shutdown(timeout)


_manager: WorkerManager | None = None
_manager_lock = threading.Lock()


def get_worker_manager() -> WorkerManager:
    global _manager
    with _manager_lock:
        if _manager is None or _manager.thread_pool.closed:
            _manager = WorkerManager()
        return _manager


def reset_worker_manager() -> None:
    """Shut the shared pool down (for tests); the next user gets a fresh one."""
    global _manager
    with _manager_lock:
        manager, _manager = _manager, None
    if manager is not None:
        manager.shutdown()


# ---------------------------------------------------------------------------------------
# Monitor: timers, job deadlines, trace sampling. One daemon thread per runtime.
# ---------------------------------------------------------------------------------------
class _Monitor:
    """Timers, deadlines and sampling on one daemon thread.

    A plain lock and a wake gate, not a ``threading.Condition``: posts (the notebook's or
    a script's main thread, where a Ctrl-C lands) add deadlines and timers, and a
    KeyboardInterrupt inside Condition's Python-level ``__enter__`` / ``notify`` could
    leave its lock held for good or lose the wake-up (issue 13). Both ``with`` on a raw
    lock and ``gate.release()`` are single C calls.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._rt = weakref.ref(runtime)
        self._lock = threading.Lock()  # guards the heap, the deadlines, the flags
        self._gate = _allocate_lock()  # held = no wake-up pending; released to wake
        self._gate.acquire()
        self._timers: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()
        self._deadlines: dict[float, deque[tuple[float, JobContext]]] = {}
        self._compact_at: dict[float, int] = {}  # deque length that triggers _compact
        self._stop = False
        self._thread: threading.Thread | None = None
        self.sampling = False

    def _ensure_started(self) -> None:
        if self._thread is None:
            rt = self._rt()
            name = f"RoutiluxMonitor-{id(rt):x}"
            started = threading.Event()
            t = threading.Thread(target=self._loop, args=(started,), name=name, daemon=True)
            try:
                t.start()
            except BaseException:
                # Interrupted inside Thread.start (a Ctrl-C in post): keep it only if it
                # runs, else the next call starts one (a never-started monitor would
                # leave every timer and deadline of the runtime unserved).
                if _wait_uninterrupted(started, 2.0):
                    self._thread = t
                raise
            self._thread = t

    def call_later(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        # Never a NaN (or negative) due time in the heap: one froze every timer (issue 13).
        # Inputs are validated where they are taken; this guards what is computed from them.
        if not delay >= 0.0:
            delay = 0.0
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn, arg))
            self._ensure_started()
            self._notify()

    def add_deadline(self, timeout: float, job: JobContext) -> None:
        # Hot path (once per post): deque.append is atomic, so no lock unless this is
        # the first deadline of its kind and the monitor may be asleep indefinitely.
        dq = self._deadlines.get(timeout)
        # The loop sweeps every DEADLINE_SWEEP_S once a deque exists (and it runs: an
        # interrupt may have cut the first start short).
        if dq is not None and self._thread is not None:
            dq.append((time.monotonic() + timeout, job))
            return
        with self._lock:
            dq = self._deadlines.get(timeout)
            if dq is None:
                dq = self._deadlines[timeout] = deque()
            dq.append((time.monotonic() + timeout, job))
            self._ensure_started()
            self._notify()

    def _notify(self) -> None:
        try:
            self._gate.release()
        except RuntimeError:  # already released: a wake-up is pending anyway
            pass

    def _compact(self, key: float, dq: deque[tuple[float, JobContext]]) -> None:
        """Drop finished jobs from anywhere in ``dq``, not only its front (issue 13).

        Sweeping only the front let one long job pin every later one, finished or not,
        behind it (+163 MB after 200,000 trivial jobs). Rotates in place, because posters
        append without the lock: an entry appended meanwhile lands among the survivors,
        later-due than all of them by construction, so the order is kept but for the
        entries appended during the pass. Runs again only once the deque has doubled.
        """
        for _ in range(len(dq)):
            entry = dq.popleft()
            if entry[1].status not in TERMINAL_JOB_STATUSES:
                dq.append(entry)
        self._compact_at[key] = max(2 * len(dq), DEADLINE_COMPACT_MIN)

    def start_sampling(self) -> None:
        with self._lock:
            self.sampling = True
            self._ensure_started()
            self._notify()

    def stop(self, timeout: float | None = 2.0) -> None:
        with self._lock:
            self._stop = True
            self._notify()
        t = self._thread
        if t is not None and t is not threading.current_thread() and timeout != 0 \
                and t.is_alive():
            t.join(2.0 if timeout is None else min(timeout, 2.0))

    def _loop(self, started: threading.Event) -> None:
        started.set()  # first: an interrupted _ensure_started waits for this
        next_sample = 0.0
        while True:
            due_timers: list[tuple[Callable[[Any], None], Any]] = []
            expired: list[JobContext] = []
            with self._lock:
                if self._stop:
                    return
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, fn, arg = heapq.heappop(self._timers)
                    due_timers.append((fn, arg))
                wake = self._timers[0][0] if self._timers else now + 3600.0
                if self._deadlines:
                    wake = min(wake, now + DEADLINE_SWEEP_S)
                for key, dq in self._deadlines.items():
                    while dq and (dq[0][1].status in TERMINAL_JOB_STATUSES or dq[0][0] <= now):
                        _due, job = dq.popleft()
                        if job.status not in TERMINAL_JOB_STATUSES:
                            expired.append(job)
                    if len(dq) > self._compact_at.get(key, DEADLINE_COMPACT_MIN):
                        self._compact(key, dq)
                    if dq:
                        wake = min(wake, dq[0][0])
                if self.sampling:
                    if now >= next_sample:
                        next_sample = now + SAMPLE_INTERVAL_S
                        sample = True
                    else:
                        sample = False
                    wake = min(wake, next_sample)
                else:
                    sample = False
                nap = None if due_timers or expired or sample else max(wake - now, 0.0)
            if nap is not None:
                # Outside the lock; a notify since we looked releases the gate, so the
                # acquire returns at once and nothing is missed.
                self._gate.acquire(True, min(nap, 3600.0))
                continue
            rt = self._rt()
            if rt is None:
                return
            for fn, arg in due_timers:
                try:
                    fn(arg)
                except Exception:
                    logger.exception("routilux: a timer failed; this is a bug in routilux")
            for job in expired:
                timeout = job._timeout
                rt._finish(job, "failed",
                           f"TimeoutError: job {job.job_id} timed out after {timeout:g} s "
                           "(flow execution_timeout)")
            if sample:
                try:
                    rt._sample()
                except Exception:
                    logger.exception("routilux: trace sampling failed")
            del rt


# ---------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------
class Runtime:
    """Runs flows: workers route items, a resizable pool runs logic, jobs are tracked.

    Args:
        thread_pool_size: threads of this runtime's own pool (at most that many of its
            logic calls run at once); 0 uses the process-wide shared 100-thread pool;
            ``"auto"``: a private pool that sizes itself while jobs run, from throughput,
            Little's law and the CPU share of its threads, recording every change and
            its reason in the trace (``pool.autosize``; docs/tuning.md).
        max_pool_size: the upper bound of automatic sizing (default 64 threads; the
            lower bound is 1). Also used by a later ``resize("auto")``.
        max_queue_size: bound on activations waiting in the run queue; when full, ``post``
            waits (``block=True``) or raises ``QueueFullError``. ``None`` = unbounded.
            Activations scheduled by ``emit`` inside logic are never refused.
        trace: True for a ``Tracer`` of default capacity, or a ``Tracer`` to record into.
        strict: raise ``SharedStateError`` when logic assigns a routine attribute.
        executor: where logic runs unless a routine chooses (``routine.set_executor``):
            ``"threads"`` (default; ``async def`` logic runs on the runtime's event loop),
            ``"asyncio"``, ``"processes"``, or an ``routilux.executors.Executor`` such as
            ``DaskExecutor(client)``. Executors chosen by name are the runtime's and are
            shut down with it; executor objects stay yours (docs/executors.md).

    Raises:
        ValueError / TypeError: a bad pool size, queue bound or executor (named in the message).
    """

    def __init__(
        self,
        thread_pool_size: int = 10,
        max_queue_size: int | None = None,
        trace: Any = False,
        strict: bool = False,
        executor: Any = None,
        max_pool_size: int | None = None,
    ) -> None:
        if type(thread_pool_size) is int and thread_pool_size > 0:
            size, auto = thread_pool_size, False  # WorkerPool validates it (warns once if huge)
        else:
            size, auto = _autosize.parse_thread_pool_size(thread_pool_size)  # 0, auto or raises
        self.max_pool_size = _autosize.check_max_pool_size(max_pool_size)
        if auto:
            size = _autosize.start_size(self.max_pool_size)
        self._executor = check_executor_choice(executor)
        self._owned_executors: dict[str, Any] = {}  # by name: made (lazily) and closed here
        self._executor_lock = threading.Lock()
        if max_queue_size is not None:
            if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int):
                raise TypeError(f"max_queue_size must be an int or None, got {max_queue_size!r}")
            if max_queue_size < 1:
                raise ValueError(f"max_queue_size must be >= 1 or None, got {max_queue_size}")
        self.thread_pool_size = size
        self.max_queue_size = max_queue_size
        self.strict = bool(strict)
        if size == 0:
            self._pool = get_worker_manager().thread_pool
            self.thread_pool: WorkerPool | None = None
        else:
            self._pool = WorkerPool(size)
            self.thread_pool = self._pool
        self._lock = self._pool.lock
        # One raw lock per blocked waiter, released (under the pool lock) to wake it. Not a
        # Condition over the pool lock: a Ctrl-C inside Condition.wait can leave the pool
        # lock released by a thread that no longer holds it (issue 13).
        self._waiters: list[Any] = []
        self._interrupted = False  # a wait was interrupted (Ctrl-C); see _on_interrupt
        self._inflight = 0
        self._jobs: dict[str, JobContext] = {}
        self._finished_order: deque[str] = deque()
        self._job_counts = {"running": 0, "completed": 0, "failed": 0, "cancelled": 0}
        self._posted = 0
        self._workers: dict[str, _Worker] = {}
        self._default_workers: dict[int, _Worker] = {}  # id(flow) -> worker
        self._post_gate = threading.Lock()
        self._shut_down = False
        self._started = time.monotonic()
        self._monitor = _Monitor(self)
        self._state_writes: dict[tuple[str, str], int] = {}
        self._tracer: Tracer | None = None
        self._tracing_lock = threading.Lock()  # monitoring switching tracing on and off
        if isinstance(trace, Tracer):  # a Tracer is falsy while empty: test its type first
            self._tracer = trace
        elif trace is True:
            self._tracer = Tracer()
        elif trace is not False and trace is not None:
            # Not truthiness: trace="no" must not switch tracing on (issue 13).
            raise TypeError(f"trace must be True, False or a Tracer, got {trace!r}")
        elif _monitoring.enabled:  # MonitoringRegistry.enable(): new runtimes trace
            self._tracer = Tracer()
            _monitoring.adopt(self, self._tracer, attached=False)
        if self._tracer is not None:
            # The pool's size from the first event on: routilux.trace.pool_series needs it.
            with self._lock:
                pool_size = self._pool.statistics_locked().size
            self._tracer.record("pool.size", None, None, None, pool_size, None, None)
            self._monitor.start_sampling()
            _context.set_default_tracer_runtime(self)
        _runtimes.add(self)
        if self.thread_pool is not None:
            weakref.finalize(self, _close_orphan, self._pool, self._monitor)
        self._autosizer: _autosize.AutoSizer | None = None
        if auto:
            self._start_autosize(f"thread_pool_size='auto': start at {size} = "
                                 f"min(max_pool_size {self.max_pool_size}, cpu_count + 4)")

    def _start_tracing(self) -> None:
        """Monitoring was switched on after this runtime was made: trace from now on."""
        with self._tracing_lock:
            if self._tracer is not None or not _monitoring.enabled:
                return
            tracer = Tracer()
            self._tracer = tracer
        _monitoring.adopt(self, tracer, attached=True)
        if not _monitoring.enabled:  # switched off meanwhile: its disable() missed us
            self._stop_tracing(tracer)
            return
        self._monitor.start_sampling()
        _context.set_default_tracer_runtime(self)

    def _stop_tracing(self, tracer: Tracer) -> None:
        """Undo ``_start_tracing`` (monitoring switched off); events recorded stay in it."""
        with self._tracing_lock:
            if self._tracer is tracer:
                self._tracer = None

    # -- executors ------------------------------------------------------------------------
    def _executor_for(self, routine: Routine, logic: Any) -> Any:
        """The executor a plan runs ``logic`` on; None for the pool thread itself."""
        choice = routine.__dict__.get("_executor")
        if choice is None:
            choice = self._executor
        coroutine = _offload.is_coroutine_logic(logic)
        name = choice if isinstance(choice, str) else getattr(choice, "name", None)
        if choice is None or name in ("threads", "asyncio"):
            if not coroutine:
                return None  # sync logic: the pool thread (an event loop is for coroutines)
            return choice if name == "asyncio" and not isinstance(choice, str) \
                else self._owned_executor("asyncio")
        if isinstance(choice, str):
            return self._owned_executor(choice)
        return choice

    def _owned_executor(self, name: str) -> Any:
        ex = self._owned_executors.get(name)
        if ex is not None:
            return ex
        with self._executor_lock:
            ex = self._owned_executors.get(name)
            if ex is None:
                from .executors import AsyncioExecutor, ProcessExecutor

                ex = AsyncioExecutor() if name == "asyncio" else ProcessExecutor()
                if not self._owned_executors:  # closed with a runtime never shut down
                    weakref.finalize(self, _close_executors, self._owned_executors)
                self._owned_executors[name] = ex
            return ex

    # -- public properties ----------------------------------------------------------------
    @property
    def tracer(self) -> Any:
        """The ``Tracer`` recording this runtime's events, or None when tracing is off."""
        return self._tracer

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    # -- workers --------------------------------------------------------------------------
    def _resolve_flow(self, flow_name: Any) -> Flow:
        if isinstance(flow_name, Flow):
            return flow_name
        if not isinstance(flow_name, str):
            raise TypeError(f"flow_name must be a str, got {type(flow_name).__name__}")
        flow = FlowRegistry.get_instance().resolve(flow_name)
        if flow is None:
            known = FlowRegistry.get_instance().known_names()
            raise ValueError(
                f"unknown flow {flow_name!r}; known flows: {', '.join(known) or '(none)'}"
            )
        return flow

    def _check_open(self) -> None:
        if self._shut_down:
            raise RuntimeError("Runtime is shut down")

    def _new_worker(self, flow: Flow, worker_state: WorkerState | None) -> _Worker:
        if worker_state is None:
            worker_state = WorkerState(flow.flow_id)
        worker = _Worker(self, flow, worker_state)
        worker_state._set_status(ExecutionStatus.RUNNING)
        worker_state.status = ExecutionStatus.IDLE
        with self._lock:
            self._workers[worker_state.worker_id] = worker
            self._default_workers[id(flow)] = worker
        flow._latest_worker_ref = weakref.ref(worker)
        WorkerRegistry.get_instance().register(worker_state)
        hooks = _hooks.active
        if hooks is not None:
            _hooks.call(hooks, "on_worker_start", flow, worker_state)
        return worker

    def exec(self, flow_name: Any, worker_state: WorkerState | None = None,
             worker_id: str | None = None, entry_params: Mapping[str, Any] | None = None,
             ) -> Any:
        """Start a new worker for the flow and make it the flow's default worker here.

        Returns the new worker's ``WorkerState``. With ``entry_params`` (compat: the
        docs' quickstart), it also posts them as one job to the flow's entry routine (the
        one routine no other routine feeds, at its only slot) and returns an
        ``EntryJob``: that job's ``job_id`` / ``status`` / ``wait()``, with the worker
        state behind every other attribute. Both return at once; wait for the job.

        Raises:
            RuntimeError: the runtime is shut down.
            ValueError: unknown flow, ``worker_state`` belongs to another flow, or (with
                ``entry_params``) no single entry routine with a single slot (the
                candidates are named).
            TypeError: ``entry_params`` is not a dict.
        """
        self._check_open()
        flow = self._resolve_flow(flow_name)
        entry = None
        if entry_params is not None:
            if not isinstance(entry_params, Mapping):
                raise TypeError(
                    f"entry_params must be a dict, got {type(entry_params).__name__}: "
                    f"{entry_params!r}"
                )
            entry = _entry.entry_point(flow)  # checked before a worker exists
        if worker_state is not None:
            if not isinstance(worker_state, WorkerState):
                raise TypeError(f"worker_state must be a WorkerState, got {worker_state!r}")
            if worker_state.flow_id and worker_state.flow_id != flow.flow_id:
                raise ValueError(
                    f"worker_state belongs to flow {worker_state.flow_id!r}, "
                    f"not {flow.flow_id!r}"
                )
            existing = self._workers.get(worker_state.worker_id)
            if existing is not None and existing.accepting:
                raise ValueError(f"worker {worker_state.worker_id!r} is already running here")
        elif worker_id is not None:
            worker_state = WorkerState(flow.flow_id, worker_id=worker_id)
        worker = self._new_worker(flow, worker_state)
        state = worker.state
        state.status = ExecutionStatus.RUNNING  # settles to IDLE at the first wait
        if entry is None:
            return state
        _, job = self.post(flow, entry[0], entry[1], dict(entry_params or {}),
                           worker_id=state.worker_id)
        return _entry.EntryJob(job, state)

    # -- posting --------------------------------------------------------------------------
    def post(
        self,
        flow_name: Any,
        routine_name: str,
        slot_name: str,
        data: Any,
        worker_id: str | None = None,
        job_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> tuple[WorkerState, JobContext]:
        """Post ``data`` to a routine's slot as a new job; returns ``(worker_state, job)``.

        Names are validated before anything is created. The item is enqueued and the
        policy evaluated in this thread, so a full slot raises ``SlotQueueFullError``
        here (and no job is registered). ``data`` is a dict (copied); ``None`` is taken
        as ``{}``, an item with no fields, because the docs trigger entry routines that
        way; anything else raises ``TypeError``. With ``max_queue_size`` set and the run queue
        full, waits for room (``block``, up to ``timeout`` s) or raises ``QueueFullError``.

        A KeyboardInterrupt arriving while post runs always reaches the caller; the job
        it was creating is then either not created or "cancelled" (docs/interrupts.md).
        """
        self._check_open()
        if _monitoring.enabled and self._tracer is None:
            self._start_tracing()
        flow = self._resolve_flow(flow_name)
        routine = flow.routines.get(routine_name)
        if routine is None:
            raise ValueError(
                f"flow {flow.flow_id!r} has no routine {routine_name!r}; routines are: "
                f"{', '.join(flow.routines) or '(none)'}"
            )
        if slot_name not in routine._slots:
            raise ValueError(
                f"routine {routine_name!r} has no slot {slot_name!r}; slots are: "
                f"{', '.join(routine._slots) or '(none)'}"
            )
        if type(data) is dict or isinstance(data, Mapping):
            data = dict(data)
        elif data is None:
            data = {}
        else:
            raise TypeError(f"post data must be a dict, got {type(data).__name__}: {data!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        if job_id is not None and not isinstance(job_id, str):
            raise TypeError(f"job_id must be a str, got {type(job_id).__name__}")
        if worker_id is not None:
            worker = self._workers.get(worker_id)
            if worker is None:
                raise ValueError(f"unknown worker_id {worker_id!r} in this runtime")
            if worker.flow is not flow:
                if worker.flow.flow_id != flow.flow_id:
                    raise ValueError(
                        f"worker {worker_id!r} runs flow {worker.flow.flow_id!r}, "
                        f"not {flow.flow_id!r}"
                    )
                # A newer Flow took this id (a re-run notebook cell); the worker keeps its
                # own flow (api.md §8), so the names must exist in that one.
                flow = worker.flow
                routine = flow.routines.get(routine_name)
                if routine is None or slot_name not in routine._slots:
                    raise ValueError(
                        f"worker {worker_id!r} runs an older flow {flow.flow_id!r} without "
                        f"{routine_name}.{slot_name}; post without worker_id to use the new one"
                    )
            if not worker.accepting:
                raise WorkerNotRunningError(
                    f"worker {worker_id!r} is {worker.state.status}; it accepts no more jobs"
                )
        else:
            worker = self._default_workers.get(id(flow))
            if worker is None or not worker.accepting:
                worker = self._new_worker(flow, None)
        if self.max_queue_size is None:
            return worker.state, self._post(worker, flow, routine_name, slot_name, data,
                                            job_id, metadata)
        with self._post_gate:
            self._wait_for_room(block, timeout)
            return worker.state, self._post(worker, flow, routine_name, slot_name, data,
                                            job_id, metadata)

    def _wait_for_room(self, block: bool, timeout: float | None) -> None:
        pool = self._pool
        limit = self.max_queue_size
        assert limit is not None
        with self._lock:
            if len(pool.tasks) < limit:
                return
            if not block:
                raise QueueFullError(
                    f"run queue is full ({limit} activations waiting, max_queue_size={limit}); "
                    "no job was registered"
                )
        timeout = check_number("timeout", timeout, allow_none=True, minimum=0.0,
                               allow_inf=True, unit=" seconds")
        deadline = None if timeout is None or timeout == math.inf \
            else time.monotonic() + timeout
        # Wait on a gate of our own, never holding the pool lock while asleep (a Ctrl-C
        # inside Condition.wait could leave that lock released by a non-owner; see _wait).
        while True:
            gate = _allocate_lock()
            gate.acquire()
            with self._lock:
                if self._shut_down:  # woken by shutdown, which also emptied the queue
                    raise RuntimeError("Runtime is shut down")
                if len(pool.tasks) < limit:
                    return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise QueueFullError(
                        f"run queue stayed full ({limit} activations waiting) for "
                        f"{timeout:g} s; no job was registered"
                    )
                pool.add_room_gate_locked(gate)
            if not gate.acquire(True, WAIT_SLICE_S if remaining is None
                                else min(remaining, WAIT_SLICE_S)):
                with self._lock:
                    pool.drop_room_gate_locked(gate)

    def _post(self, worker: _Worker, flow: Flow, rid: str, slot_name: str, data: dict,
              job_id: str | None, metadata: Any) -> JobContext:
        """Create, register and deliver one job.

        Interrupt safety (issue 13): the job is registered, counted as running and held
        in flight in one locked run of plain statements (``accept``), so an exception
        anywhere before it leaves nothing behind, and anything raised after it (a
        KeyboardInterrupt in this thread, a fault of ours) ends the job "cancelled" or
        "failed" and reaches the caller. post's own hold passes to the first activation
        its delivery schedules, else to the bookkeeping step that finishes the job after
        post returns, so the job cannot finish (or be counted twice) in between.
        """
        ws = worker.state
        box: list[JobContext] = []
        lock = self._lock
        jobs = self._jobs
        counts = self._job_counts

        def accept() -> JobContext:
            job = JobContext(
                job_id=job_id or _new_id(), worker_id=ws.worker_id, flow_id=flow.flow_id,
                metadata=dict(metadata) if metadata else {},
            )
            job._in_post = True
            job._finisher = self._finish
            job._timeout = flow.execution_timeout
            job._posted_ns = time.monotonic_ns()
            key = job.job_id
            box.append(job)  # first: post's handler must see any job that may be registered
            with lock:
                if key in jobs:
                    raise ValueError(f"job_id {key!r} is already in use")
                # One run of plain statements: registered <=> counted <=> held.
                job.status = "running"
                job._pending = 1
                job._counted = True
                job._post_hold = True
                counts["running"] += 1
                self._posted += 1
                worker.inflight += 1
                self._inflight += 1
                jobs[key] = job
            tr = self._tracer
            if tr is not None:
                tr.record("job.posted", job.job_id, rid, slot_name, None, None, ws.worker_id)
            hooks = _hooks.active
            if hooks is not None:
                _hooks.call(hooks, "on_job_start", job, ws)
            if _output.routed is not None:
                _output.routed.note_origin(job)
            return job

        try:
            worker.deliver(rid, slot_name, data, None, None, on_accept=accept)
            job = box[0]
            self._monitor.add_deadline(job._timeout, job)
            self._settle_post(worker, job)
        except Exception as exc:
            if box and box[0]._counted:  # a fault after registering: it fails, caller learns
                _abort_post(self, worker, box[0], exc)
            raise  # else nothing was created (a full slot, a bad job_id)
        except BaseException:
            # KeyboardInterrupt / SystemExit: cancel the job in one locked run of plain
            # statements, entered without a call, so a second interrupt (a Ctrl-C storm)
            # cannot land between "running" and "cancelled" or leave the hold behind.
            if box:
                job = box[0]
                with lock:
                    if job.status == "running":
                        job.status = "cancelled"
                        job.error = _POST_INTERRUPTED
                        counts["running"] -= 1
                        counts["cancelled"] += 1
                        job._tally_pending = True  # _after_abort finishes the rest
                    job._in_post = False
                    if job._post_hold:
                        job._post_hold = False
                        job._pending -= 1
                        worker.inflight -= 1
                        self._inflight -= 1
                _after_abort(self, job)
            raise
        return job

    def _settle_post(self, worker: _Worker, job: JobContext) -> None:
        """Hand post's own hold on: to a bookkeeping step when nothing was scheduled (the
        item parked, or the policy failed) or a failure waits to be applied; else drop it."""
        pool = self._pool
        step = _Callback(worker, job)
        with self._lock:
            # Plain statements ending in one C call (the append): see _Worker._enqueue.
            job._in_post = False
            if job._post_hold:  # nothing took it over: the step below does
                job._post_hold = False
                pool.tasks.append(step)
            elif job._deferred_failure is not None or job._pending == 0:
                # A failure to apply, or every activation already ran while post was
                # still here (their release left the job to us): finish after return.
                worker.inflight += 1
                self._inflight += 1
                job._pending += 1
                pool.tasks.append(step)
            else:
                return
            try:
                pool.wake_locked()
            except BaseException:
                _repair_wake_locked(pool)
                raise

    # -- job completion -------------------------------------------------------------------
    def _auto_complete(self, job: JobContext) -> None:
        """Finish a job whose last hold was released; then drop that hold (in the same
        locked step as the transition, so a waiter never sees idle before it)."""
        worker = self._workers.get(job.worker_id)
        failure = job._deferred_failure  # found during post; its activations were skipped
        try:
            finished = self._finish(job, "failed" if failure is not None else "completed",
                                    failure, holder=worker)
        except BaseException:
            finished = False
            raise
        finally:
            if not finished and worker is not None:
                with self._lock:
                    worker.release_final_locked()

    def _finish(self, job: JobContext, status: str, error: str | None,
                holder: _Worker | None = None) -> bool:
        """The first terminal transition of a job: status, counters, trace, waiters.

        The status and the runtime's counters change in one locked run of plain
        statements, so no interrupt can leave a job terminal but counted as running.
        """
        if job.status in TERMINAL_JOB_STATUSES:
            return False
        now = datetime.now()
        worker = self._workers.get(job.worker_id)
        with self._lock, job._lock:
            if job.status in TERMINAL_JOB_STATUSES:
                return False
            job.status = status
            job.error = error
            job.completed_at = now
            done = job._done
            callbacks = job._callbacks
            job._callbacks = None
            counts = self._job_counts
            if job._counted:
                counts["running"] -= 1
            else:  # finished before its first hold: count it as posted now
                job._counted = True
                self._posted += 1
            counts[status] += 1
            self._finished_order.append(job.job_id)
            while len(self._finished_order) > MAX_FINISHED_JOBS:
                old = self._finished_order.popleft()
                self._jobs.pop(old, None)
            if holder is not None:  # the auto-complete step's hold (release_locked)
                holder.release_final_locked()
            if counts["running"] == 0 and self._waiters:
                self._wake_waiters_locked()
        release_gate(done)
        if callbacks:
            for cb in callbacks:
                call_done_callback(cb, job)
        if worker is not None:
            ws = worker.state
            with ws._lock:
                ws.jobs_processed += 1
                if status != "completed":
                    ws.jobs_failed += 1
        tr = self._tracer
        if tr is not None:
            latency = (time.monotonic_ns() - job._posted_ns) / 1e9
            tr.record(f"job.{status}", job.job_id, None, None, latency, error, job.worker_id)
        hooks = _hooks.active
        if hooks is not None and worker is not None:
            exc = None
            if error is not None:
                exc = job.__dict__.get("_exception") or RuntimeError(error)
            _hooks.call(hooks, "on_job_end", job, worker.state, status, exc)
        return True

    def complete_job(self, job_id: str, status: str = "completed", error: str | None = None) -> bool:
        """Finish a job explicitly; False if unknown or already finished."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        return job.complete(status, error)

    def get_job(self, job_id: str) -> JobContext | None:
        return self._jobs.get(job_id)

    def list_jobs(self, worker_id: str | None = None, status: str | None = None,
                  flow_name: str | None = None) -> list[JobContext]:
        """Jobs in creation order (the 10,000 most recent finished ones, all running ones)."""
        with self._lock:
            jobs = list(self._jobs.values())
        if worker_id is not None:
            jobs = [j for j in jobs if j.worker_id == worker_id]
        if status is not None:
            jobs = [j for j in jobs if j.status == getattr(status, "value", status)]
        if flow_name is not None:
            jobs = [j for j in jobs if j.flow_id == flow_name]
        return jobs

    # -- waiting --------------------------------------------------------------------------
    def _wake_waiters_locked(self) -> None:
        waiters = self._waiters
        self._waiters = []
        for gate in waiters:
            gate.release()

    def _wait(self, done: Callable[[], bool], timeout: float | None,
              name: str = "timeout") -> bool:
        """Block until ``done()`` (read under the pool lock) or ``timeout`` seconds.

        The waiter never holds the pool lock while it sleeps, so a Ctrl-C cannot leave
        that lock in a wrong state. The first KeyboardInterrupt cancels the queued jobs
        (``_on_interrupt``) and then propagates: an interrupted wait never drains.
        """
        timeout = check_number(name, timeout, allow_none=True, allow_inf=True,
                               unit=" seconds")
        deadline = None if timeout is None or timeout == math.inf \
            else time.monotonic() + timeout
        lock = self._lock
        try:
            while True:
                gate = _allocate_lock()
                gate.acquire()
                with lock:
                    if done():
                        return True
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._waiters.append(gate)
                # Bounded slices: a wake-up lost to an interrupt costs at most one slice.
                if not gate.acquire(True, WAIT_SLICE_S if remaining is None
                                    else min(remaining, WAIT_SLICE_S)):
                    with lock:
                        if gate in self._waiters:
                            self._waiters.remove(gate)
        except KeyboardInterrupt:
            self._on_interrupt()
            raise

    def wait_until_all_workers_idle(self, timeout: float | None = 300.0) -> bool:
        """True once nothing of this runtime is queued, running, retrying or re-checking."""
        if not self._wait(lambda: self._inflight == 0, timeout):
            return False
        for worker in list(self._workers.values()):
            if worker.inflight == 0 and worker.state.status == ExecutionStatus.RUNNING:
                worker.state.status = ExecutionStatus.IDLE
        return True

    def wait_until_all_jobs_finished(self, timeout: float | None = None) -> bool:
        """True once every job of this runtime is terminal (``None`` = no limit).

        A Ctrl-C during the wait cancels the queued jobs (running logic finishes) and
        propagates (docs/interrupts.md). ``timeout`` must be a number or None.
        """
        return self._wait(lambda: self._job_counts["running"] == 0, timeout)

    def _on_interrupt(self) -> int:
        """A Ctrl-C (or kernel interrupt) stopped a wait: cancel the queued jobs now.

        Running logic is left to finish (leaving ``with Runtime(...)`` waits for it up to
        the shutdown timeout); every job with nothing running becomes "cancelled". Says
        how many on the ``routilux`` logger (a warning, so it shows without setup).
        Returns that number.
        """
        self._interrupted = True
        cancelled, running = self._cancel_queued("interrupted (KeyboardInterrupt)")
        if cancelled:
            logger.warning(
                "routilux: interrupted: cancelled %d queued job(s); %d job(s) with running "
                "logic are left to finish", cancelled, running)
        return cancelled

    def _cancel_queued(self, why: str) -> tuple[int, int]:
        """Cancel every unfinished job of this runtime that has no logic running now.

        Returns (jobs cancelled, jobs left running). Activations still queued for the
        jobs left running stay queued (they are those jobs' next steps).
        """
        pool = self._pool
        with self._lock:
            running_jobs = {id(t.job) for t in pool.running.values()
                            if getattr(t, "job", None) is not None
                            and getattr(t, "worker", None) is not None
                            and t.worker.runtime is self}
            mine = [t for t in pool.tasks if t.worker.runtime is self
                    and (t.job is None or id(t.job) not in running_jobs)]
            if mine:
                keep = [t for t in pool.tasks if t.worker.runtime is not self
                        or (t.job is not None and id(t.job) in running_jobs)]
                pool.tasks.clear()
                pool.tasks.extend(keep)
            jobs = list(self._jobs.values())
        reason = f"cancelled: {why}"
        cancelled = 0
        for task in mine:
            if task.job is not None and self._finish(task.job, "cancelled", reason):
                cancelled += 1
            task.worker.release(task.job)
        for job in jobs:
            if id(job) not in running_jobs and self._finish(job, "cancelled", reason):
                cancelled += 1
        left = sum(1 for job in jobs if id(job) in running_jobs and not job.is_terminal)
        return cancelled, left

    async def wait_async(self, timeout: float | None = None) -> bool:
        """``await runtime.wait_async()``: all jobs finished, without blocking the loop."""
        return await asyncio.to_thread(self.wait_until_all_jobs_finished, timeout)

    # -- pool -----------------------------------------------------------------------------
    def resize(self, n: int | str) -> None:
        """Change the pool size while jobs run (a private pool only).

        ``resize(n)`` with an int turns automatic sizing off: the size stays ``n`` until
        you change it (or call ``resize("auto")``, which turns it back on from the
        current size, bounded by ``max_pool_size``).

        Raises:
            RuntimeError: on the shared pool, or after shutdown.
            ValueError / TypeError: ``n`` is not an int >= 1 or ``'auto'``.
        """
        if self.thread_pool is None:
            raise RuntimeError("a runtime on the shared pool (thread_pool_size=0) cannot resize")
        self._check_open()
        if isinstance(n, str):
            if n != _autosize.AUTO:
                raise TypeError(f"thread_pool_size must be an int, got {n!r}; the only "
                                "string resize() accepts is 'auto' (automatic sizing)")
            if self._autosizer is None:
                self._start_autosize(f"resize('auto'): start at {self._pool.size}")
            return
        try:
            check_pool_size(n, allow_zero=False)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc}; or the string 'auto' for automatic sizing") from None
        sizer, self._autosizer = self._autosizer, None
        if sizer is not None:  # the user's size wins: stop deciding before applying it
            sizer.stop()
            sizer.record(self, "off", self._pool.size, n,
                         f"automatic sizing off: resize({n}) by the user")
        old = self._pool.resize(n)
        self.thread_pool_size = n
        tr = self._tracer
        if tr is not None:
            tr.record("pool.resize", None, None, None, n, old, None)

    def statistics(self) -> RuntimeStatistics:
        """A frozen snapshot: pool, queue, jobs by status, counters."""
        with self._lock:
            ps: PoolStatistics = self._pool.statistics_locked()
            counts = dict(self._job_counts)
            posted = self._posted
            inflight = self._inflight
            workers = len(self._workers)
        tr = self._tracer
        sizer = self._autosizer
        return RuntimeStatistics(
            pool_size=ps.size, threads=ps.threads, busy=ps.busy, idle=ps.idle,
            queued=ps.queued, max_queue_size=self.max_queue_size, jobs=counts, posted=posted,
            completed=counts["completed"], failed=counts["failed"],
            cancelled=counts["cancelled"], running=counts["running"], in_flight=inflight,
            workers=workers, tasks_completed=ps.completed,
            trace_dropped=tr.dropped if tr is not None else 0,
            uptime_s=time.monotonic() - self._started, shut_down=self._shut_down,
            shared_pool=self.thread_pool is None,
            pool_auto=sizer is not None,
            pool_auto_reason=sizer.last.reason if sizer is not None and sizer.last else None,
        )

    def running_tasks(self) -> list[dict[str, Any]]:
        """What each busy pool thread runs now: thread, routine, job, seconds running."""
        now = time.monotonic_ns()
        names = self._pool.thread_names()
        with self._lock:
            items = list(self._pool.running.items())
        out = []
        for ident, task in items:
            if getattr(task, "worker", None) is None or task.worker.runtime is not self:
                continue
            if task.rid is None:
                continue
            out.append({
                "thread": ident, "thread_name": names.get(ident, str(ident)),
                "routine": task.rid, "job_id": task.job.job_id if task.job else None,
                "running_s": (now - task.started_ns) / 1e9 if task.started_ns else 0.0,
            })
        return out

    def _start_autosize(self, reason: str) -> None:
        sizer = _autosize.AutoSizer(self, self.max_pool_size, self._pool.size)
        sizer.record(self, "on", self._pool.size, self._pool.size, reason)
        self._autosizer = sizer
        sizer.start()

    # -- monitor hooks --------------------------------------------------------------------
    def _call_later(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        self._monitor.call_later(delay, fn, arg)

    def _sample(self) -> None:
        tr = self._tracer
        if tr is None:
            return
        with self._lock:
            ps = self._pool.statistics_locked()
            running = list(self._pool.running.items())
        tr.record("queue.depth", None, None, None, ps.queued,
                  {"busy": ps.busy, "size": ps.size}, None)
        now = time.monotonic_ns()
        frames = None
        names = self._pool.thread_names()
        for ident, task in running:
            if task.sampled or not task.started_ns or task.worker.runtime is not self:
                continue
            running_s = (now - task.started_ns) / 1e9
            if running_s < LONG_TASK_SAMPLE_S:
                continue
            task.sampled = True
            if frames is None:
                frames = sys._current_frames()
            frame = frames.get(ident)
            if frame is None:
                continue
            stack = [f"{fs.filename}:{fs.lineno} in {fs.name}"
                     for fs in traceback.extract_stack(frame, limit=12)]
            job = task.job
            tr.record_as(ident, "task.sample", job.job_id if job else None, task.rid,
                         task.slot, running_s, stack, task.worker.state.worker_id,
                         names.get(ident))

    def _state_write(self, routine: Routine, act: Activation, name: str) -> None:
        key = (act.routine_id or routine._id, name)
        self._state_writes[key] = self._state_writes.get(key, 0) + 1
        tr = self._tracer
        if tr is not None:
            job = act.job
            tr.record("state.write", job.job_id if job else None, key[0], name, None, None,
                      act.worker_state.worker_id if act.worker_state else None)

    def state_writes(self) -> dict[tuple[str, str], int]:
        """(routine id, attribute) -> times logic assigned it (shared mutable state)."""
        return dict(self._state_writes)

    # -- shutdown -------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop accepting work; with ``wait``, drain in-flight work up to ``timeout`` s.

        Afterwards still-running jobs are ``cancelled``, workers COMPLETED (CANCELLED if
        work was abandoned), and a private pool is closed. Idempotent.

        ``timeout`` is the whole budget: draining, then joining the pool's threads against
        the same deadline (threads stuck in logic are daemons and are left behind).
        ``wait=False`` joins nothing. After a Ctrl-C (during a wait, during this drain, or
        the one ``with Runtime(...)`` is left with), the queued jobs are cancelled at
        once and only running logic gets the budget; a KeyboardInterrupt raised during
        the drain is re-raised once the runtime is shut down.
        """
        timeout = check_number("timeout", timeout, minimum=0.0, allow_inf=True,
                               unit=" seconds")
        if self._shut_down:
            return
        self._shut_down = True
        start = time.monotonic()
        deadline = math.inf if timeout == math.inf else start + timeout

        def left() -> float | None:
            return None if deadline == math.inf else max(deadline - time.monotonic(), 0.0)

        drained = False
        interrupt: BaseException | None = None
        if wait:
            if self._interrupted:
                self._on_interrupt()  # a Ctrl-C came first: never drain the queue
            try:
                drained = self.wait_until_all_workers_idle(left())
            except KeyboardInterrupt as exc:  # _wait cancelled the queued jobs
                interrupt = exc
                # Running logic gets what is left of the budget; a second Ctrl-C ends that.
                try:
                    drained = self._wait(lambda: self._inflight == 0, left())
                except KeyboardInterrupt:
                    pass
        abandoned: list[Any] = []
        if self.thread_pool is not None:
            with self._lock:
                abandoned = list(self._pool.tasks)
                self._pool.tasks.clear()
        else:
            with self._lock:
                mine = [t for t in self._pool.tasks if t.worker.runtime is self]
                for t in mine:
                    self._pool.tasks.remove(t)
                abandoned = mine
        for task in abandoned:
            task.worker.abandoned = True
            if isinstance(task, _Task) and task.job is not None:
                # Cancel before releasing: the release would auto-complete the job as if
                # its logic had run.
                self._finish(task.job, "cancelled", "runtime shut down before the job finished")
            task.worker.release(task.job)
        for job in self.list_jobs():
            if job.status not in TERMINAL_JOB_STATUSES:
                self._finish(job, "cancelled", "runtime shut down before the job finished")
        for worker in list(self._workers.values()):
            worker.accepting = False
            status = ExecutionStatus.CANCELLED if (worker.abandoned or not drained and worker.inflight) \
                else ExecutionStatus.COMPLETED
            worker.state._set_status(status)
            hooks = _hooks.active
            if hooks is not None:
                _hooks.call(hooks, "on_worker_stop", worker.flow, worker.state, status.value)
        with self._lock:
            self._wake_waiters_locked()
            self._pool.wake_room_locked(everyone=True)
        _close_executors(self._owned_executors, wait=drained)
        budget = left() if wait else 0.0
        self._monitor.stop(budget)
        if self._autosizer is not None:
            rest = left() if wait else 0.0
            self._autosizer.stop(2.0 if rest is None else min(rest, 2.0))
        if self.thread_pool is not None:
            self._pool.shutdown(timeout=left() if wait else 0.0)
        if interrupt is not None:
            raise interrupt

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self._interrupted = True  # leave at once: cancel the queue, let running finish
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        s = self.statistics()
        pool = f"{s.pool_size} shared (thread_pool_size=0)" if s.shared_pool else s.pool_size
        return (f"<Runtime pool={pool} busy={s.busy} queued={s.queued} "
                f"jobs={s.running} running/{s.posted} posted{' shut down' if s.shut_down else ''}>")


_runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()


def _new_id() -> str:
    """A uuid4-format job id from the ``random`` generator.

    ``uuid.uuid4()`` reads ``os.urandom``, a system call that releases the GIL; with pool
    threads runnable, the posting thread then waits up to a switch interval (5 ms) to get
    it back, which made id generation the most expensive step of ``post`` (measured:
    ~150 µs per id under load). Job ids need uniqueness, not secrecy.
    """
    n = (_getrandbits(128) & _UUID_CLEAR) | _UUID_SET
    h = "%032x" % n
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# RFC 4122 version 4 and variant bits, as uuid.UUID(version=4) sets them.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


# A private generator, seeded once from os.urandom: user code calling random.seed()
# (notebooks, Hypothesis) must not make job ids repeat, or post fails "already in use".
_id_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_id_random.seed)
_getrandbits = _id_random.getrandbits


def latest_runtime() -> Runtime | None:
    """The most recently created runtime that is still alive and not shut down."""
    alive = [rt for rt in list(_runtimes) if not rt.is_shut_down]
    return max(alive, key=lambda rt: rt._started) if alive else None


def _close_executors(executors: dict[str, Any], wait: bool = False) -> None:
    """Shut down the executors a runtime made (event loop thread, process pool)."""
    for ex in list(executors.values()):
        try:
            ex.shutdown(wait=wait)
        except Exception:
            logger.exception("routilux: shutting down %r failed", ex)


def _close_orphan(pool: WorkerPool, monitor: _Monitor) -> None:
    """A private runtime was garbage collected without shutdown: stop its threads."""
    monitor._stop = True
    monitor._notify()
    with pool.lock:
        pool._closed = True
        pool._wake_all_locked()


_POST_INTERRUPTED = "cancelled: interrupted (KeyboardInterrupt) while posting"


def _after_abort(rt: Runtime, job: JobContext) -> None:
    """What follows an interrupted post's cancellation outside the critical step: the
    finish time, retention, waiters, callbacks, worker counters, trace. Best effort: a
    further interrupt may cut it short, which costs at most a callback or a trace event
    (``job.wait`` and the runtime's waits re-check the status in slices)."""
    if not job.__dict__.pop("_tally_pending", False):
        return
    job.completed_at = datetime.now()
    with rt._lock:
        rt._finished_order.append(job.job_id)
        if rt._waiters:
            rt._wake_waiters_locked()
    release_gate(job._done)
    callbacks, job._callbacks = job._callbacks, None
    for cb in callbacks or ():
        try:
            cb(job)
        except Exception:
            logger.exception("routilux: a done-callback of job %s raised", job.job_id)
    worker = rt._workers.get(job.worker_id)
    if worker is not None:
        with worker.state._lock:
            worker.state.jobs_processed += 1
            worker.state.jobs_failed += 1
    tr = rt._tracer
    if tr is not None:
        tr.record("job.cancelled", job.job_id, None, None, None, job.error, job.worker_id)


def _abort_post(rt: Runtime, worker: _Worker, job: JobContext, exc: BaseException) -> None:
    """post raised after registering ``job``: finish the job and drop post's own hold.

    A KeyboardInterrupt (or SystemExit) cancels the job; any other exception fails it.
    Every step is idempotent and the whole is retried through further interrupts (a
    Ctrl-C storm), so the job always ends terminal and nothing stays in flight; the
    caller re-raises the first exception.
    """
    if isinstance(exc, Exception):
        status, error = "failed", f"{error_text(exc)} (raised while posting)"
    else:
        status, error = "cancelled", f"cancelled: {type(exc).__name__} while posting"
    job._in_post = False
    while True:
        try:
            rt._finish(job, status, error)
            with rt._lock:
                if job._post_hold:  # one run of plain statements (see _Worker._enqueue)
                    job._post_hold = False
                    job._pending -= 1
                    worker.inflight -= 1
                    rt._inflight -= 1
                    if rt._inflight == 0 and rt._waiters:
                        rt._wake_waiters_locked()
            release_gate(job._done)  # an interrupted _finish may not have got this far
            return
        except BaseException:  # noqa: BLE001, S112 - the first exception is re-raised by post
            continue


def _repair_wake_locked(pool: WorkerPool) -> None:
    """After an interrupt inside a wake-up: make sure queued work has a thread coming.

    Retries through further interrupts (a Ctrl-C storm); the caller re-raises the first.
    """
    while True:
        try:
            if pool.tasks and not pool._waking and not pool._closed:
                pool.wake_locked()
            return
        except BaseException:  # noqa: BLE001, S112 - the caller re-raises the first
            continue

