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
import os
import random
import sys
import threading
import time
import traceback
from _thread import get_ident as _get_ident
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from . import _autosize, _context, _offload
from ._calling import make_caller
from ._context import Activation, _activation
from ._error_handler import ErrorHandler, ErrorStrategy
from ._errors import QueueFullError, SlotQueueFullError, WorkerNotRunningError
from ._flow import Flow
from ._job import JobContext
from ._pool import PoolStatistics, WorkerPool, check_pool_size
from ._registry import FlowRegistry, WorkerRegistry
from ._routine import Routine
from ._slot import Slot, SlotDataPoint, SlotQueue, SlotView
from ._status import TERMINAL_JOB_STATUSES, ExecutionStatus
from ._worker_state import WorkerState
from .trace import Tracer

logger = logging.getLogger("routilux")

MAX_FINISHED_JOBS = 10_000  # finished jobs kept per runtime for get_job / list_jobs
SHARED_POOL_SIZE = 100  # threads of the process-wide pool used by Runtime(thread_pool_size=0)
SAMPLE_INTERVAL_S = 0.1  # seconds between queue-depth samples while tracing
LONG_TASK_SAMPLE_S = 0.1  # seconds a task runs before its stack is sampled once
DEADLINE_SWEEP_S = 0.5  # seconds between sweeps of finished jobs off the deadline queues
_DEFAULT_HANDLER = ErrorHandler(ErrorStrategy.STOP)
_FAILED_OR_CANCELLED = frozenset({"failed", "cancelled"})
_IMMEDIATE_MSG = {"reason": "immediate"}


def _worker_of(worker_state: Any) -> _Worker | None:
    """The live worker behind a WorkerState, else None."""
    ref = getattr(worker_state, "_worker_ref", None)
    return ref() if ref is not None else None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class RuntimeStatistics:
    """A snapshot of a runtime, safe to read from any thread.

    ``pool_size`` is the size last set (the pool converges to it); ``threads`` the live
    pool threads; ``busy``/``idle`` threads; ``queued`` activations waiting in the run
    queue; ``jobs`` status -> count over every job posted; ``in_flight`` outstanding
    activations, retries and re-checks; ``trace_dropped`` events the tracer discarded.
    ``pool_auto``: the size is automatic (``thread_pool_size="auto"``); then
    ``pool_auto_reason`` is the controller's latest decision, with its numbers.
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
                 "immediate", "logic", "_caller", "single", "executor")

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
        # runs it (an event loop for async def logic, processes, Dask): see _offload.py.
        self.executor = worker.runtime._executor_for(routine, self.logic)

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

    def run(self) -> None:
        job = self.job
        if job is not None and job.status in _FAILED_OR_CANCELLED:
            return  # no new activation starts for a failed or cancelled job
        plan = self.plan
        if plan.executor is not None:
            return _offload.dispatch(self)  # runs elsewhere; the job stays held until it returns
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
        try:
            (plan._caller or plan.caller())(self.data, self.msg, ws)
        except BaseException as exc:  # user code: handled by the error strategy
            _activation.reset(token)
            err = _error_text(exc)
            if tr is not None:
                job_id = job.job_id if job is not None else None
                dur = (time.monotonic_ns() - start) / 1e9
                tr.record("task.error", job_id, rid, self.slot, dur, err, ws.worker_id)
                tr.record("task.finished", job_id, rid, self.slot, dur, err, ws.worker_id)
            worker.handle_error(self, exc, err, is_policy=False, settle_later=True)
            return
        _activation.reset(token)
        ws._history.append((rid, "logic_executed", self.msg, time.time()))
        if tr is not None:
            tr.record("task.finished", job.job_id if job is not None else None, rid, self.slot,
                      (time.monotonic_ns() - start) / 1e9, None, ws.worker_id)

    def hold_locked(self) -> None:
        self.worker.hold_locked(self.job)

    def done_locked(self) -> Any:
        retrying = self.retrying
        if retrying is False:
            return self.worker.release_locked(self.job)
        if retrying is not True:  # a retry delay (s), decided while this run was on-thread
            worker = self.worker
            worker.runtime._call_later(retrying, worker._resubmit, self)
        return None  # still in flight


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
        self.inflight -= 1
        rt = self.runtime
        rt._inflight -= 1
        if self.inflight == 0 and self.state.status == ExecutionStatus.RUNNING:
            self.state.status = ExecutionStatus.IDLE
        if rt._inflight == 0 and rt._idle_waiters:
            rt._idle_cond.notify_all()
        if job is not None:
            job._pending -= 1
            if job._pending == 0 and job.status == "running":
                return (rt._auto_complete, job)
        return None

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
                self.schedule(_Task(self, plan, slot_name, batch, _IMMEDIATE_MSG, job))
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
        except BaseException as exc:
            _activation.reset(token)
            err = _error_text(exc)
            if tr is not None:
                tr.record("task.error", job.job_id if job else None, rid, slot_name, 0.0,
                          f"policy: {err}", ws.worker_id)
            self.handle_error(None, exc, err, is_policy=True, job=job, rid=rid)
            return False
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
        self.schedule(_Task(self, plan, slot_name, data, msg, job))
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
            self.hold_locked(job)
            waker = pool.submit_locked(task, front)
            depth = len(pool.tasks) + len(pool.next_tasks)
        if waker is not None:
            waker.release()
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
                rt._call_later(delay, self._resubmit, task)
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
            if getattr(job, "_in_post", False):
                job._deferred_failure = err  # applied after post returns (api.md §9)
            else:
                rt._finish(job, "failed", err)

    def _resubmit(self, task: _Task) -> None:
        rt = self.runtime
        task.queued_ns = time.monotonic_ns()
        with rt._lock:
            waker = finished = None
            if rt._pool.closed:
                finished = self.release_locked(task.job)
            else:
                waker = rt._pool.submit_locked(task)
        if waker is not None:
            waker.release()
        if finished is not None:
            finished[0](finished[1])

    def wait_idle(self, timeout: float | None) -> bool:
        rt = self.runtime
        deadline = None if timeout is None else time.monotonic() + timeout
        with rt._lock:
            rt._idle_waiters += 1
            try:
                while self.inflight:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    rt._idle_cond.wait(remaining if remaining is None else min(remaining, 0.05))
                return True
            finally:
                rt._idle_waiters -= 1


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
    def __init__(self, runtime: Runtime) -> None:
        self._rt = weakref.ref(runtime)
        self._cond = threading.Condition(threading.Lock())
        self._timers: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()
        self._deadlines: dict[float, deque[tuple[float, JobContext]]] = {}
        self._stop = False
        self._thread: threading.Thread | None = None
        self.sampling = False

    def _ensure_started(self) -> None:
        if self._thread is None:
            rt = self._rt()
            name = f"RoutiluxMonitor-{id(rt):x}"
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def call_later(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        with self._cond:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn, arg))
            self._ensure_started()
            self._cond.notify()

    def add_deadline(self, timeout: float, job: JobContext) -> None:
        # Hot path (once per post): deque.append is atomic, so no lock unless this is
        # the first deadline of its kind and the monitor may be asleep indefinitely.
        dq = self._deadlines.get(timeout)
        if dq is not None:  # the loop sweeps every DEADLINE_SWEEP_S once a deque exists
            dq.append((time.monotonic() + timeout, job))
            return
        with self._cond:
            dq = self._deadlines.get(timeout)
            if dq is None:
                dq = self._deadlines[timeout] = deque()
            dq.append((time.monotonic() + timeout, job))
            self._ensure_started()
            self._cond.notify()

    def start_sampling(self) -> None:
        with self._cond:
            self.sampling = True
            self._ensure_started()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def _loop(self) -> None:
        next_sample = 0.0
        while True:
            due_timers: list[tuple[Callable[[Any], None], Any]] = []
            expired: list[JobContext] = []
            with self._cond:
                if self._stop:
                    return
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, fn, arg = heapq.heappop(self._timers)
                    due_timers.append((fn, arg))
                wake = self._timers[0][0] if self._timers else now + 3600.0
                if self._deadlines:
                    wake = min(wake, now + DEADLINE_SWEEP_S)
                for dq in self._deadlines.values():
                    while dq and (dq[0][1].status in TERMINAL_JOB_STATUSES or dq[0][0] <= now):
                        due, job = dq.popleft()
                        if job.status not in TERMINAL_JOB_STATUSES:
                            expired.append(job)
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
                if not due_timers and not expired and not sample:
                    self._cond.wait(max(wake - now, 0.0))
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
        size, auto = _autosize.parse_thread_pool_size(thread_pool_size)
        self.max_pool_size = _autosize.check_max_pool_size(max_pool_size)
        if auto:
            size = _autosize.start_size(self.max_pool_size)
        from .executors._base import check_executor_choice

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
        self._idle_cond = threading.Condition(self._lock)
        self._idle_waiters = 0
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
        if isinstance(trace, Tracer):  # a Tracer is falsy while empty: test its type first
            self._tracer = trace
        elif trace:
            self._tracer = Tracer()
        elif trace not in (False, None):
            raise TypeError(f"trace must be a bool or a Tracer, got {trace!r}")
        if self._tracer is not None:
            self._monitor.start_sampling()
            _context.set_default_tracer_runtime(self)
        _runtimes.add(self)
        if self.thread_pool is not None:
            weakref.finalize(self, _close_orphan, self._pool, self._monitor)
        self._autosizer: _autosize.AutoSizer | None = None
        if auto:
            self._start_autosize(f"thread_pool_size='auto': start at {size} = "
                                 f"min(max_pool_size {self.max_pool_size}, cpu_count + 4)")

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
        return worker

    def exec(self, flow_name: Any, worker_state: WorkerState | None = None,
             worker_id: str | None = None) -> WorkerState:
        """Start a new worker for the flow and make it the flow's default worker here.

        Raises:
            RuntimeError: the runtime is shut down.
            ValueError: unknown flow, or ``worker_state`` belongs to another flow.
        """
        self._check_open()
        flow = self._resolve_flow(flow_name)
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
        return state

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
        here (and no job is registered). With ``max_queue_size`` set and the run queue
        full, waits for room (``block``, up to ``timeout`` s) or raises ``QueueFullError``.
        """
        self._check_open()
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
            deadline = None if timeout is None else time.monotonic() + timeout
            pool.room_waiters += 1
            try:
                while len(pool.tasks) >= limit:
                    if self._shut_down:
                        raise RuntimeError("Runtime is shut down")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise QueueFullError(
                            f"run queue stayed full ({limit} activations waiting) for "
                            f"{timeout:g} s; no job was registered"
                        )
                    pool.room.wait(remaining)
                if self._shut_down:  # woken by shutdown, which also emptied the queue
                    raise RuntimeError("Runtime is shut down")
            finally:
                pool.room_waiters -= 1

    def _post(self, worker: _Worker, flow: Flow, rid: str, slot_name: str, data: dict,
              job_id: str | None, metadata: Any) -> JobContext:
        ws = worker.state
        box: list[JobContext] = []

        def accept() -> JobContext:
            job = JobContext(
                job_id=job_id or _new_id(), worker_id=ws.worker_id, flow_id=flow.flow_id,
                metadata=dict(metadata) if metadata else {},
            )
            job.status = "running"
            job._pending = 0
            job._counted = False  # counted as posted/running at its first hold
            job._in_post = True
            job._deferred_failure = None
            job._finisher = self._finish
            job._timeout = flow.execution_timeout
            job._posted_ns = time.monotonic_ns()
            if self._jobs.setdefault(job.job_id, job) is not job:
                raise ValueError(f"job_id {job.job_id!r} is already in use")
            tr = self._tracer
            if tr is not None:
                tr.record("job.posted", job.job_id, rid, slot_name, None, None, ws.worker_id)
            box.append(job)
            return job

        try:
            scheduled = worker.deliver(rid, slot_name, data, None, None, on_accept=accept)
        except SlotQueueFullError:
            raise
        except BaseException:
            if not box:
                raise
            scheduled = False
        job = box[0]
        job._in_post = False
        self._monitor.add_deadline(job._timeout, job)
        if not scheduled:
            # Nothing was scheduled (item parked, or the policy failed): the job finishes
            # after post returns, as the contract says, via one bookkeeping step on the pool.
            with self._lock:
                worker.hold_locked(job)
                waker = self._pool.submit_locked(_Callback(worker, job))
            if waker is not None:
                waker.release()
        return job

    # -- job completion -------------------------------------------------------------------
    def _auto_complete(self, job: JobContext) -> None:
        self._finish(job, "completed", None)

    def _finish(self, job: JobContext, status: str, error: str | None) -> bool:
        """The first terminal transition of a job: status, counters, trace, waiters."""
        if not job._mark_terminal(status, error):
            return False
        worker = self._workers.get(job.worker_id)
        with self._lock:
            counts = self._job_counts
            counts["running"] -= 1
            counts[status] += 1
            self._finished_order.append(job.job_id)
            while len(self._finished_order) > MAX_FINISHED_JOBS:
                old = self._finished_order.popleft()
                self._jobs.pop(old, None)
            if counts["running"] == 0 and self._idle_waiters:
                self._idle_cond.notify_all()
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
            jobs = [j for j in jobs if j.status == str(status)]
        if flow_name is not None:
            jobs = [j for j in jobs if j.flow_id == flow_name]
        return jobs

    # -- waiting --------------------------------------------------------------------------
    def _wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._idle_waiters += 1
            try:
                while not done():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    # Bounded slices: a KeyboardInterrupt in a notebook lands promptly.
                    self._idle_cond.wait(0.1 if remaining is None else min(remaining, 0.1))
                return True
            finally:
                self._idle_waiters -= 1

    def wait_until_all_workers_idle(self, timeout: float | None = 300.0) -> bool:
        """True once nothing of this runtime is queued, running, retrying or re-checking."""
        if not self._wait(lambda: self._inflight == 0, timeout):
            return False
        for worker in list(self._workers.values()):
            if worker.inflight == 0 and worker.state.status == ExecutionStatus.RUNNING:
                worker.state.status = ExecutionStatus.IDLE
        return True

    def wait_until_all_jobs_finished(self, timeout: float | None = None) -> bool:
        """True once every job of this runtime is terminal (``None`` = no limit)."""
        return self._wait(lambda: self._job_counts["running"] == 0, timeout)

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
            sizer.record(self, "off", n, f"automatic sizing off: resize({n}) by the user")
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
        sizer.record(self, "on", self._pool.size, reason)
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
        """
        if self._shut_down:
            return
        self._shut_down = True
        drained = self.wait_until_all_workers_idle(timeout) if wait else False
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
        with self._lock:
            self._idle_cond.notify_all()
            self._pool.room.notify_all()
        _close_executors(self._owned_executors, wait=drained)
        self._monitor.stop()
        if self._autosizer is not None:
            self._autosizer.stop()
        if self.thread_pool is not None:
            self._pool.shutdown(timeout=max(1.0, min(timeout, 5.0)))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        s = self.statistics()
        return (f"<Runtime pool={s.pool_size} busy={s.busy} queued={s.queued} "
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
    try:
        with monitor._cond:
            monitor._cond.notify()
    except Exception:
        pass
    with pool.lock:
        pool._closed = True
        parked = pool._wake_all_locked()
    for park in parked:
        park.release()

