"""``TracedRLock``: a named reentrant lock, usable with ``threading.Condition``.

A re-acquire by the holder only counts up: it cannot wait, so it makes no order edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._chain import _get_ident
from ._events import _thread_name
from ._primitive import _check_name, _check_timeout, _SingleOwner

if TYPE_CHECKING:
    from ..trace import Tracer


class TracedRLock(_SingleOwner):
    """A named ``threading.RLock`` that traces contended waits and lock order, and finds deadlocks.

    The holder may acquire it again (no order edge: it cannot wait); it is free once
    released as many times. Works with ``threading.Condition``.

    Args:
        name: shown in trace events and error messages.
        tracer: record into this tracer instead of the current runtime's.
    """

    # _count is how many times the owner holds it.
    __slots__ = ("_count",)

    def __init__(self, name: str, tracer: Tracer | None = None) -> None:
        self._init(_check_name(name, "TracedRLock"), tracer)
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
            cell = self._cell
            if cell[1] == me and cell[0] is None:
                cell[0] = self
                return True
            self._took(me, blocking)
            return True
        return self._acquire_contended(me, blocking, timeout)

    __enter__ = acquire

    def _acquire_contended(self, me: int, blocking: bool, timeout: float) -> bool:
        timeout = _check_timeout(blocking, timeout)
        if self._lock.acquire(False):
            self._owner = me
            self._count = 1
            self._took(me, blocking)
            return True
        if not blocking or timeout == 0:
            return False
        hold = self._wait(timeout)
        if hold is None:
            return False
        self._count = 1
        self._own_after_wait(me, hold)
        return True

    def release(self) -> None:
        """Release once; the lock is free when every acquire has been released.

        Raises:
            RuntimeError: this thread does not hold the lock.
        """
        if self._owner != _get_ident():
            raise self._release_error(self._owner, "cannot release un-acquired lock")
        count = self._count - 1
        self._count = count
        if not count:
            self._release_last()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._owner != _get_ident():
            raise self._release_error(self._owner, "cannot release un-acquired lock")
        count = self._count - 1
        self._count = count
        if not count:
            self._release_last()

    def _release_last(self) -> None:
        self._owner = None
        if not self._slow:
            self._cell[0] = None  # not _slow: it is the thread's only lock, nothing above it
            self._lock.release()
            return
        self._free()

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    # threading.Condition uses these three to release a reentrant lock fully while waiting.
    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> int:
        if self._owner != _get_ident():
            raise self._release_error(self._owner, "cannot release un-acquired lock")
        count = self._count
        self._count = 0
        self._owner = None
        self._free()
        return count

    def _acquire_restore(self, count: int) -> None:
        self.acquire()
        self._count = count

    def __repr__(self) -> str:
        owner = self._owner
        if owner is None:
            return f"<TracedRLock {self.name!r} unlocked>"
        return f"<TracedRLock {self.name!r} locked by {_thread_name(owner)} count={self._count}>"
