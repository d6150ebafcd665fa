"""RuntimeStatistics: frozen snapshots of a runtime, safe to read from any thread."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .._model._status import JobStatus

# The runtime (``_runtime.Runtime``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
Runtime = Any

RUNNING = JobStatus.RUNNING.value
COMPLETED = JobStatus.COMPLETED.value
FAILED = JobStatus.FAILED.value
CANCELLED = JobStatus.CANCELLED.value


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


def snapshot(rt: Runtime) -> RuntimeStatistics:
    """``rt.statistics()``: the pool, the queue and the job counts read in one locked step."""
    table = rt._table
    with rt._lock:
        ps = rt._pool.statistics_locked()
        counts = dict(table.counts)
        posted = table.posted
        inflight = table.inflight
        workers = len(rt._workers)
    tr = rt._tracer
    sizer = rt._autosizer
    return RuntimeStatistics(
        pool_size=ps.size, threads=ps.threads, busy=ps.busy, idle=ps.idle,
        queued=ps.queued, max_queue_size=rt.max_queue_size, jobs=counts, posted=posted,
        completed=counts[COMPLETED], failed=counts[FAILED],
        cancelled=counts[CANCELLED], running=counts[RUNNING], in_flight=inflight,
        workers=workers, tasks_completed=ps.completed,
        trace_dropped=tr.dropped if tr is not None else 0,
        uptime_s=time.monotonic() - rt._started, shut_down=rt._shut_down,
        shared_pool=rt.thread_pool is None,
        pool_auto=sizer is not None,
        pool_auto_reason=sizer.last.reason if sizer is not None and sizer.last else None,
    )


def running_tasks(rt: Runtime) -> list[dict[str, Any]]:
    """``rt.running_tasks()``: what each busy pool thread runs now for ``rt``."""
    now = time.monotonic_ns()
    names = rt._pool.thread_names()
    with rt._lock:
        items = list(rt._pool.running.items())
    out = []
    for ident, task in items:
        if getattr(task, "worker", None) is None or task.worker.runtime is not rt:
            continue
        if task.rid is None:
            continue
        out.append({
            "thread": ident, "thread_name": names.get(ident, str(ident)),
            "routine": task.rid, "job_id": task.job.job_id if task.job else None,
            "running_s": (now - task.started_ns) / 1e9 if task.started_ns else 0.0,
        })
    return out
