"""_Worker: one live instance of a flow, which routes each item to the activations it fires.

Routing runs in the delivering thread (the poster, or the pool thread whose logic emits):
enqueue + policy + consume happen under a per-(worker, routine) lock, and a firing policy
puts one ``_Task`` on the run queue; emit never waits for downstream logic. A worker owns
no thread. Its in-flight bookkeeping is the runtime's ``JobTable``'s (``_jobs.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable

from .._errors import SlotQueueFullError, error_text
from .._model import _hooks
from .._model._context import Activation, _activation
from .._model._error_handler import ErrorHandler, ErrorStrategy
from .._model._flow import Flow
from .._model._job import JobContext
from .._model._routine import Routine
from .._model._slot import Slot, SlotDataPoint, SlotQueue
from .._model._status import JobStatus
from .._model._worker_state import WorkerState
from ._tasks import _Plan, _Task

# The runtime (``_runtime.Runtime``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
Runtime = Any

logger = logging.getLogger("routilux")

_DEFAULT_HANDLER = ErrorHandler(ErrorStrategy.STOP)
_FAILED_OR_CANCELLED = frozenset({JobStatus.FAILED.value, JobStatus.CANCELLED.value})
_IMMEDIATE_MSG = {"reason": "immediate"}
_NO_DATA: Mapping[str, Any] = {}  # a policy's empty data slice (read, never written)
# Hot-path construction of the NamedTuples (Activation, SlotDataPoint) with every field
# given: tuple.__new__ directly, without the generated Python-level __new__ frame.
_new_tuple = tuple.__new__
# Hot-path bindings: one global load instead of a global and an attribute load each.
_monotonic_ns = time.monotonic_ns
_time = time.time
_set_activation = _activation.set
_reset_activation = _activation.reset
_error_text = error_text  # never raises, whatever the exception's __str__ does


class _Worker:
    """A WorkerState plus per-worker slot queues; owns no thread."""

    def __init__(self, runtime: Runtime, flow: Flow, state: WorkerState) -> None:
        self.runtime = runtime
        self.table = runtime._table  # its in-flight bookkeeping (tasks call it directly)
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
        state._bind_worker(self)

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

    # -- bookkeeping (pool lock held): the job table's, see _jobs.py ---------------------
    def hold_locked(self, job: JobContext | None) -> None:
        self.table.hold_locked(self, job)

    def release_locked(self, job: JobContext | None) -> Any:
        """Drop one hold; a returned (step, job) finishes the job (see JobTable)."""
        return self.table.release_locked(self, job)

    def release_final_locked(self) -> None:
        self.table.release_final_locked(self)

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
                    raise _full_at_post(rid, slot_name, q)
                job = on_accept()
            hooks = _hooks.active
            if hooks is not None and not _hooks.allow_enqueue(
                    hooks, plan.routine._slots[slot_name], rid, job, data, self.flow.flow_id):
                return False
            point = _new_tuple(SlotDataPoint, (data, emitted_from, _time(), job))
            if plan.immediate and plan.logic is not None:
                try:
                    items = q.put_take(point)
                except SlotQueueFullError:
                    self._trace_full(tr, job, rid, slot_name, q)
                    raise
                # No slot.enqueue here: the item is consumed in the same step, and the
                # task.queued event that follows says the same (see docs/trace_events.md).
                batch = {slot_name: items} if plan.single else _batch(plan, slot_name, items)
                self.schedule(plan.task_class(self, plan, slot_name, batch, _IMMEDIATE_MSG, job))
                return True
            try:
                depth = q.put(point)
            except SlotQueueFullError:
                self._trace_full(tr, job, rid, slot_name, q)
                raise
            return self._evaluate(plan, slot_name, job, depth)

    def deliver_posted(self, plan: _Plan, slot_name: str, data: Any, job: JobContext) -> None:
        """post's fast path: one new job's item into a routine with the built-in immediate
        policy, while nothing watches (no tracer, hooks or routed output; the caller
        checks). ``job`` is created but not registered: it is registered and its
        activation queued in one locked step (``JobTable.register_and_queue``), so a
        full slot registers nothing, and an interrupt before that step leaves only an
        unregistered job object behind (its item consumed, never run).
        """
        q = plan.queues[slot_name]
        with plan.lock:
            try:
                items = q.put_take(_new_tuple(SlotDataPoint, (data, None, _time(), job)))
            except SlotQueueFullError:  # put_take's own check: nothing was added
                full = True
            else:
                full = False
            if full:
                raise _full_at_post(plan.rid, slot_name, q)
            batch = {slot_name: items} if plan.single else _batch(plan, slot_name, items)
            task = plan.task_class(self, plan, slot_name, batch, _IMMEDIATE_MSG, job)
            task.queued_ns = _monotonic_ns()
            self.table.register_and_queue(self, job, task)

    def _trace_full(self, tr: Any, job: Any, rid: str, slot_name: str, q: SlotQueue) -> None:
        if tr is not None:
            tr.record("slot.full", job.job_id if job else None, rid, slot_name,
                      q.max_length, None, self.state.worker_id)

    def _evaluate(self, plan: _Plan, slot_name: str, job: JobContext | None,
                  depth: int | None = None) -> bool:
        """Run the policy once for an arrival (the plan's lock held).

        ``depth``: the slot's unconsumed items after the arrival's enqueue (None for a
        re-check, which has no arrival). Traced, the arrival is one event: the policy's
        ``barrier.wait`` / ``policy.hold`` when it holds, else ``slot.enqueue`` before what
        the firing records (docs/trace_events.md).
        """
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
            # Which job each slot's oldest item belongs to, for barrier.release (a
            # match_job barrier releases one job's items: the arrival's, set below).
            barrier_jobs = []
            if not getattr(policy, "_policy_config", {}).get("match_job"):
                for view in views.values():
                    first = view._queue.peek_first_point_new()
                    barrier_jobs.append(first.job.job_id if first and first.job else None)
        token = _set_activation(_new_tuple(Activation, (job, ws, rid, routine, rt, None)))
        try:
            result = policy(views, ws)
            fire, data_slice, msg = self._check_policy_result(rid, result)
        except Exception as exc:
            _reset_activation(token)
            err = _error_text(exc)
            if tr is not None:
                if depth is not None:
                    tr.record("slot.enqueue", job.job_id if job else None, rid, slot_name,
                              depth, None, ws.worker_id)
                tr.record("task.error", job.job_id if job else None, rid, slot_name, 0.0,
                          f"policy: {err}", ws.worker_id)
            self.handle_error(None, exc, err, is_policy=True, job=job, rid=rid)
            return False
        except BaseException:
            # KeyboardInterrupt / SystemExit in the delivering thread is not the policy's
            # error to handle: it goes to whoever posted (post cancels its job).
            _reset_activation(token)
            raise
        _reset_activation(token)
        job_id = job.job_id if job is not None else None
        if fire and depth is not None and tr is not None:
            tr.record("slot.enqueue", job_id, rid, slot_name, depth, None, ws.worker_id)
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
            if not barrier_jobs:  # match_job: every slot's released item is this job's
                barrier_jobs = [job_id] * len(views)
            tr.record("barrier.release", job_id, rid, slot_name,
                      len(set(barrier_jobs)), barrier_jobs, ws.worker_id)
        data = {name: list(data_slice.get(name) or ()) for name in plan.queues}
        self.schedule(plan.task_class(self, plan, slot_name, data, msg, job))
        return True

    @staticmethod
    def _check_policy_result(rid: str, result: Any) -> tuple[bool, Mapping[str, Any], Any]:
        if (type(result) is not tuple and not isinstance(result, (tuple, list))) \
                or len(result) != 3:
            raise TypeError(
                f"the activation policy of routine {rid!r} returned {result!r}; a policy must "
                "return (should_activate: bool, data_slice: dict[str, list], policy_message)"
            )
        fire, data_slice, msg = result
        if not fire:
            return False, _NO_DATA, msg
        if data_slice is None:
            data_slice = _NO_DATA
        elif type(data_slice) is not dict and not isinstance(data_slice, Mapping):
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
        task.queued_ns = _monotonic_ns()
        tr = rt._tracer
        # Only for a job already counted: a job posted from inside logic must count as
        # running at once, or another thread's wait_until_all_jobs_finished may pass.
        job = task.job
        if job is None or job._counted:
            pool = rt._pool
            kept, previous = pool.offer_next(task)
            if kept:
                if tr is not None:
                    tr.record("task.queued", job.job_id if job else None, task.rid,
                              task.slot, pool.depth(), None, self.state.worker_id)
                if previous is None:
                    return
                # To the front: it is a running job's next step (a sibling of the task just
                # kept), and behind newer posts a barrier joining the siblings would pile up.
                previous.worker._enqueue(previous, traced=False, front=True)
                return
        self._enqueue(task, traced=tr is not None)

    def _enqueue(self, task: _Task, traced: bool, front: bool = False) -> None:
        job = task.job
        depth = self.table.hold_and_queue(self, task, front)
        if traced:
            self.runtime._tracer.record("task.queued", job.job_id if job else None, task.rid,
                                        task.slot, depth, None, self.state.worker_id)

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
            ws._history.append((rid, "emit_dropped", (event_name, payload), _time()))
            return
        hooks = _hooks.active
        if hooks is not None:
            event = self.flow.routines[rid]._events.get(event_name)
            if _hooks.call(hooks, "on_event_emit", event, rid, ws, job, payload) is False:
                ws._history.append((rid, "emit_dropped", (event_name, payload), _time()))
                return
        ws._history.append((rid, "event_emit", (event_name, payload), _time()))
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
        due = (last or _time()) + interval
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
                rt._call_later(max(due - _time(), 0.0), self._run_recheck, (rid, entry))
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
            rt._table.fail(job, exc, err)

    def resubmit(self, task: _Task) -> None:
        """Put ``task``, which already holds its job, on the run queue; release the hold
        instead if the pool has closed. (Retries, and offloaded outcomes to settle.)"""
        rt = self.runtime
        task.queued_ns = _monotonic_ns()
        with rt._lock:
            finished = None
            if rt._pool.closed:
                finished = self.release_locked(task.job)
            else:
                rt._pool.submit_locked(task)
        if finished is not None:
            finished[0](finished[1])

    def wait_idle(self, timeout: float | None) -> bool:
        rt = self.runtime
        return rt._table.wait(lambda: not self.inflight, timeout, on_interrupt=rt._on_interrupt)


def _batch(plan: _Plan, slot_name: str, items: list[Any]) -> dict[str, list[Any]]:
    """An immediate activation's data for a routine with several slots: ``items`` for the
    arriving slot, and whatever the other slots hold (consumed with it)."""
    batch = {name: other.consume_all_new() if other.unconsumed() else []
             for name, other in plan.queues.items()}
    batch[slot_name] = items
    return batch


def _full_at_post(rid: str, slot_name: str, q: SlotQueue) -> SlotQueueFullError:
    return SlotQueueFullError(
        f"slot {rid}.{slot_name} is full ({q.max_length} unconsumed items); "
        "no job was registered"
    )
