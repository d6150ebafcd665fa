"""``TracedLock``: a named, non-reentrant ``threading.Lock`` that only its holder may release.

The uncontended ``acquire``/``release`` (and ``__enter__``/``__exit__``) is the fast path
the lock-overhead benchmark measures: it takes the inner lock without blocking, notes the
owner and stores into the holder's cell (see ``_chain``), and records nothing. Keep it free
of extra calls and attribute look-ups; everything else goes through ``_SingleOwner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._chain import _get_ident
from ._events import _thread_name
from ._primitive import _check_name, _check_timeout, _SingleOwner

if TYPE_CHECKING:
    from ..trace import Tracer


class TracedLock(_SingleOwner):
    """A named ``threading.Lock`` that traces contended waits and lock order, and finds deadlocks.

    Not reentrant: a thread that acquires it twice deadlocks with itself, which is
    reported like any other deadlock. Only the holder may release it.

    Args:
        name: shown in trace events and error messages, e.g. "db".
        tracer: record into this tracer instead of the current runtime's.
    """

    __slots__ = ()

    _SELF_WAIT_HINT = "a TracedLock is not reentrant; use TracedRLock to take it again"

    def __init__(self, name: str, tracer: Tracer | None = None) -> None:
        self._init(_check_name(name, "TracedLock"), tracer)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, as ``threading.Lock.acquire``.

        Raises:
            DeadlockError: waiting would never end (action "raise").
        """
        if timeout == -1 and self._lock.acquire(False):
            me = self._owner = _get_ident()
            cell = self._cell
            if cell[1] == me and cell[0] is None:
                cell[0] = self
                return True
            self._took(me, blocking)
            return True
        return self._acquire_contended(blocking, timeout)

    __enter__ = acquire

    def _acquire_contended(self, blocking: bool, timeout: float) -> bool:
        timeout = _check_timeout(blocking, timeout)
        if self._lock.acquire(False):
            me = self._owner = _get_ident()
            self._took(me, blocking)
            return True
        if not blocking or timeout == 0:
            return False
        hold = self._wait(timeout)
        if hold is None:
            return False
        self._own_after_wait(_get_ident(), hold)
        return True

    def release(self) -> None:
        """Release the lock.

        Raises:
            RuntimeError: the lock is not held, or another thread holds it.
        """
        if self._owner == _get_ident() and not self._slow:
            self._owner = None
            self._cell[0] = None  # not _slow: it is the thread's only lock, nothing above it
            self._lock.release()
            return
        self._release_slow()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._owner == _get_ident() and not self._slow:
            self._owner = None
            self._cell[0] = None  # not _slow: it is the thread's only lock, nothing above it
            self._lock.release()
            return
        self._release_slow()

    def _release_slow(self) -> None:
        owner = self._owner
        if owner != _get_ident():
            raise self._release_error(owner, "release unlocked lock")
        self._owner = None
        self._free()

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    def __repr__(self) -> str:
        owner = self._owner
        state = "unlocked" if owner is None else f"locked by {_thread_name(owner)}"
        return f"<TracedLock {self.name!r} {state}>"
