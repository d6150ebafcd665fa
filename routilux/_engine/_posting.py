"""Posting: one ``Runtime.post`` turned into a registered, delivered, settled job.

The steps (``post_job``): create the job once the slot has room, register it (counted
as running, held in flight by its post) under the slot's lock, deliver the item (policy
and scheduling run in this thread), then hand post's own hold on (``JobTable.settle_post``).
A bounded run queue makes post wait for room first (``wait_for_room``).

The fast path (the built-in immediate policy, a generated job id, no tracer, hooks or
routed output: most posts) creates the job before taking the slot's lock and registers it
in the same locked step that queues its first activation (``_Worker.deliver_posted``,
``JobTable.register_and_queue``): one pool-lock acquisition per post, and post's own hold
is never taken, since the activation holds the job from the moment it is registered.

Interrupt safety (issue 13, docs/interrupts.md): the job is registered, counted and held
in one locked run of plain statements, so an exception anywhere before it leaves nothing
behind, and anything raised after it (a KeyboardInterrupt in this thread, a fault of
ours) ends the job "cancelled" or "failed" and reaches the caller. post's own hold passes
to the first activation its delivery schedules, else to the bookkeeping step that
finishes the job after post returns, so the job cannot finish (or be counted twice) in
between. On the fast path an interrupt before the locked step leaves an unregistered job
object (its item consumed from the slot, never run): not created, as far as the runtime
and the caller can tell; after it, the job is cancelled like any other.
"""

from __future__ import annotations

import math
import os
import random
import time
from _thread import allocate_lock as _allocate_lock
from functools import partial as _partial
from typing import TYPE_CHECKING, Any

from .._errors import QueueFullError, RuntimeShutDown, WorkerNotRunningError, error_text
from .._model import _hooks, _output
from .._model._job import JobContext, release_gate
from .._model._status import JobStatus
from .._validate import check_number
from ._jobs import WAIT_SLICE_S
from ._tasks import _Callback

if TYPE_CHECKING:
    from .._model._flow import Flow
    from ._worker import _Worker

# The runtime (``_runtime.Runtime``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
Runtime = Any

RUNNING = JobStatus.RUNNING.value
CANCELLED = JobStatus.CANCELLED.value
FAILED = JobStatus.FAILED.value
POST_INTERRUPTED = "cancelled: interrupted (KeyboardInterrupt) while posting"


def wait_for_room(rt: Runtime, block: bool, timeout: float | None) -> None:
    """With ``max_queue_size`` set: wait until the run queue has room, or raise."""
    pool = rt._pool
    limit = rt.max_queue_size
    assert limit is not None
    with rt._lock:
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
    # inside Condition.wait could leave that lock released by a non-owner; see JobTable.wait).
    while True:
        gate = _allocate_lock()
        gate.acquire()
        with rt._lock:
            if rt._shut_down:  # woken by shutdown, which also emptied the queue
                raise RuntimeShutDown("Runtime is shut down")
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
            with rt._lock:
                pool.drop_room_gate_locked(gate)


def check_names(flow: Flow, routine_name: str, slot_name: str) -> None:
    """Raise ValueError naming the choices unless ``flow`` has ``routine_name.slot_name``."""
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


def target(rt: Runtime, flow: Flow, routine_name: str, slot_name: str,
           worker_id: str | None) -> tuple[_Worker, Flow]:
    """The worker a post goes to, and the flow it runs (names checked by ``check_names``).

    Without ``worker_id``: the flow's default worker in ``rt`` (a new one if none accepts
    work). With it: that worker, whose own flow may be an older one under the same id.

    Raises:
        ValueError: an unknown worker, a worker of another flow, or an older flow of the
            worker's that lacks the routine or slot.
        WorkerNotRunningError: the worker accepts no more jobs.
    """
    if worker_id is not None:
        worker = rt._workers.get(worker_id)
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
        worker = rt._default_workers.get(id(flow))
        if worker is None or not worker.accepting:
            worker = rt._new_worker(flow, None)
    return worker, flow


def post_job(rt: Runtime, worker: _Worker, flow: Flow, rid: str, slot_name: str, data: dict,
             job_id: str | None, metadata: Any) -> JobContext:
    """Create, register and deliver one job (see the module docstring)."""
    box: list[JobContext] = []
    table = rt._table
    plan = worker.plan(rid)
    try:
        if (job_id is None and plan.immediate and plan.logic is not None
                and rt._tracer is None and _hooks.active is None and _output.routed is None):
            # The fast path: the built-in immediate policy, a generated id, nothing
            # watching. The job is created first (outside the routine's lock) and
            # registered together with its first activation (``deliver_posted``).
            job = JobContext(new_job_id(), worker.state.worker_id, flow.flow_id,
                             metadata=dict(metadata) if metadata else {})  # new_job, inlined
            job._attach(table, flow.execution_timeout)
            box.append(job)  # first: post's handler must see any job that may be registered
            worker.deliver_posted(plan, slot_name, data, job)
        else:
            # A partial of a module function, not a closure: a closure over these names
            # made a cell object per name, a function and its closure tuple on every post.
            worker.deliver(rid, slot_name, data, None, None, on_accept=_partial(
                _accept, rt, worker, flow, rid, slot_name, job_id, metadata, box))
            job = box[0]
        rt._monitor.add_deadline(job._timeout, job)
        if job._post_hold or job._deferred_failure is not None:
            table.settle_post(worker, job, _Callback)
        else:
            # settle_post's common case, inlined (the same plain statements, see there):
            # the first activation took post's hold over and nothing failed.
            job._in_post = False
            if not job._pending:
                table.settle_post(worker, job, _Callback)
    except Exception as exc:
        if box and box[0]._counted:  # a fault after registering: it fails, caller learns
            abort_post(rt, worker, box[0], exc)
        raise  # else nothing was created (a full slot, a bad job_id)
    except BaseException:
        # KeyboardInterrupt / SystemExit: cancel the job in one locked run of plain
        # statements, entered without a call, so a second interrupt (a Ctrl-C storm)
        # cannot land between "running" and "cancelled" or leave the hold behind. Hence
        # inline here, on the table's plain fields, and not a JobTable method.
        if box:
            job = box[0]
            counts = table.counts
            with table.lock:
                if job.status == RUNNING:
                    job.status = CANCELLED
                    job.error = POST_INTERRUPTED
                    counts[RUNNING] -= 1
                    counts[CANCELLED] += 1
                    job._tally_pending = True  # after_abort finishes the rest
                job._in_post = False
                if job._post_hold:
                    job._post_hold = False
                    job._pending -= 1
                    worker.inflight -= 1
                    table.inflight -= 1
            table.after_abort(job)
        raise
    return job


def new_job(rt: Runtime, worker: _Worker, flow: Flow, job_id: str | None,
            metadata: Any) -> JobContext:
    """A new job of ``flow`` on ``worker``, taken on by ``rt`` but not yet registered."""
    job = JobContext(
        job_id=job_id or new_job_id(), worker_id=worker.state.worker_id, flow_id=flow.flow_id,
        metadata=dict(metadata) if metadata else {},
    )
    job._attach(rt._table, flow.execution_timeout)
    return job


def _accept(rt: Runtime, worker: _Worker, flow: Flow, rid: str, slot_name: str,
            job_id: str | None, metadata: Any, box: list[JobContext]) -> JobContext:
    """post's ``on_accept``: create and register the job (the slot has room; called by
    ``deliver`` under the routine's lock, so a full slot registers nothing)."""
    job = new_job(rt, worker, flow, job_id, metadata)
    box.append(job)  # first: post's handler must see any job that may be registered
    rt._table.register(worker, job)
    ws = worker.state
    tr = rt._tracer
    if tr is not None:
        tr.record("job.posted", job.job_id, rid, slot_name, None, None, ws.worker_id)
    hooks = _hooks.active
    if hooks is not None:
        _hooks.call(hooks, "on_job_start", job, ws)
    if _output.routed is not None:
        _output.routed.note_origin(job)
    return job


def abort_post(rt: Runtime, worker: _Worker, job: JobContext, exc: BaseException) -> None:
    """post raised after registering ``job``: finish the job and drop post's own hold.

    A KeyboardInterrupt (or SystemExit) cancels the job; any other exception fails it.
    Every step is idempotent and the whole is retried through further interrupts (a
    Ctrl-C storm), so the job always ends terminal and nothing stays in flight; the
    caller re-raises the first exception.
    """
    if isinstance(exc, Exception):
        status, error = FAILED, f"{error_text(exc)} (raised while posting)"
    else:
        status, error = CANCELLED, f"cancelled: {type(exc).__name__} while posting"
    job._in_post = False
    table = rt._table
    while True:
        try:
            table.finish(job, status, error)
            table.drop_post_hold(worker, job)
            release_gate(job._done)  # an interrupted finish may not have got this far
            return
        except BaseException:  # noqa: BLE001, S112 - the first exception is re-raised by post
            continue


def new_job_id() -> str:
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
