"""Cancelling a runtime's work: its queued jobs on a Ctrl-C, everything left at shutdown.

Running logic is never cut short (Python cannot stop a thread); what has not started is
taken off the run queue and its job ends "cancelled" (docs/interrupts.md).
"""

from __future__ import annotations

from typing import Any

from .._model import _hooks
from .._model._status import TERMINAL_JOB_STATUSES, ExecutionStatus, JobStatus
from ._tasks import _Task

# The runtime (``_runtime.Runtime``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
Runtime = Any

CANCELLED = JobStatus.CANCELLED.value
SHUT_DOWN_CANCEL = "runtime shut down before the job finished"


def cancel_queued(rt: Runtime, why: str) -> tuple[int, int]:
    """Cancel every unfinished job of this runtime that has no logic running now.

    Returns (jobs cancelled, jobs left running). Activations still queued for the
    jobs left running stay queued (they are those jobs' next steps).
    """
    pool = rt._pool
    with rt._lock:
        running_jobs = {id(t.job) for t in pool.running.values()
                        if getattr(t, "job", None) is not None
                        and getattr(t, "worker", None) is not None
                        and t.worker.runtime is rt}
        mine = [t for t in pool.tasks if t.worker.runtime is rt
                and (t.job is None or id(t.job) not in running_jobs)]
        if mine:
            keep = [t for t in pool.tasks if t.worker.runtime is not rt
                    or (t.job is not None and id(t.job) in running_jobs)]
            pool.tasks.clear()
            pool.tasks.extend(keep)
        jobs = list(rt._table.jobs.values())
    reason = f"cancelled: {why}"
    cancelled = 0
    finish = rt._table.finish
    for task in mine:
        if task.job is not None and finish(task.job, CANCELLED, reason):
            cancelled += 1
        task.worker.release(task.job)
    for job in jobs:
        if id(job) not in running_jobs and finish(job, CANCELLED, reason):
            cancelled += 1
    left = sum(1 for job in jobs if id(job) in running_jobs and not job.is_terminal)
    return cancelled, left


def cancel_all(rt: Runtime, drained: bool) -> None:
    """At shutdown: cancel every job still unfinished, drop the queued tasks of ``rt``,
    and set each worker COMPLETED (CANCELLED if work was abandoned or not drained)."""
    abandoned: list[Any] = []
    if rt.thread_pool is not None:
        with rt._lock:
            abandoned = list(rt._pool.tasks)
            rt._pool.tasks.clear()
    else:
        with rt._lock:
            mine = [t for t in rt._pool.tasks if t.worker.runtime is rt]
            for t in mine:
                rt._pool.tasks.remove(t)
            abandoned = mine
    for task in abandoned:
        task.worker.abandoned = True
        if isinstance(task, _Task) and task.job is not None:
            # Cancel before releasing: the release would auto-complete the job as if
            # its logic had run.
            rt._table.finish(task.job, CANCELLED, SHUT_DOWN_CANCEL)
        task.worker.release(task.job)
    for job in rt._table.list():
        if job.status not in TERMINAL_JOB_STATUSES:
            rt._table.finish(job, CANCELLED, SHUT_DOWN_CANCEL)
    for worker in list(rt._workers.values()):
        worker.accepting = False
        status = ExecutionStatus.CANCELLED if (worker.abandoned or not drained and worker.inflight) \
            else ExecutionStatus.COMPLETED
        worker.state._set_status(status)
        hooks = _hooks.active
        if hooks is not None:
            _hooks.call(hooks, "on_worker_stop", worker.flow, worker.state, status.value)
