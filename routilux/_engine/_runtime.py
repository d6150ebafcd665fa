"""Runtime: the engine's public face, which runs flows as workers on a thread pool.

Design (invariants):
- Routing runs in the delivering thread (``_worker.py``); a firing policy puts one task
  on the run queue of a ``ThreadPool`` (``_pool.py``), whose threads run it (``_tasks.py``).
- Bookkeeping (jobs in flight, worker in-flight counts, counters) is the ``JobTable``'s
  (``_jobs.py``), under the pool's lock, in the same acquisition in which a pool thread
  takes its next task. A post becomes a job in ``_posting.py``.
- Timers, deadlines and trace sampling run on one monitor thread (``_monitor.py``).
- Pool threads and the monitor hold the runtime weakly; all threads are daemons.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Callable

from .._errors import RuntimeShutDown
from .._model import _context, _entry, _hooks
from .._model._context import Activation
from .._model._flow import Flow, FlowRegistry
from .._model._job import JobContext
from .._model._routine import Routine
from .._model._status import ExecutionStatus, JobStatus
from .._model._worker_state import WorkerRegistry, WorkerState
from .._validate import check_number
from ..executors._choice import check_executor_choice
from ..trace import Tracer
from . import _autosize, _monitoring, _posting, _statistics, _stopping
from ._statistics import RuntimeStatistics
from ._autosizer import AutoSizer
from ._executors import ExecutorChoice
from ._jobs import JobTable
from ._monitor import _Monitor
from ._pool import ThreadPool, check_pool_size, get_worker_manager
from ._worker import _Worker

logger = logging.getLogger("routilux")

RUNNING = JobStatus.RUNNING.value
COMPLETED = JobStatus.COMPLETED.value
FAILED = JobStatus.FAILED.value
CANCELLED = JobStatus.CANCELLED.value


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
            size, auto = thread_pool_size, False  # ThreadPool validates it (warns once if huge)
        else:
            size, auto = _autosize.parse_thread_pool_size(thread_pool_size)  # 0, auto or raises
        self.max_pool_size = _autosize.check_max_pool_size(max_pool_size)
        if auto:
            size = _autosize.start_size(self.max_pool_size)
        self._executors = ExecutorChoice(check_executor_choice(executor))
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
            self.thread_pool: ThreadPool | None = None
        else:
            self._pool = ThreadPool(size)
            self.thread_pool = self._pool
        self._lock = self._pool.lock
        self._interrupted = False  # a wait was interrupted (Ctrl-C); see _on_interrupt
        self._workers: dict[str, _Worker] = {}
        self._table = JobTable(self._pool, self._workers)
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
        self._table.tracer = self._tracer
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
        self._autosizer: AutoSizer | None = None
        if auto:
            self._start_autosize(f"thread_pool_size='auto': start at {size} = "
                                 f"min(max_pool_size {self.max_pool_size}, cpu_count + 4)")

    def _start_tracing(self) -> None:
        """Monitoring was switched on after this runtime was made: trace from now on."""
        with self._tracing_lock:
            if self._tracer is not None or not _monitoring.enabled:
                return
            tracer = Tracer()
            self._tracer = self._table.tracer = tracer
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
                self._tracer = self._table.tracer = None

    # -- executors ------------------------------------------------------------------------
    def _executor_for(self, routine: Routine, logic: Any) -> Any:
        """The executor a plan runs ``logic`` on; None for the pool thread itself."""
        return self._executors.for_plan(self, routine, logic)

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
        return FlowRegistry.get_instance().lookup(flow_name)

    def _check_open(self) -> None:
        if self._shut_down:
            raise RuntimeShutDown("Runtime is shut down")

    def _new_worker(self, flow: Flow, worker_state: WorkerState | None) -> _Worker:
        if worker_state is None:
            worker_state = WorkerState(flow.flow_id)
        worker = _Worker(self, flow, worker_state)
        worker_state._set_status(ExecutionStatus.RUNNING)
        worker_state.status = ExecutionStatus.IDLE
        with self._lock:
            self._workers[worker_state.worker_id] = worker
            self._default_workers[id(flow)] = worker
        flow._bind_latest_worker(worker)
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
            RuntimeShutDown (a RuntimeError): the runtime is shut down.
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
        After ``shutdown()`` it raises ``RuntimeShutDown`` (a ``RuntimeError``).
        """
        # Once per post, so the common case is inlined: _check_open, _resolve_flow, and
        # check_names / target only when they have something to say.
        if self._shut_down:
            raise RuntimeShutDown("Runtime is shut down")
        if _monitoring.enabled and self._tracer is None:
            self._start_tracing()
        flow = FlowRegistry.get_instance().lookup(flow_name)
        routine = flow.routines.get(routine_name)
        if routine is None or slot_name not in routine._slots:
            _posting.check_names(flow, routine_name, slot_name)  # raises, naming the choices
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
        worker = self._default_workers.get(id(flow)) if worker_id is None else None
        if worker is None or not worker.accepting:
            worker, flow = _posting.target(self, flow, routine_name, slot_name, worker_id)
        if self.max_queue_size is None:
            return worker.state, _posting.post_job(self, worker, flow, routine_name, slot_name,
                                                   data, job_id, metadata)
        with self._post_gate:
            _posting.wait_for_room(self, block, timeout)
            return worker.state, _posting.post_job(self, worker, flow, routine_name, slot_name,
                                                   data, job_id, metadata)

    # -- jobs (the JobTable's) ------------------------------------------------------------
    def complete_job(self, job_id: str, status: str = "completed", error: str | None = None) -> bool:
        """Finish a job explicitly; False if unknown or already finished."""
        job = self._table.get(job_id)
        if job is None:
            return False
        return job.complete(status, error)

    def get_job(self, job_id: str) -> JobContext | None:
        return self._table.get(job_id)

    def list_jobs(self, worker_id: str | None = None, status: str | None = None,
                  flow_name: str | None = None) -> list[JobContext]:
        """Jobs in creation order (the 10,000 most recent finished ones, all running ones)."""
        return self._table.list(worker_id, status, flow_name)

    # -- waiting --------------------------------------------------------------------------
    def wait_until_all_workers_idle(self, timeout: float | None = 300.0) -> bool:
        """True once nothing of this runtime is queued, running, retrying or re-checking."""
        table = self._table
        if not table.wait(lambda: table.inflight == 0, timeout, on_interrupt=self._on_interrupt):
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
        table = self._table
        return table.wait(lambda: table.counts[RUNNING] == 0, timeout,
                          on_interrupt=self._on_interrupt)

    def _on_interrupt(self) -> int:
        """A Ctrl-C (or kernel interrupt) stopped a wait: cancel the queued jobs now.

        Running logic is left to finish (leaving ``with Runtime(...)`` waits for it up to
        the shutdown timeout); every job with nothing running becomes "cancelled". Says
        how many on the ``routilux`` logger (a warning, so it shows without setup).
        Returns that number.
        """
        self._interrupted = True
        cancelled, running = _stopping.cancel_queued(self, "interrupted (KeyboardInterrupt)")
        if cancelled:
            logger.warning(
                "routilux: interrupted: cancelled %d queued job(s); %d job(s) with running "
                "logic are left to finish", cancelled, running)
        return cancelled

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
            RuntimeError: on the shared pool; RuntimeShutDown (a RuntimeError): after shutdown.
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
        return _statistics.snapshot(self)

    def running_tasks(self) -> list[dict[str, Any]]:
        """What each busy pool thread runs now: thread, routine, job, seconds running."""
        return _statistics.running_tasks(self)

    def _start_autosize(self, reason: str) -> None:
        sizer = AutoSizer(self, self.max_pool_size, self._pool.size)
        sizer.record(self, "on", self._pool.size, self._pool.size, reason)
        self._autosizer = sizer
        sizer.start()

    # -- monitor hooks --------------------------------------------------------------------
    def _call_later(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        self._monitor.call_later(delay, fn, arg)

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
                    drained = self._table.wait(lambda: self._table.inflight == 0, left())
                except KeyboardInterrupt:
                    pass
        _stopping.cancel_all(self, drained)
        with self._lock:
            self._table.wake_waiters_locked()
            self._pool.wake_room_locked(everyone=True)
        self._executors.close(wait=drained)
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




def latest_runtime() -> Runtime | None:
    """The most recently created runtime that is still alive and not shut down."""
    alive = [rt for rt in list(_runtimes) if not rt.is_shut_down]
    return max(alive, key=lambda rt: rt._started) if alive else None


def _close_orphan(pool: ThreadPool, monitor: _Monitor) -> None:
    """A private runtime was garbage collected without shutdown: stop its threads."""
    monitor.stop_from_finalizer()
    pool.close_from_finalizer()
