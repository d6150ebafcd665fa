"""JobTable: the book of one runtime's jobs, kept under the pool lock.

It holds the registry (``jobs``, the finished ones in ``finished_order``), the counts by
status, the number ``posted``, the holds in flight (``inflight``: posts, activations,
retries and re-checks outstanding) and the blocked waiters. It is the only code that
moves a job to a terminal status for a runtime (``finish``).

A job is in flight while its post, an activation under it, a retry or a time-interval
re-check it owns is outstanding; at zero it completes, unless it already finished.

Interrupt safety (issue 13, docs/interrupts.md): a KeyboardInterrupt can land in the
posting thread at any call or loop back-edge, never inside a run of plain attribute and
arithmetic statements. Each locked step here is such a run, entered by one method call
before anything changes (an interrupt at that call lands before the step) and ending in
at most one C call. The counters are plain public fields so that the one step that must
be entered without any call (post's interrupt handler, ``_posting.py``) can update them
inline. The job's own bookkeeping fields are declared on ``JobContext`` (``_job.py``);
this table and the posting steps are their only writers.
"""

from __future__ import annotations

import logging
import math
import time
from _thread import allocate_lock as _allocate_lock
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from .._model import _hooks
from .._model._job import JobContext, call_done_callback, release_gate
from .._model._status import TERMINAL_JOB_STATUSES, ExecutionStatus, JobStatus
from .._validate import check_number

if TYPE_CHECKING:
    from ._pool import ThreadPool
    from ._tasks import _Callback, _Task
    from ._worker import _Worker

logger = logging.getLogger("routilux")

MAX_FINISHED_JOBS = 10_000  # finished jobs kept per runtime for get_job / list_jobs
_now = datetime.now
WAIT_SLICE_S = 0.1  # seconds a waiter sleeps at most before re-checking (lost wake-ups)
RUNNING = JobStatus.RUNNING.value
COMPLETED = JobStatus.COMPLETED.value
FAILED = JobStatus.FAILED.value
CANCELLED = JobStatus.CANCELLED.value


class JobTable:
    """One runtime's jobs: registered, counted by status, held in flight, waited for."""

    def __init__(self, pool: ThreadPool, workers: dict[str, _Worker]) -> None:
        self.pool = pool
        self.lock = pool.lock  # one lock for the queue and the books (see _pool.py)
        self.workers = workers  # the runtime's worker_id -> _Worker (shared, not copied)
        self.tracer: Any = None  # the runtime's tracer, kept in step by the runtime
        self.jobs: dict[str, JobContext] = {}
        self.finished_order: deque[str] = deque()
        self.counts = {RUNNING: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0}
        self.posted = 0
        self.inflight = 0
        # One raw lock per blocked waiter, released (under the pool lock) to wake it. Not a
        # Condition over the pool lock: a Ctrl-C inside Condition.wait can leave the pool
        # lock released by a thread that no longer holds it (issue 13).
        self.waiters: list[Any] = []

    # -- holds (lock held) ----------------------------------------------------------------
    def hold_locked(self, worker: _Worker, job: JobContext | None) -> None:
        worker.inflight += 1
        self.inflight += 1
        if job is not None:
            job._pending += 1
            if not job._counted:
                job._counted = True
                self.counts[RUNNING] += 1
                self.posted += 1
        if worker.inflight == 1 and worker.state.status == ExecutionStatus.IDLE:
            worker.state.status = ExecutionStatus.RUNNING

    def release_locked(self, worker: _Worker, job: JobContext | None) -> Any:
        """Drop one hold. When it was the job's last, the hold passes to the returned
        (auto-complete, job) step, so nothing reports idle before the job is finished."""
        # Plain statements only until the waiters' wake-up (see _pool.py, interrupts).
        if job is not None:
            job._pending -= 1
            # While post runs, it finishes the job itself (settle_post): a job is terminal
            # only after post returns (api.md §9).
            if job._pending == 0 and job.status == RUNNING and not job._in_post:
                return (self.auto_complete, job)  # still in flight until it is finished
        worker.inflight -= 1
        self.inflight -= 1
        if worker.inflight == 0 and worker.state.status == ExecutionStatus.RUNNING:
            worker.state.status = ExecutionStatus.IDLE
        if self.inflight == 0 and self.waiters:
            self.wake_waiters_locked()
        return None

    def release_final_locked(self, worker: _Worker) -> None:
        """The hold an auto-complete step carried (see release_locked), once it is done."""
        worker.inflight -= 1
        self.inflight -= 1
        if worker.inflight == 0 and worker.state.status == ExecutionStatus.RUNNING:
            worker.state.status = ExecutionStatus.IDLE
        if self.inflight == 0 and self.waiters:
            self.wake_waiters_locked()

    def hold_and_queue(self, worker: _Worker, task: _Task, front: bool) -> int:
        """Hold ``task``'s job and put the task on the run queue; returns the queue depth."""
        pool = self.pool
        job = task.job
        with self.lock:
            if pool.closed:
                raise RuntimeError("cannot submit to a pool after shutdown")
            # Hold and queue in one run of plain statements ending in one C call, so an
            # interrupt in the posting thread lands before both or after both (_pool.py).
            if job is not None and job._post_hold:
                job._post_hold = False  # the first activation takes over post's own hold
                (pool.tasks.appendleft if front else pool.tasks.append)(task)
            else:
                worker.inflight += 1
                self.inflight += 1
                if job is not None:
                    job._pending += 1
                    if not job._counted:
                        job._counted = True
                        self.counts[RUNNING] += 1
                        self.posted += 1
                (pool.tasks.appendleft if front else pool.tasks.append)(task)
            try:
                pool.wake_locked()
            except BaseException:
                pool.repair_wake_locked()
                raise
            if worker.state.status == ExecutionStatus.IDLE:
                worker.state.status = ExecutionStatus.RUNNING
            return len(pool.tasks) + len(pool.next_tasks)

    # -- a post's own hold ----------------------------------------------------------------
    def register(self, worker: _Worker, job: JobContext) -> None:
        """Register a posted job: counted as running and held in flight by its post.

        Raises:
            ValueError: the job id is in use in this runtime (nothing is registered).
        """
        key = job.job_id
        with self.lock:
            if key in self.jobs:
                raise ValueError(f"job_id {key!r} is already in use")
            # One run of plain statements: registered <=> counted <=> held.
            job.status = RUNNING
            job._pending = 1
            job._counted = True
            job._post_hold = True
            self.counts[RUNNING] += 1
            self.posted += 1
            worker.inflight += 1
            self.inflight += 1
            self.jobs[key] = job

    def register_and_queue(self, worker: _Worker, job: JobContext, task: _Task) -> None:
        """Register a posted job and queue its first activation in one locked step.

        post's fast path (``_Worker.deliver_posted``): one pool-lock acquisition where
        ``register`` + ``hold_and_queue`` take two, on the posting thread, where the lock
        is contended by every pool thread. The activation holds the job at once (post's
        own hold is never taken: ``_post_hold`` stays False). For generated job ids only:
        there is no "already in use" check (a 122-bit random id does not collide), since
        by now the item is in the slot.
        """
        pool = self.pool
        with self.lock:
            if pool.closed:
                raise RuntimeError("cannot submit to a pool after shutdown")
            # One run of plain statements ending in one C call (the append), as in
            # register and hold_and_queue: registered <=> counted <=> held <=> queued.
            job.status = RUNNING
            job._pending = 1
            job._counted = True
            self.counts[RUNNING] += 1
            self.posted += 1
            worker.inflight += 1
            self.inflight += 1
            self.jobs[job.job_id] = job
            pool.tasks.append(task)
            try:
                pool.wake_locked()
            except BaseException:
                pool.repair_wake_locked()
                raise
            if worker.state.status == ExecutionStatus.IDLE:
                worker.state.status = ExecutionStatus.RUNNING

    def settle_post(self, worker: _Worker, job: JobContext,
                    make_step: Callable[[_Worker, JobContext], _Callback]) -> None:
        """Hand post's own hold on: to a bookkeeping task (``make_step(worker, job)``)
        when nothing was scheduled (the item parked, or the policy failed) or a failure
        waits to be applied; else drop it."""
        if not job._post_hold and job._deferred_failure is None:
            # The common case, without the pool lock (one contended acquisition less per
            # post on the posting thread) and without a step object: the first activation
            # took post's hold over and nothing failed. A store, then a load, against
            # release_locked's decrement of ``_pending``, then load of ``_in_post`` (under
            # the pool lock, on a pool thread): under the GIL these interleave in some
            # sequential order, so at least one side sees the other's write. Either
            # release_locked sees ``_in_post`` False and finishes the job, or we see
            # ``_pending`` at 0 and take the locked path below, or both (the finish is
            # then attempted twice: the first terminal transition wins, and each side
            # drops only its own hold). A failure deferred after our check is seen the
            # same way: ``fail`` either reads ``_in_post`` False and finishes the job, or
            # its activation still holds the job and its release applies the failure.
            # ``_post_hold`` only ever goes True -> False. Plain statements only: an
            # interrupt cannot land between them (docs/interrupts.md).
            job._in_post = False
            if job._pending:
                return
        step = make_step(worker, job)  # before the lock: a call, where an interrupt may land
        pool = self.pool
        with self.lock:
            # Plain statements ending in one C call (the append): see hold_and_queue.
            job._in_post = False
            if job._post_hold:  # nothing took it over: the step below does
                job._post_hold = False
                pool.tasks.append(step)
            elif job._deferred_failure is not None or job._pending == 0:
                # A failure to apply, or every activation already ran while post was
                # still here (their release left the job to us): finish after return.
                worker.inflight += 1
                self.inflight += 1
                job._pending += 1
                pool.tasks.append(step)
            else:
                return
            try:
                pool.wake_locked()
            except BaseException:
                pool.repair_wake_locked()
                raise

    def drop_post_hold(self, worker: _Worker, job: JobContext) -> None:
        """Drop post's own hold if no activation took it over (post raised)."""
        with self.lock:
            if job._post_hold:  # one run of plain statements (see hold_and_queue)
                job._post_hold = False
                job._pending -= 1
                worker.inflight -= 1
                self.inflight -= 1
                if self.inflight == 0 and self.waiters:
                    self.wake_waiters_locked()

    def after_abort(self, job: JobContext) -> None:
        """What follows an interrupted post's cancellation outside the critical step: the
        finish time, retention, waiters, callbacks, worker counters, trace. Best effort: a
        further interrupt may cut it short, which costs at most a callback or a trace event
        (``job.wait`` and the runtime's waits re-check the status in slices)."""
        if not job._tally_pending:
            return
        job._tally_pending = False
        job.completed_at = datetime.now()
        with self.lock:
            self.finished_order.append(job.job_id)
            if self.waiters:
                self.wake_waiters_locked()
        release_gate(job._done)
        callbacks, job._callbacks = job._callbacks, None
        for cb in callbacks or ():
            call_done_callback(cb, job)
        worker = self.workers.get(job.worker_id)
        if worker is not None:
            with worker.state._lock:
                worker.state.jobs_processed += 1
                worker.state.jobs_failed += 1
        tr = self.tracer
        if tr is not None:
            tr.record("job.cancelled", job.job_id, None, None, None, job.error, job.worker_id)

    # -- finishing ------------------------------------------------------------------------
    def fail(self, job: JobContext, exc: BaseException, err: str) -> None:
        """The error strategy let ``exc`` fail ``job`` (now, or once its post returns)."""
        job._exception = exc  # what on_job_end hooks receive
        if job._in_post:
            job._deferred_failure = err  # applied after post returns (api.md §9)
        else:
            self.finish(job, FAILED, err)

    def auto_complete(self, job: JobContext) -> None:
        """Finish a job whose last hold was released; then drop that hold (in the same
        locked step as the transition, so a waiter never sees idle before it)."""
        worker = self.workers.get(job.worker_id)
        failure = job._deferred_failure  # found during post; its activations were skipped
        try:
            finished = self.finish(job, FAILED if failure is not None else COMPLETED,
                                   failure, holder=worker)
        except BaseException:
            finished = False
            raise
        finally:
            if not finished and worker is not None:
                with self.lock:
                    self.release_final_locked(worker)

    def finish(self, job: JobContext, status: str, error: str | None,
               holder: _Worker | None = None) -> bool:
        """The first terminal transition of a job: status, counters, trace, waiters.

        The status and the counters change in one locked run of plain statements, so no
        interrupt can leave a job terminal but counted as running. Done-callbacks run
        after it, each isolated (``call_done_callback``).
        """
        if job.status in TERMINAL_JOB_STATUSES:
            return False
        now = datetime.now()
        worker = self.workers.get(job.worker_id)
        with self.lock, job._lock:
            if job.status in TERMINAL_JOB_STATUSES:
                return False
            done, callbacks = self._transition_locked(job, status, error, now, holder)
        self.after_finish((job, status, error, worker, done, callbacks))
        return True

    def release_on_pool_locked(self, worker: _Worker, job: JobContext | None) -> Any:
        """``release_locked`` from a pool thread's ``done_locked``: a job whose last hold
        this was is finished in the same acquisition (``finish_on_pool_locked``). Returns
        the unlocked remainder of its finish as a ``(callback, arg)`` step, or None."""
        # release_locked, inlined (once per task): plain statements until the wake-up.
        if job is not None:
            job._pending -= 1
            if job._pending == 0 and job.status == RUNNING and not job._in_post:
                return self.finish_on_pool_locked(job, worker)  # the hold passes to it
        worker.inflight -= 1
        self.inflight -= 1
        if worker.inflight == 0 and worker.state.status == ExecutionStatus.RUNNING:
            worker.state.status = ExecutionStatus.IDLE
        if self.inflight == 0 and self.waiters:
            self.wake_waiters_locked()
        return None

    def finish_on_pool_locked(self, job: JobContext, holder: _Worker) -> Any:
        """Auto-complete ``job`` inside the pool thread's own acquisition of the pool lock.

        What ``auto_complete`` does, without its two extra pool-lock round trips (its own,
        and the pool thread's coming back for work): the transition happens here and
        ``holder``'s hold (see ``release_locked``) is dropped in the same locked step, so a
        waiter never sees idle before the job is finished. Only ``done_locked`` calls
        this, on a pool thread, never the posting thread where an interrupt may land.
        Returns the unlocked remainder (``after_finish``) as a ``(callback, arg)`` step.
        """
        failure = job._deferred_failure  # found during post; its activations were skipped
        status = FAILED if failure is not None else COMPLETED
        with job._lock:  # the pool lock is held: the same order as finish
            if job.status in TERMINAL_JOB_STATUSES:  # an explicit complete came first
                self.release_final_locked(holder)
                return None
            done, callbacks = self._transition_locked(job, status, failure, _now(), holder)
        return (self.after_finish,
                (job, status, failure, self.workers.get(job.worker_id), done, callbacks))

    def _transition_locked(self, job: JobContext, status: str, error: str | None,
                           now: datetime, holder: _Worker | None) -> tuple[Any, Any]:
        """The terminal transition itself (pool lock and job lock held, job not terminal):
        one run of plain statements until the counters agree. Returns (gate, callbacks)."""
        job.status = status
        job.error = error
        job.completed_at = now
        done = job._done
        callbacks = job._callbacks
        job._callbacks = None
        counts = self.counts
        if job._counted:
            counts[RUNNING] -= 1
        else:  # finished before its first hold: count it as posted now
            job._counted = True
            self.posted += 1
        counts[status] += 1
        self.finished_order.append(job.job_id)
        while len(self.finished_order) > MAX_FINISHED_JOBS:
            old = self.finished_order.popleft()
            self.jobs.pop(old, None)
        if holder is not None:  # the auto-complete step's hold (release_locked)
            self.release_final_locked(holder)
        if counts[RUNNING] == 0 and self.waiters:
            self.wake_waiters_locked()
        return done, callbacks

    def after_finish(self, settled: tuple[Any, ...]) -> None:
        """What follows a terminal transition, outside the locks: the done-gate, the
        done-callbacks (each isolated), the worker's counters, the trace, on_job_end."""
        job, status, error, worker, done, callbacks = settled
        release_gate(done)
        if callbacks:
            for cb in callbacks:
                call_done_callback(cb, job)
        if worker is not None:
            ws = worker.state
            with ws._lock:
                ws.jobs_processed += 1
                if status != COMPLETED:
                    ws.jobs_failed += 1
        tr = self.tracer
        if tr is not None:
            latency = (time.monotonic_ns() - job._posted_ns) / 1e9
            tr.record(f"job.{status}", job.job_id, None, None, latency, error, job.worker_id)
        hooks = _hooks.active
        if hooks is not None and worker is not None:
            exc = None
            if error is not None:
                exc = job._exception or RuntimeError(error)
            _hooks.call(hooks, "on_job_end", job, worker.state, status, exc)

    # -- queries --------------------------------------------------------------------------
    def get(self, job_id: str) -> JobContext | None:
        return self.jobs.get(job_id)

    def list(self, worker_id: str | None = None, status: str | None = None,
             flow_name: str | None = None) -> list[JobContext]:
        """Jobs in creation order (the 10,000 most recent finished ones, all running ones)."""
        with self.lock:
            jobs = list(self.jobs.values())
        if worker_id is not None:
            jobs = [j for j in jobs if j.worker_id == worker_id]
        if status is not None:
            jobs = [j for j in jobs if j.status == getattr(status, "value", status)]
        if flow_name is not None:
            jobs = [j for j in jobs if j.flow_id == flow_name]
        return jobs

    # -- waiting --------------------------------------------------------------------------
    def wake_waiters_locked(self) -> None:
        waiters = self.waiters
        self.waiters = []
        for gate in waiters:
            gate.release()

    def wait(self, done: Callable[[], bool], timeout: float | None, name: str = "timeout",
             on_interrupt: Callable[[], Any] | None = None) -> bool:
        """Block until ``done()`` (read under the pool lock) or ``timeout`` seconds.

        The waiter never holds the pool lock while it sleeps, so a Ctrl-C cannot leave
        that lock in a wrong state. The first KeyboardInterrupt calls ``on_interrupt``
        (the runtime cancels its queued jobs) and then propagates: an interrupted wait
        never drains.
        """
        timeout = check_number(name, timeout, allow_none=True, allow_inf=True,
                               unit=" seconds")
        deadline = None if timeout is None or timeout == math.inf \
            else time.monotonic() + timeout
        lock = self.lock
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
                    self.waiters.append(gate)
                # Bounded slices: a wake-up lost to an interrupt costs at most one slice.
                if not gate.acquire(True, WAIT_SLICE_S if remaining is None
                                    else min(remaining, WAIT_SLICE_S)):
                    with lock:
                        if gate in self.waiters:
                            self.waiters.remove(gate)
        except KeyboardInterrupt:
            if on_interrupt is not None:
                on_interrupt()
            raise
