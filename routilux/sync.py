"""Named locks and a semaphore that trace their waits and find deadlocks.

``TracedLock``, ``TracedRLock`` and ``TracedSemaphore`` are drop-ins for ``threading``'s
(context manager, ``acquire(blocking=True, timeout=-1) -> bool``, ``release()``,
``locked()``), with a name used in trace events and error messages.

What they guarantee:
- An uncontended acquire takes the inner ``threading`` primitive without blocking and notes
  the owner; it records nothing and never touches a shared structure.
- A contended acquire records ``lock.wait``, then ``lock.acquired`` (value: seconds waited)
  and, at the matching release, ``lock.released`` (value: seconds held); or ``lock.timeout``
  (value: seconds waited) when ``timeout`` runs out. Events go to the ``tracer=`` given,
  else to the tracer of the current runtime (``routilux._context.current_tracer``); with
  neither, nothing is recorded but deadlocks are still found.
- While it waits, a thread is in the process-wide wait-for graph and looks for a cycle
  through itself every ``WAIT_SLICE`` seconds. A cycle is recorded once as
  ``deadlock.detected``; with the action "raise" (default) the thread that found it raises
  ``DeadlockError`` from ``acquire`` and the others go on once it releases its locks.
- Unlike ``threading.Lock``, a ``TracedLock`` may only be released by the thread that holds
  it, so that the owner the deadlock finder relies on is true. A semaphore, as in
  ``threading``, may be released by any thread.
"""

from __future__ import annotations

import logging
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from . import _context
from ._deadlock import Waiter, WaitForGraph
from ._errors import DeadlockError
from ._validate import check_number

if TYPE_CHECKING:
    from .trace import Tracer

__all__ = [
    "DeadlockError",
    "TracedLock",
    "TracedRLock",
    "TracedSemaphore",
    "get_deadlock_action",
    "set_deadlock_action",
]

WAIT_SLICE = 0.05  # seconds a contended acquire waits before it looks for a deadlock again

DeadlockAction = Literal["raise", "report"]
_DEADLOCK_ACTIONS: tuple[str, ...] = ("raise", "report")
_deadlock_action: str = "raise"

_graph = WaitForGraph()
_get_ident = threading.get_ident
_logger = logging.getLogger("routilux")


def set_deadlock_action(action: DeadlockAction) -> None:
    """Choose what a found deadlock does, for the whole process.

    Args:
        action: "raise" (default): one thread of the cycle raises ``DeadlockError`` and the
            others proceed once it releases its locks. "report": the cycle is recorded as a
            ``deadlock.detected`` trace event (once per cycle) and the threads keep waiting;
            a ``timeout=`` still ends a wait.

    Raises:
        ValueError: ``action`` is not one of the choices.
    """
    global _deadlock_action
    if not isinstance(action, str) or action not in _DEADLOCK_ACTIONS:
        choices = ", ".join(repr(a) for a in _DEADLOCK_ACTIONS)
        raise ValueError(f"deadlock action must be one of {choices}; got {action!r}")
    _deadlock_action = action


def get_deadlock_action() -> DeadlockAction:
    """The action set by ``set_deadlock_action``: "raise" or "report"."""
    return _deadlock_action  # type: ignore[return-value]


class _Where(NamedTuple):
    routine: str | None
    job_id: str | None
    worker_id: str | None


_NOWHERE = _Where(None, None, None)


class _Hold(NamedTuple):
    """A contended acquire whose release is traced too."""

    tracer: Tracer | None
    where: _Where
    since: float  # monotonic seconds


def _where() -> _Where:
    act = _context.current_activation()
    if act is None:
        return _NOWHERE
    job_id = act.job.job_id if act.job is not None else None
    worker_id = getattr(act.worker_state, "worker_id", None)
    return _Where(act.routine_id, job_id, worker_id)


def _record(
    tracer: Tracer | None,
    kind: str,
    name: str,
    where: _Where,
    value: float | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    if tracer is None:
        return
    try:
        tracer.record(
            kind,
            job_id=where.job_id,
            routine=where.routine,
            name=name,
            value=value,
            detail=detail,
            worker_id=where.worker_id,
        )
    except Exception:
        # A broken tracer must not break locking (the lock state is already consistent).
        _logger.exception("tracer failed to record %s for lock %r", kind, name)


def _thread_name(ident: int | None) -> str | None:
    if ident is None:
        return None
    if ident == _get_ident():
        return threading.current_thread().name
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return f"thread {ident} (exited)"


def _check_timeout(blocking: bool, timeout: float | None) -> float:
    """Validate like ``threading.Lock.acquire``; returns the timeout, -1 meaning forever."""
    if timeout is None:
        timeout = -1
    if timeout != -1:
        # NaN (a wait that never ends; threading.Lock raises too) and non-numbers: refused.
        check_number("timeout", timeout, allow_inf=True, unit=" seconds")
    if not blocking and timeout != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0 and timeout != -1:
        raise ValueError(f"timeout must be a non-negative number or -1 (forever); got {timeout!r}")
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError(f"timeout {timeout!r} is too large; the maximum is TIMEOUT_MAX")
    return timeout


def _check_name(name: object, kind: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, not {type(name).__name__}")
    return name


class _TracedPrimitive:
    """What the three primitives share: the name, the tracer, and the contended wait."""

    __slots__ = ("__weakref__", "_tracer", "name")

    name: str
    _tracer: Tracer | None

    def _owner_idents(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _try_acquire(self, timeout: float) -> bool:
        """Block on the inner primitive for at most ``timeout`` seconds (> 0)."""
        raise NotImplementedError

    def _wait(self, timeout: float) -> _Hold | None:
        """Wait in slices until acquired (a ``_Hold``) or timed out (``None``).

        The caller then records itself as owner: it must not do so earlier, since the
        graph may only see an owner that is no longer waiting (see ``_deadlock``).

        Raises:
            DeadlockError: this thread found a cycle through itself, and the action is "raise".
        """
        me = _get_ident()
        tracer = self._tracer if self._tracer is not None else _context.current_tracer()
        where = _where()
        if tracer is not None:
            holders = self._owner_idents()
            holder = holders[0] if holders else None
            detail: dict[str, Any] = {"holder": holder, "holder_name": _thread_name(holder)}
            if len(holders) > 1:
                detail["holders"] = list(holders)
            _record(tracer, "lock.wait", self.name, where, detail=detail)
        started = monotonic()
        deadline = None if timeout < 0 else started + timeout
        _graph.add(me, Waiter(self, threading.current_thread().name, where.routine, where.job_id))
        in_graph = True
        try:
            while True:
                slice_s = WAIT_SLICE
                if deadline is not None:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        break
                    slice_s = min(slice_s, remaining)
                if self._try_acquire(slice_s):
                    _graph.discard(me)
                    in_graph = False
                    now = monotonic()
                    _record(tracer, "lock.acquired", self.name, where, value=now - started)
                    return _Hold(tracer, where, now)
                found = _graph.check(me, claim=_deadlock_action == "raise")
                if found is not None:
                    in_graph = not found.claimed
                    _record(
                        tracer,
                        "deadlock.detected",
                        ", ".join(found.locks),
                        where,
                        detail={"cycle": found.cycle, "message": found.message},
                    )
                    if found.claimed:
                        # Close this thread's wait, as a timeout would: it gives up here.
                        _record(tracer, "lock.timeout", self.name, where,
                                value=monotonic() - started, detail={"reason": "deadlock"})
                        raise DeadlockError(found.message, found.cycle)
        finally:
            if in_graph:
                _graph.discard(me)
        _record(tracer, "lock.timeout", self.name, where, value=monotonic() - started)
        return None

    def _release_error(self, owner: int | None, unlocked_text: str) -> RuntimeError:
        kind = type(self).__name__
        if owner is None:
            return RuntimeError(f"{unlocked_text}: {kind} {self.name!r} is not held")
        return RuntimeError(
            f"{kind} {self.name!r} is held by {_thread_name(owner)}; "
            f"{threading.current_thread().name} cannot release it"
        )


class _TracedOwner(NamedTuple):
    """The owner of a lock taken after a traced wait: its release is traced too."""

    ident: int
    hold: _Hold


def _ident_of(owner: int | _TracedOwner | None) -> int | None:
    if owner is None or type(owner) is int:
        return owner
    return owner.ident  # type: ignore[union-attr]


class _SingleOwner(_TracedPrimitive):
    """A primitive over one inner lock held by at most one thread (Lock and RLock)."""

    __slots__ = ()

    _owner: Any
    _lock: Any

    def _owner_idents(self) -> tuple[int, ...]:
        owner = _ident_of(self._owner)
        return () if owner is None else (owner,)

    def _try_acquire(self, timeout: float) -> bool:
        return self._lock.acquire(True, timeout)


class TracedLock(_SingleOwner):
    """A named ``threading.Lock`` that traces contended waits and finds deadlocks.

    Not reentrant: a thread that acquires it twice deadlocks with itself, which is
    reported like any other deadlock. Only the holder may release it.

    Args:
        name: shown in trace events and error messages, e.g. "db".
        tracer: record into this tracer instead of the current runtime's.
    """

    # _owner is None (free), the holder's ident, or a _TracedOwner. The fast paths compare
    # it with the caller's ident, so a traced hold falls through to the slow path.
    __slots__ = ("_lock", "_owner")

    _SELF_WAIT_HINT = "a TracedLock is not reentrant; use TracedRLock to take it again"

    def __init__(self, name: str, tracer: Tracer | None = None) -> None:
        self.name = _check_name(name, "TracedLock")
        self._tracer = tracer
        self._lock = threading.Lock()
        self._owner: int | _TracedOwner | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, as ``threading.Lock.acquire``.

        Raises:
            DeadlockError: waiting would never end (action "raise").
        """
        if timeout == -1 and self._lock.acquire(False):
            self._owner = _get_ident()
            return True
        return self._acquire_contended(blocking, timeout)

    __enter__ = acquire

    def _acquire_contended(self, blocking: bool, timeout: float) -> bool:
        timeout = _check_timeout(blocking, timeout)
        if self._lock.acquire(False):
            self._owner = _get_ident()
            return True
        if not blocking or timeout == 0:
            return False
        hold = self._wait(timeout)
        if hold is None:
            return False
        self._owner = _TracedOwner(_get_ident(), hold)
        return True

    def release(self) -> None:
        """Release the lock.

        Raises:
            RuntimeError: the lock is not held, or another thread holds it.
        """
        if self._owner != _get_ident():
            return self._release_traced()
        self._owner = None
        self._lock.release()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._owner != _get_ident():
            return self._release_traced()
        self._owner = None
        self._lock.release()

    def _release_traced(self) -> None:
        owner = self._owner
        if type(owner) is not _TracedOwner or owner.ident != _get_ident():
            raise self._release_error(_ident_of(owner), "release unlocked lock")
        self._owner = None
        self._lock.release()
        hold = owner.hold
        _record(hold.tracer, "lock.released", self.name, hold.where, monotonic() - hold.since)

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    def __repr__(self) -> str:
        owner = _ident_of(self._owner)
        state = "unlocked" if owner is None else f"locked by {_thread_name(owner)}"
        return f"<TracedLock {self.name!r} {state}>"


class TracedRLock(_SingleOwner):
    """A named ``threading.RLock`` that traces contended waits and finds deadlocks.

    The holder may acquire it again; it is free once released as many times. Works with
    ``threading.Condition``.

    Args:
        name: shown in trace events and error messages.
        tracer: record into this tracer instead of the current runtime's.
    """

    # _owner as in TracedLock; _count is how many times the owner holds it.
    __slots__ = ("_count", "_lock", "_owner")

    def __init__(self, name: str, tracer: Tracer | None = None) -> None:
        self.name = _check_name(name, "TracedRLock")
        self._tracer = tracer
        self._lock = threading.Lock()
        self._owner: int | _TracedOwner | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, or take it once more if this thread holds it already.

        Raises:
            DeadlockError: waiting would never end (action "raise").
        """
        me = _get_ident()
        if self._owner == me:
            self._count += 1
            return True
        if timeout == -1 and self._lock.acquire(False):
            self._owner = me
            self._count = 1
            return True
        return self._acquire_contended(me, blocking, timeout)

    __enter__ = acquire

    def _acquire_contended(self, me: int, blocking: bool, timeout: float) -> bool:
        if _ident_of(self._owner) == me:  # held after a traced wait
            self._count += 1
            return True
        timeout = _check_timeout(blocking, timeout)
        if self._lock.acquire(False):
            self._owner = me
            self._count = 1
            return True
        if not blocking or timeout == 0:
            return False
        hold = self._wait(timeout)
        if hold is None:
            return False
        self._owner = _TracedOwner(me, hold)
        self._count = 1
        return True

    def release(self) -> None:
        """Release once; the lock is free when every acquire has been released.

        Raises:
            RuntimeError: this thread does not hold the lock.
        """
        if self._owner != _get_ident():
            return self._release_traced()
        count = self._count - 1
        self._count = count
        if not count:
            self._owner = None
            self._lock.release()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._owner != _get_ident():
            return self._release_traced()
        count = self._count - 1
        self._count = count
        if not count:
            self._owner = None
            self._lock.release()

    def _release_traced(self) -> None:
        owner = self._owner
        if type(owner) is not _TracedOwner or owner.ident != _get_ident():
            raise self._release_error(_ident_of(owner), "cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._free()

    def _free(self) -> None:
        owner = self._owner
        self._owner = None
        self._lock.release()
        if type(owner) is _TracedOwner:
            hold = owner.hold
            _record(hold.tracer, "lock.released", self.name, hold.where, monotonic() - hold.since)

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    # threading.Condition uses these three to release a reentrant lock fully while waiting.
    def _is_owned(self) -> bool:
        return _ident_of(self._owner) == _get_ident()

    def _release_save(self) -> int:
        owner = _ident_of(self._owner)
        if owner != _get_ident():
            raise self._release_error(owner, "cannot release un-acquired lock")
        count = self._count
        self._count = 0
        self._free()
        return count

    def _acquire_restore(self, count: int) -> None:
        self.acquire()
        self._count = count

    def __repr__(self) -> str:
        owner = _ident_of(self._owner)
        if owner is None:
            return f"<TracedRLock {self.name!r} unlocked>"
        return f"<TracedRLock {self.name!r} locked by {_thread_name(owner)} count={self._count}>"


class TracedSemaphore(_TracedPrimitive):
    """A named ``threading.Semaphore`` that traces contended waits and finds deadlocks.

    Every thread holding a permit counts as an owner in the wait-for graph. As with
    ``threading.Semaphore``, any thread may release (it then gives back a permit of its
    own if it has one, else one of another holder's), and releasing more than was
    acquired raises the count.

    Args:
        name: shown in trace events and error messages.
        value: the initial number of permits (>= 0).
        tracer: record into this tracer instead of the current runtime's.
    """

    __slots__ = ("_available", "_meta", "_owners", "_sem")

    def __init__(self, name: str, value: int = 1, tracer: Tracer | None = None) -> None:
        self.name = _check_name(name, "TracedSemaphore")
        if value < 0:
            raise ValueError(f"semaphore initial value must be >= 0; got {value!r}")
        self._tracer = tracer
        self._sem = threading.Semaphore(value)
        self._meta = threading.Lock()  # guards _owners and _available, never held while waiting
        # Holder ident -> one entry per permit it holds (a _Hold if that acquire was traced).
        self._owners: dict[int, list[_Hold | None]] = {}
        self._available = value

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take a permit, as ``threading.Semaphore.acquire`` (``timeout=None`` also waits forever).

        Raises:
            DeadlockError: waiting would never end (action "raise").
        """
        if (timeout == -1 or timeout is None) and self._sem.acquire(False):
            self._add_owner(None)
            return True
        timeout = _check_timeout(blocking, timeout)
        if self._sem.acquire(False):
            self._add_owner(None)
            return True
        if not blocking or timeout == 0:
            return False
        hold = self._wait(timeout)
        if hold is None:
            return False
        self._add_owner(hold)
        return True

    def _add_owner(self, hold: _Hold | None) -> None:
        me = _get_ident()
        with self._meta:
            self._available -= 1
            permits = self._owners.get(me)
            if permits is None:
                self._owners[me] = [hold]
            else:
                permits.append(hold)

    def _owner_idents(self) -> tuple[int, ...]:
        with self._meta:
            return tuple(self._owners)

    def _try_acquire(self, timeout: float) -> bool:
        return self._sem.acquire(True, timeout)

    def release(self, n: int = 1) -> None:
        """Give back ``n`` permits, waking up to ``n`` waiters.

        Raises:
            ValueError: ``n`` is less than one.
        """
        if n < 1:
            raise ValueError(f"n must be one or more; got {n!r}")
        me = _get_ident()
        ended: list[_Hold] = []
        with self._meta:
            for _ in range(n):
                holder = me if me in self._owners else next(iter(self._owners), None)
                if holder is None:
                    break
                permits = self._owners[holder]
                hold = permits.pop()
                if not permits:
                    del self._owners[holder]
                if hold is not None:
                    ended.append(hold)
            self._available += n
        self._sem.release(n)
        now = monotonic()
        for hold in ended:
            _record(hold.tracer, "lock.released", self.name, hold.where, now - hold.since)

    def locked(self) -> bool:
        """Whether no permit is free right now."""
        return self._available <= 0

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        with self._meta:
            available, holders = self._available, len(self._owners)
        return f"<TracedSemaphore {self.name!r} available={available} holders={holders}>"
