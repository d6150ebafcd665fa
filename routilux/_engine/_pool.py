"""ThreadPool: pool threads taking tasks from one FIFO run queue; resizable while running.

Vocabulary: a *worker* is a live flow instance (``WorkerState``, upstream's word); the
threads here are *pool threads*, named ``RoutiluxThread-<n>`` (``POOL_THREAD_PREFIX``,
documented in docs/trace_events.md as the pool lane's name).

Design (the invariants the runtime relies on):
- One lock guards the run queue, the busy/idle counts and the map of running tasks, so
  ``statistics()`` is exact, and the runtime does its per-task bookkeeping under the same
  lock in the same acquisition that hands the thread its next task (one lock round trip
  per task on the thread's side).
- A thread takes a task only while the number of live threads does not exceed the size;
  after ``resize(n)`` down, surplus threads exit as soon as they finish their current
  task, so no task *starts* while more than ``n`` threads are busy.
- Threads are spawned lazily, when a task arrives and no thread is idle, up to the size.
- Threads hold the pool, never the runtime; tasks carry what they need.
- An idle thread parks on a lock of its own; a submitter pops one parked lock and releases
  it under the pool lock. Critical sections stay short and free of Python-level calls
  where possible: under the GIL, a thread preempted while holding the pool lock makes
  every other thread queue behind it for a whole switch interval.
- Interrupt safety (issue 13): a KeyboardInterrupt can be raised in the submitting thread
  (the notebook's, a script's main thread) at any call or loop back-edge, never inside a
  run of plain attribute and arithmetic statements. So each bookkeeping step is such a
  run, ending in at most one C call; a wake-up is released in the same locked step that
  pops it; a spawn interrupted inside ``Thread.start`` finds out whether the thread
  started. Parked threads also re-check the queue every ``PARK_RECHECK_S``, so a
  wake-up lost anyway (an interrupt between pop and release) costs a delay, not a stall.

Rejected: ``ThreadPoolExecutor`` (its queue is private, so depth and waits would be
guesses, and it cannot shrink), and sentinel-based shrinking (a sentinel waits behind the
whole queue, so a shrink would take effect only after a drain).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from _thread import get_ident as _get_ident
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from ..trace import POOL_THREAD_PREFIX

logger = logging.getLogger("routilux")

MAX_REASONABLE_POOL = 1000
SHARED_POOL_SIZE = 100  # threads of the process-wide pool used by Runtime(thread_pool_size=0)
PARK_RECHECK_S = 1.0  # seconds an idle thread sleeps before re-checking the run queue
SPAWN_CONFIRM_S = 2.0  # seconds an interrupted spawn waits to learn if its thread started


class PoolTask(Protocol):
    def run(self) -> None: ...

    def done_locked(self) -> Any: ...


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of a pool: ``size`` set, live ``threads``, ``busy``, ``idle``, ``queued``."""

    size: int
    threads: int
    busy: int
    idle: int
    queued: int
    completed: int


def check_pool_size(size: Any, *, allow_zero: bool) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"thread_pool_size must be an int, got {size!r}")
    low = 0 if allow_zero else 1
    if size < low:
        raise ValueError(
            f"thread_pool_size must be >= {low}, got {size}"
            + (" (0 = the shared 100-thread pool)" if allow_zero else "")
        )
    if size > MAX_REASONABLE_POOL:
        logger.warning("thread_pool_size=%d is very large; threads cost memory", size)
    return size


class ThreadPool:
    """A resizable pool of daemon threads over one FIFO run queue."""

    def __init__(self, size: int, name_prefix: str = POOL_THREAD_PREFIX) -> None:
        self._size = check_pool_size(size, allow_zero=False)
        self._prefix = name_prefix
        self.lock = threading.Lock()
        self._parked: list[Any] = []  # park locks of idle threads (LIFO: warm threads first)
        self._waking = 0  # threads woken but not yet back under the lock
        # Bounded posts waiting for room: one raw lock each, released (under the pool lock)
        # when a task leaves the queue. ``room_waiters`` is their number.
        self._room_gates: list[Any] = []
        self.room_waiters = 0
        self.tasks: deque[Any] = deque()
        self.running: dict[int, Any] = {}  # thread ident -> task
        # thread ident -> the task its running logic triggered while no thread was idle;
        # the thread runs it next (see offer_next). Counted as queued.
        self.next_tasks: dict[int, Any] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._alive = 0
        self._busy = 0
        self._completed = 0
        self.closed = False  # a plain field (read on hot paths); only the pool writes it
        self._names = itertools.count(1)

    # -- submission (callers may hold ``lock`` and use the *_locked variant) ------------
    def submit(self, task: Any) -> None:
        with self.lock:
            self.submit_locked(task)

    def submit_locked(self, task: Any, front: bool = False) -> None:
        """Queue ``task`` and wake or start a thread for it (lock held).

        ``front`` puts it ahead of everything queued (a running job's next step).
        """
        if self.closed:
            raise RuntimeError("cannot submit to a pool after shutdown")
        if front:
            self.tasks.appendleft(task)
        else:
            self.tasks.append(task)
        self.wake_locked()

    def wake_locked(self) -> None:
        """Wake a parked thread, or start one, for queued work (lock held)."""
        if self._parked:
            # One wake in flight at a time: the woken thread wakes the next one if work
            # is still queued when it arrives, so a burst of short tasks does not wake
            # every idle thread only for most of them to find the queue drained.
            if not self._waking:
                self._waking += 1
                self._parked.pop().release()
        elif self._alive < self._size:
            self._spawn_locked()

    def wake_one_for_next(self) -> None:
        """Wake a parked thread (if any, and none is already on its way) to steal a next task."""
        with self.lock:
            if not self._parked or self._waking or not self.next_tasks:
                return
            self._waking += 1
            self._parked.pop().release()

    def offer_next(self, task: Any) -> tuple[bool, Any]:
        """Keep ``task`` as the calling pool thread's next task, if the pool is full.

        For logic that emits while no thread is idle (see ``_Worker.schedule``). Returns
        ``(kept, displaced)``: ``kept`` False means queue it the usual way (the caller is
        not a pool thread, or a thread is idle or may still be spawned); ``displaced`` is
        the earlier next task of this thread (the caller queues it at the front). Called
        without the lock; ``depth()`` is the queue depth for the trace.
        """
        # Only when the pool is full: with room for another thread, spawn it, or a logic
        # that emits and then waits for its downstream would wait for itself.
        if self._parked or self._alive < self._size:
            return False, None
        me = _get_ident()
        if me not in self._threads:
            return False, None
        nexts = self.next_tasks
        # pop, not get: an idle thread may steal the entry meanwhile (_thread_loop), and
        # whoever pops a task owns it, so it never runs twice.
        previous = nexts.pop(me, None)
        nexts[me] = task  # held (counted in flight) when a thread picks it up
        # A thread may have parked since we looked. If the pool lock is free and nobody
        # is parked, any thread that parks later sees the entry first and steals it
        # instead; otherwise wake one to steal it.
        if self._parked or self.lock.locked():
            self.wake_one_for_next()
        return True, previous

    def depth(self) -> int:
        """Tasks waiting: the run queue and the threads' next tasks (for the trace)."""
        return len(self.tasks) + len(self.next_tasks)

    def repair_wake_locked(self) -> None:
        """After an interrupt inside a wake-up: make sure queued work has a thread coming.

        Retries through further interrupts (a Ctrl-C storm); the caller re-raises the first.
        """
        while True:
            try:
                if self.tasks and not self._waking and not self.closed:
                    self.wake_locked()
                return
            except BaseException:  # noqa: BLE001, S112 - the caller re-raises the first
                continue

    def close_from_finalizer(self) -> None:
        """Stop taking tasks and wake every parked thread so it exits; joins nothing.

        For a private runtime garbage-collected without ``shutdown`` (its finaliser).
        """
        with self.lock:
            self.closed = True
            self._wake_all_locked()

    def _wake_all_locked(self) -> None:
        parked, self._parked = self._parked, []
        self._waking += len(parked)
        for park in parked:
            park.release()

    def add_room_gate_locked(self, gate: Any) -> None:
        self._room_gates.append(gate)
        self.room_waiters = len(self._room_gates)

    def drop_room_gate_locked(self, gate: Any) -> None:
        if gate in self._room_gates:
            self._room_gates.remove(gate)
        self.room_waiters = len(self._room_gates)

    def wake_room_locked(self, everyone: bool = False) -> None:
        """Wake the oldest post waiting for room (or all of them); lock held."""
        gates = self._room_gates
        while gates:
            gates.pop(0).release()
            if not everyone:
                break
        self.room_waiters = len(gates)

    def _spawn_locked(self) -> None:
        started = threading.Event()
        t = threading.Thread(
            target=_thread_loop, args=(self, started),
            name=f"{self._prefix}-{next(self._names)}", daemon=True,
        )
        self._alive += 1  # reserved before start: a thread that starts is already counted
        try:
            t.start()
        except BaseException:
            # Interrupted inside Thread.start (a Ctrl-C in the submitting thread): the OS
            # thread may or may not exist. It sets ``started`` first thing; if it never
            # does, give the reservation back, or the pool would wait for a ghost.
            if not _wait_uninterrupted(started, SPAWN_CONFIRM_S):
                self._alive -= 1
            raise
        self._threads[t.ident] = t  # type: ignore[index]

    # -- sizing -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._size

    def resize(self, size: int) -> int:
        """Set the size; returns the old one. Takes effect while tasks run."""
        size = check_pool_size(size, allow_zero=False)
        with self.lock:
            old, self._size = self._size, size
            if size > old:
                backlog = len(self.tasks) - len(self._parked)
                for _ in range(min(backlog, size - self._alive)):
                    self._spawn_locked()
            else:
                self._wake_all_locked()  # surplus idle threads exit
        return old

    def statistics(self) -> PoolStatistics:
        with self.lock:
            return self.statistics_locked()

    def statistics_locked(self) -> PoolStatistics:
        return PoolStatistics(
            size=self._size, threads=self._alive, busy=self._busy,
            idle=self._alive - self._busy, queued=len(self.tasks) + len(self.next_tasks),
            completed=self._completed,
        )

    def shutdown(self, timeout: float | None = 5.0) -> list[Any]:
        """Stop taking tasks; returns the tasks that never started.

        Joins the threads for at most ``timeout`` seconds *in total* (one deadline for
        all of them; ``0`` joins none, ``None`` waits for all). A thread stuck in logic
        is left running (it is a daemon) once the budget is spent.
        """
        with self.lock:
            self.closed = True
            abandoned = list(self.tasks)
            self.tasks.clear()
            self._wake_all_locked()
            self.wake_room_locked(everyone=True)
            threads = list(self._threads.values())
        if timeout is not None and timeout <= 0:
            return abandoned
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.current_thread()
        for t in threads:
            if t is me:
                continue
            if deadline is None:
                t.join()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            t.join(remaining)
        return abandoned

    def thread_names(self) -> dict[int, str]:
        with self.lock:
            return {ident: t.name for ident, t in self._threads.items()}

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<ThreadPool size={s.size} busy={s.busy} queued={s.queued}>"


def _wait_uninterrupted(event: threading.Event, timeout: float) -> bool:
    """``event.wait(timeout)`` that a further interrupt does not cut short (repair paths)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return event.wait(max(deadline - time.monotonic(), 0.0))
        except BaseException:  # noqa: BLE001, S112 - the caller re-raises the first
            continue


def _thread_loop(pool: ThreadPool, started: threading.Event) -> None:
    """One pool thread: settle the last task's bookkeeping, take the next, run it."""
    started.set()  # first: an interrupted spawner waits for this (see _spawn_locked)
    pool._threads[threading.get_ident()] = threading.current_thread()  # even if it could not
    lock = pool.lock
    tasks = pool.tasks
    running = pool.running
    next_tasks = pool.next_tasks
    me = threading.get_ident()
    park = threading.Lock()
    park.acquire()  # held = not signalled; a submitter's release() wakes us
    task: Any = None
    woken = False
    while True:
        finished: Any = None
        exiting = parking = False
        with lock:
            if woken is None:
                # Re-check after PARK_RECHECK_S without a wake: if a waker popped our park
                # but never released it (interrupted in between), that wake is ours.
                if park in pool._parked:
                    pool._parked.remove(park)
                else:
                    # Popped by a waker. Wakes are released under this lock, so it either
                    # happened since our timeout (consume it, or the next park would
                    # return at once) or never will.
                    park.acquire(False)
                    pool._waking -= 1
                woken = False
            elif woken:
                pool._waking -= 1
                woken = False
            # ``busy``: this thread is counted in ``_busy`` and ``running``. The counts are
            # settled once at the end of the step, so a thread going from one task to the
            # next (the common case) leaves them as they are.
            busy = task is not None
            if busy:
                pool._completed += 1
                follow = next_tasks.pop(me, None)
                if follow is None:
                    finished = task.done_locked()
                else:
                    # The follow's hold comes before the parent's release, so the job stays
                    # open; a task that can tell both cancel out does both at once.
                    handoff = getattr(task, "handoff_locked", None)
                    if handoff is None:
                        follow.hold_locked()
                        finished = task.done_locked()
                    else:
                        finished = handoff(follow)
                task = None
                if follow is not None:
                    if pool._alive <= pool._size:
                        task = follow  # run it next, without a queue round trip
                    else:
                        tasks.appendleft(follow)
            # The next task is taken in this same acquisition (one pool-lock round trip per
            # task), except when a job finished: ``finished`` (the unlocked rest of its
            # finish: gate, done-callbacks, on_job_end hooks) runs user code, which may wait
            # for work still queued; a task taken here would be held by this very thread
            # while another one sits idle. So the thread finishes the job, then comes back.
            if task is None:
                if pool._alive > pool._size or (pool.closed and not tasks):
                    pool._alive -= 1
                    pool._threads.pop(me, None)
                    exiting = True
                    if tasks and pool._parked:  # e.g. a next task handed back on a shrink
                        pool._waking += 1
                        pool._parked.pop().release()
                elif finished is not None:
                    pass  # back for work once the finish has run (see above)
                elif tasks:
                    task = tasks.popleft()
                    if tasks and pool._parked and not pool._waking:
                        pool._waking += 1
                        pool._parked.pop().release()  # under the lock: see PARK_RECHECK_S
                    if pool.room_waiters:
                        pool.wake_room_locked()
                elif next_tasks:
                    # Steal an activation waiting for a busy thread: that thread's logic
                    # may block until this very activation has run (emit, then wait).
                    task = next_tasks.popitem()[1]
                    task.hold_locked()
                else:
                    pool._parked.append(park)
                    parking = True
            if task is not None:
                running[me] = task
                if not busy:
                    pool._busy += 1
            elif busy:
                pool._busy -= 1
                del running[me]
        if finished is not None:
            try:
                finished[0](finished[1])  # (callback, arg) from done_locked, run unlocked
            except Exception:  # our machinery: never kill a pool thread
                logger.exception("routilux: error finishing a job; this is a bug in routilux")
        if parking:
            woken = True if park.acquire(True, PARK_RECHECK_S) else None
            continue
        if exiting:
            return
        if task is None:  # a job finished: take the next task in a new acquisition
            continue
        try:
            task.run()
        except BaseException as exc:  # task.run handles user errors; this is our own fault
            logger.exception("routilux: task machinery failed; this is a bug in routilux")
            failed = getattr(task, "machinery_failed", None)
            if failed is not None:
                try:
                    failed(exc)  # never let the job look "completed" after this
                except BaseException:
                    logger.exception("routilux: could not fail the job of a broken task")


# ---------------------------------------------------------------------------------------
# The process-wide shared pool (thread_pool_size=0).
# ---------------------------------------------------------------------------------------
class WorkerManager:
    """Owner of the process-wide pool shared by every ``Runtime(thread_pool_size=0)``."""

    def __init__(self, max_workers: int = SHARED_POOL_SIZE) -> None:
        self.max_workers = max_workers
        self.thread_pool = ThreadPool(max_workers, name_prefix=f"{POOL_THREAD_PREFIX}-shared")

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
