"""WorkerPool: threads taking tasks from one FIFO run queue; resizable while running.

Design (the invariants the runtime relies on):
- One lock guards the run queue, the busy/idle counts and the map of running tasks, so
  ``statistics()`` is exact, and the runtime does its per-task bookkeeping under the same
  lock in the same acquisition that hands the thread its next task (one lock round trip
  per task on the worker side).
- A thread takes a task only while the number of live threads does not exceed the size;
  after ``resize(n)`` down, surplus threads exit as soon as they finish their current
  task, so no task *starts* while more than ``n`` threads are busy.
- Threads are spawned lazily, when a task arrives and no thread is idle, up to the size.
- Threads hold the pool, never the runtime; tasks carry what they need.
- An idle thread parks on a lock of its own; a submitter pops one parked lock under the
  pool lock and releases it *after* unlocking. Critical sections stay short and free of
  Python-level calls where possible: under the GIL, a thread preempted while holding the
  pool lock makes every other thread queue behind it for a whole switch interval.

Rejected: ``ThreadPoolExecutor`` (its queue is private, so depth and waits would be
guesses, and it cannot shrink), and sentinel-based shrinking (a sentinel waits behind the
whole queue, so a shrink would take effect only after a drain).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("routilux")

MAX_REASONABLE_POOL = 1000


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


class WorkerPool:
    """A resizable pool of daemon threads over one FIFO run queue."""

    def __init__(self, size: int, name_prefix: str = "RoutiluxWorker") -> None:
        self._size = check_pool_size(size, allow_zero=False)
        self._prefix = name_prefix
        self.lock = threading.Lock()
        self._parked: list[Any] = []  # park locks of idle threads (LIFO: warm threads first)
        self._waking = 0  # threads woken but not yet back under the lock
        self.room = threading.Condition(self.lock)  # bounded posts wait here
        self.room_waiters = 0
        self.tasks: deque[Any] = deque()
        self.running: dict[int, Any] = {}  # thread ident -> task
        # thread ident -> the task its running logic triggered while no thread was idle;
        # the thread runs it next (see _Worker.schedule). Counted as queued.
        self.next_tasks: dict[int, Any] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._alive = 0
        self._busy = 0
        self._completed = 0
        self._closed = False
        self._names = itertools.count(1)

    # -- submission (callers may hold ``lock`` and use the *_locked variant) ------------
    def submit(self, task: Any) -> None:
        with self.lock:
            waker = self.submit_locked(task)
        if waker is not None:
            waker.release()

    def submit_locked(self, task: Any, front: bool = False) -> Any:
        """Queue ``task`` (lock held); returns a park lock the caller releases after unlocking.

        ``front`` puts it ahead of everything queued (a running job's next step).
        """
        if self._closed:
            raise RuntimeError("cannot submit to a pool after shutdown")
        if front:
            self.tasks.appendleft(task)
        else:
            self.tasks.append(task)
        if self._parked:
            # One wake in flight at a time: the woken thread wakes the next one if work
            # is still queued when it arrives, so a burst of short tasks does not wake
            # every idle thread only for most of them to find the queue drained.
            if self._waking:
                return None
            self._waking += 1
            return self._parked.pop()
        if self._alive < self._size:
            self._spawn_locked()
        return None

    def wake_one_for_next(self) -> None:
        """Wake a parked thread (if any, and none is already on its way) to steal a next task."""
        with self.lock:
            if not self._parked or self._waking or not self.next_tasks:
                return
            self._waking += 1
            waker = self._parked.pop()
        waker.release()

    def _wake_all_locked(self) -> list[Any]:
        parked, self._parked = self._parked, []
        self._waking += len(parked)
        return parked

    def _spawn_locked(self) -> None:
        self._alive += 1
        t = threading.Thread(
            target=_work, args=(self,), name=f"{self._prefix}-{next(self._names)}", daemon=True
        )
        t.start()
        self._threads[t.ident] = t  # type: ignore[index]

    # -- sizing -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._size

    def resize(self, size: int) -> int:
        """Set the size; returns the old one. Takes effect while tasks run."""
        size = check_pool_size(size, allow_zero=False)
        wake: list[Any] = []
        with self.lock:
            old, self._size = self._size, size
            if size > old:
                backlog = len(self.tasks) - len(self._parked)
                for _ in range(min(backlog, size - self._alive)):
                    self._spawn_locked()
            else:
                wake = self._wake_all_locked()  # surplus idle threads exit
        for park in wake:
            park.release()
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

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self, timeout: float | None = 5.0) -> list[Any]:
        """Stop taking tasks; returns the tasks that never started. Joins the threads."""
        with self.lock:
            self._closed = True
            abandoned = list(self.tasks)
            self.tasks.clear()
            wake = self._wake_all_locked()
            self.room.notify_all()
            threads = list(self._threads.values())
        for park in wake:
            park.release()
        me = threading.current_thread()
        for t in threads:
            if t is not me:
                t.join(timeout)
        return abandoned

    def thread_names(self) -> dict[int, str]:
        with self.lock:
            return {ident: t.name for ident, t in self._threads.items()}

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<WorkerPool size={s.size} busy={s.busy} queued={s.queued}>"


def _work(pool: WorkerPool) -> None:
    """The worker loop: settle the last task's bookkeeping, take the next, run it."""
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
        waker: Any = None
        exiting = parking = False
        with lock:
            if woken:
                pool._waking -= 1
                woken = False
            if task is not None:
                pool._busy -= 1
                pool._completed += 1
                del running[me]
                follow = next_tasks.pop(me, None)
                if follow is not None:
                    follow.hold_locked()  # before the parent's release: the job stays open
                finished = task.done_locked()
                task = None
                if follow is not None:
                    if finished is None and pool._alive <= pool._size:
                        task = follow  # run it next, without a queue round trip
                        pool._busy += 1
                        running[me] = task
                    else:
                        tasks.appendleft(follow)
            # A job finished: settle it outside the lock first, then come back for work.
            if finished is None and task is None:
                if pool._alive > pool._size or (pool._closed and not tasks):
                    pool._alive -= 1
                    pool._threads.pop(me, None)
                    exiting = True
                    if tasks and pool._parked:  # e.g. a next task handed back on a shrink
                        pool._waking += 1
                        waker = pool._parked.pop()
                elif tasks:
                    task = tasks.popleft()
                    pool._busy += 1
                    running[me] = task
                    if tasks and pool._parked and not pool._waking:
                        pool._waking += 1
                        waker = pool._parked.pop()
                    if pool.room_waiters:
                        pool.room.notify()
                elif next_tasks:
                    # Steal an activation waiting for a busy thread: that thread's logic
                    # may block until this very activation has run (emit, then wait).
                    task = next_tasks.popitem()[1]
                    task.hold_locked()
                    pool._busy += 1
                    running[me] = task
                else:
                    pool._parked.append(park)
                    parking = True
        if finished is not None:
            try:
                finished[0](finished[1])  # (callback, arg) from done_locked, run unlocked
            except Exception:  # our machinery: never kill a worker thread
                logger.exception("routilux: error finishing a job; this is a bug in routilux")
            continue
        if parking:
            park.acquire()
            woken = True
            continue
        if waker is not None:
            waker.release()
        if exiting:
            return
        try:
            task.run()
        except BaseException:  # task.run handles user errors; this is our own fault
            logger.exception("routilux: task machinery failed; this is a bug in routilux")
