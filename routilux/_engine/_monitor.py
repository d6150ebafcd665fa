"""The monitor: one daemon thread per runtime for timers, job deadlines, trace sampling.

Timers are retries and time-interval re-checks; deadlines are jobs' execution timeouts;
samples are the trace's ``queue.depth`` ticks and the one-off stack of a task running
long (``task.sample``). It holds the runtime weakly, so an orphaned runtime is collected.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import threading
import time
import traceback
import weakref
from _thread import allocate_lock as _allocate_lock
from collections import deque
from typing import Any, Callable

from .._model._job import JobContext
from .._model._status import TERMINAL_JOB_STATUSES
from ._pool import _wait_uninterrupted

# The runtime (``_runtime.Runtime``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
Runtime = Any

logger = logging.getLogger("routilux")

SAMPLE_INTERVAL_S = 0.1  # seconds between queue-depth samples while tracing
LONG_TASK_SAMPLE_S = 0.1  # seconds a task runs before its stack is sampled once
DEADLINE_SWEEP_S = 0.5  # seconds between sweeps of finished jobs off the deadline queues
DEADLINE_COMPACT_MIN = 4096  # deadline entries before finished ones are swept mid-queue


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
        # timeout -> jobs in post order; a job is due at its post time + timeout
        # (``job._posted_ns``, monotonic). The job itself, not a (due, job) tuple: one
        # object less per post for the allocator and the collector.
        self._deadlines: dict[float, deque[JobContext]] = {}
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
        # ``job._posted_ns`` (monotonic, set before registration) + timeout is its due time.
        dq = self._deadlines.get(timeout)
        # The loop sweeps every DEADLINE_SWEEP_S once a deque exists (and it runs: an
        # interrupt may have cut the first start short).
        if dq is not None and self._thread is not None:
            dq.append(job)
            return
        with self._lock:
            dq = self._deadlines.get(timeout)
            if dq is None:
                dq = self._deadlines[timeout] = deque()
            dq.append(job)
            self._ensure_started()
            self._notify()

    def _notify(self) -> None:
        try:
            self._gate.release()
        except RuntimeError:  # already released: a wake-up is pending anyway
            pass

    def _compact(self, key: float, dq: deque[JobContext]) -> None:
        """Drop finished jobs from anywhere in ``dq``, not only its front (issue 13).

        Sweeping only the front let one long job pin every later one, finished or not,
        behind it (+163 MB after 200,000 trivial jobs). Rotates in place, because posters
        append without the lock: an entry appended meanwhile lands among the survivors,
        later-due than all of them by construction, so the order is kept but for the
        entries appended during the pass. Runs again only once the deque has doubled.
        """
        for _ in range(len(dq)):
            job = dq.popleft()
            if job.status not in TERMINAL_JOB_STATUSES:
                dq.append(job)
        self._compact_at[key] = max(2 * len(dq), DEADLINE_COMPACT_MIN)

    def start_sampling(self) -> None:
        with self._lock:
            self.sampling = True
            self._ensure_started()
            self._notify()

    def stop_from_finalizer(self) -> None:
        """Ask the loop to end without joining it (a runtime's garbage-collection finaliser)."""
        self._stop = True
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
                    while dq and (dq[0].status in TERMINAL_JOB_STATUSES
                                  or dq[0]._posted_ns * 1e-9 + key <= now):
                        job = dq.popleft()
                        if job.status not in TERMINAL_JOB_STATUSES:
                            expired.append(job)
                    if len(dq) > self._compact_at.get(key, DEADLINE_COMPACT_MIN):
                        self._compact(key, dq)
                    if dq:
                        wake = min(wake, dq[0]._posted_ns * 1e-9 + key)
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
                rt._table.finish(job, "failed",
                                 f"TimeoutError: job {job.job_id} timed out after {timeout:g} s "
                                 "(flow execution_timeout)")
            if sample:
                try:
                    sample_trace(rt)
                except Exception:
                    logger.exception("routilux: trace sampling failed")
            del rt


def sample_trace(rt: Runtime) -> None:
    """One trace sample: the queue depth, and the stack of each task running long."""
    tr = rt._tracer
    if tr is None:
        return
    with rt._lock:
        ps = rt._pool.statistics_locked()
        running = list(rt._pool.running.items())
    tr.record("queue.depth", None, None, None, ps.queued,
              {"busy": ps.busy, "size": ps.size}, None)
    now = time.monotonic_ns()
    frames = None
    names = rt._pool.thread_names()
    for ident, task in running:
        if task.sampled or not task.started_ns or task.worker.runtime is not rt:
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
