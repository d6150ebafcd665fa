"""JobContext: the state of one posted request, shared by every routine the job reaches."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from _thread import allocate_lock as _allocate_lock
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

from ._status import TERMINAL_JOB_STATUSES, JobStatus

logger = logging.getLogger("routilux")

_VALID_TERMINAL = ", ".join(sorted(TERMINAL_JOB_STATUSES))


def release_gate(gate: Any) -> None:
    """Open a job's done-gate (idempotent; None = nobody waits)."""
    if gate is not None:
        try:
            gate.release()
        except RuntimeError:  # already open
            pass
_WAIT_SLICE_S = 0.1  # seconds; JobContext.wait re-checks the status this often


_DEFAULT: Any = object()  # "argument left out": make the field's default
_PENDING = JobStatus.PENDING.value
_now = datetime.now


class JobOwner(Protocol):
    """What a job needs of the runtime that took it on (the engine's ``JobTable``)."""

    def finish(self, job: JobContext, status: str, error: str | None) -> bool: ...


@dataclass(eq=False)
class JobContext:
    """One request's context: its id, metadata, data shared across branches, and status.

    Every method is atomic. ``status`` is a plain string that compares equal to
    ``JobStatus`` members. A job posted to a runtime finishes by itself once nothing is
    queued or running on its behalf; an explicit ``complete(...)`` wins over that.
    """

    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    worker_id: str = ""
    flow_id: str = ""
    created_at: datetime = field(default_factory=datetime.now)
    completed_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    trace_log: list[dict[str, Any]] = field(default_factory=list)
    status: str = JobStatus.PENDING.value
    error: str | None = None

    # An explicit __init__ (dataclass keeps it: fields, repr and asdict stay the
    # dataclass's), the generated one's behaviour: a factory default is made when the
    # argument is left out. Hand-written because it runs once per post: the generated
    # one calls its default factories through keyword defaults and then __post_init__.
    def __init__(self, job_id: Any = _DEFAULT, worker_id: str = "", flow_id: str = "",
                 created_at: Any = _DEFAULT, completed_at: datetime | None = None,
                 metadata: Any = _DEFAULT, data: Any = _DEFAULT, trace_log: Any = _DEFAULT,
                 status: str = _PENDING, error: str | None = None) -> None:
        self.job_id = str(uuid.uuid4()) if job_id is _DEFAULT else job_id
        self.worker_id = worker_id
        self.flow_id = flow_id
        self.created_at = _now() if created_at is _DEFAULT else created_at
        self.completed_at = completed_at
        self.metadata = {} if metadata is _DEFAULT else metadata
        self.data = {} if data is _DEFAULT else data
        self.trace_log = [] if trace_log is _DEFAULT else trace_log
        self.status = status
        self.error = error
        self._lock = _allocate_lock()  # what threading.Lock() returns, without the lookup
        # A raw lock held until the job is terminal (made by the first waiter), not an
        # Event: Event.set runs a Condition in Python, and an interrupt inside it in the
        # finishing thread could leave its lock held, hanging every waiter (issue 13).
        self._done: Any = None
        self._callbacks: list[Callable[[JobContext], None]] | None = None
        # The runtime's job table that owns this job: its ``finish`` makes the first
        # terminal transition. The owner itself, not a bound method of it: a bound method
        # per job is one more object allocated per post and walked by every collection
        # while the runtime keeps the job (up to 10,000 finished ones).
        self._owner: JobOwner | None = None
        # Runtime bookkeeping, declared here so every job has it. Written only by the
        # engine's job table and posting steps (routilux/_engine/_jobs.py), under the pool
        # lock, as plain stores: those steps must stay free of calls (docs/interrupts.md).
        self._pending = 0  # holds outstanding: post, activations, retries, re-checks
        self._counted = False  # counted as posted and running
        self._post_hold = False  # post's own hold, not yet taken over by an activation
        self._in_post = False  # post has not returned: it finishes the job itself
        self._deferred_failure: str | None = None  # a failure found during post, applied after
        self._tally_pending = False  # an interrupted post's cancel still to be tallied
        self._timeout = 0.0  # seconds: the flow's execution_timeout when posted
        self._posted_ns = 0  # time.monotonic_ns() at post (the job.* latency in the trace)
        self._exception: BaseException | None = None  # what failed it (on_job_end hooks)
        if self._has_post_init:  # a subclass's dataclass-style hook
            self.__post_init__()

    # A subclass may define ``__post_init__`` (calling ``super().__post_init__()``) as with
    # the generated __init__; the base class's is empty and is not called.
    _has_post_init = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._has_post_init = cls.__post_init__ is not JobContext.__post_init__

    def __post_init__(self) -> None:
        """Nothing to do here (``__init__`` sets everything): the hook for subclasses."""

    def _attach(self, owner: JobOwner, timeout_s: float) -> None:
        """A runtime takes this job on in ``post``: ``owner`` finishes it, by ``timeout_s``
        at the latest."""
        self._in_post = True
        self._owner = owner
        self._timeout = timeout_s
        self._posted_ns = time.monotonic_ns()

    # -- data ---------------------------------------------------------------------------
    def set_data(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` in this job's data (visible to every branch)."""
        with self._lock:
            self.data[key] = value

    def get_data(self, key: str, default: Any = None) -> Any:
        """The job data under ``key``, else ``default`` (metadata is not consulted)."""
        with self._lock:
            return self.data.get(key, default)

    def trace(self, routine_id: str, action: str, details: dict[str, Any] | None = None) -> None:
        """Append a ``{timestamp, routine_id, action, details}`` entry to ``trace_log``."""
        entry = {
            "timestamp": datetime.now().isoformat(),
            "routine_id": routine_id,
            "action": action,
            "details": dict(details) if details else {},
        }
        with self._lock:
            self.trace_log.append(entry)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    def start(self) -> None:
        """Mark the job running (the runtime does this when it is posted)."""
        with self._lock:
            if self.status == JobStatus.PENDING:
                self.status = JobStatus.RUNNING.value

    def complete(self, status: str = "completed", error: str | None = None) -> bool:
        """Finish the job with ``status``; only the first terminal transition counts.

        Returns:
            True if this call finished the job, False if it was already finished.

        Raises:
            ValueError: ``status`` is not a terminal status.
        """
        status = str(status.value if isinstance(status, JobStatus) else status)
        if status not in TERMINAL_JOB_STATUSES:
            raise ValueError(
                f"cannot complete job {self.job_id!r} with status {status!r}; "
                f"valid: {_VALID_TERMINAL}"
            )
        owner = self._owner
        if owner is not None:
            return owner.finish(self, status, error)
        return self._mark_terminal(status, error)

    def _mark_terminal(self, status: str, error: str | None) -> bool:
        with self._lock:
            if self.status in TERMINAL_JOB_STATUSES:
                return False
            self.status = status
            self.error = error
            self.completed_at = datetime.now()
            done = self._done
            callbacks, self._callbacks = self._callbacks, None
        release_gate(done)
        if callbacks:
            for cb in callbacks:
                call_done_callback(cb, self)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is terminal; True if it is, False after ``timeout`` seconds."""
        with self._lock:
            if self.status in TERMINAL_JOB_STATUSES:
                return True
            if self._done is None:
                gate = _allocate_lock()
                gate.acquire()
                self._done = gate
            done = self._done
        # In slices that re-check the status: the gate opens after the transition, and
        # an interrupt in the finishing thread may come in between (issue 13).
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if done.acquire(True, _WAIT_SLICE_S if deadline is None
                            else max(min(deadline - time.monotonic(), _WAIT_SLICE_S), 0)):
                done.release()  # open for every other waiter too
                return True
            if self.status in TERMINAL_JOB_STATUSES:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def add_done_callback(self, fn: Callable[[JobContext], None]) -> None:
        """Call ``fn(job)`` once the job is terminal (at once if it already is)."""
        with self._lock:
            if self.status not in TERMINAL_JOB_STATUSES:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        call_done_callback(fn, self)

    def __await__(self):
        """``await job`` in a notebook cell or coroutine waits without blocking the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobContext] = loop.create_future()

        def _resolve(job: JobContext) -> None:
            def _set() -> None:
                if not future.done():
                    future.set_result(job)

            loop.call_soon_threadsafe(_set)

        self.add_done_callback(_resolve)
        return future.__await__()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "job_id": self.job_id,
                "worker_id": self.worker_id,
                "flow_id": self.flow_id,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "completed_at": self.completed_at.isoformat() if self.completed_at else None,
                "metadata": dict(self.metadata),
                "data": dict(self.data),
                "trace_log": list(self.trace_log),
                "status": getattr(self.status, "value", self.status),
                "error": self.error,
            }

    def __repr__(self) -> str:
        return f"<JobContext {self.job_id} status={self.status}>"


def call_done_callback(fn: Callable[[JobContext], None], job: JobContext) -> None:
    """Run one done-callback; one that raises is logged and the rest still run.

    As ``concurrent.futures.Future`` does: a callback runs inside the runtime's finish step
    (on a pool thread), so an exception escaping it would leave the job terminal but still
    counted as running, and ``wait_until_all_jobs_finished()`` would never return.
    """
    try:
        fn(job)
    except Exception:
        logger.exception("routilux: a done-callback of job %s raised; it was skipped", job.job_id)
