"""``TracedSemaphore``: a named semaphore whose every permit holder is an owner.

Each permit is a ``_Permit`` node in its holder's chain, so a permit taken while holding a
lock (or the other way round) is an order edge like a lock's, and every holder counts as
an owner in the wait-for graph.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ._chain import _cell_of, _get_ident, _Permit, _unlink
from ._contention import _charge, _record_release
from ._events import _Hold, _site
from ._order import _push
from ._primitive import _check_name, _check_timeout, _TracedPrimitive

if TYPE_CHECKING:
    from ..trace import Tracer


class TracedSemaphore(_TracedPrimitive):
    """A named ``threading.Semaphore`` that traces contended waits and lock order, and finds deadlocks.

    Every thread holding a permit counts as an owner in the wait-for graph, and a permit
    taken while holding a lock (or the other way round) is an order edge like a lock's.
    As with ``threading.Semaphore``, any thread may release (it then gives back a permit of
    its own if it has one, else one of another holder's), and releasing more than was
    acquired raises the count.

    Args:
        name: shown in trace events and error messages.
        value: the initial number of permits (>= 0).
        tracer: record into this tracer instead of the current runtime's.
    """

    __slots__ = ("_available", "_meta", "_owners", "_sem")

    def __init__(self, name: str, value: int = 1, tracer: Tracer | None = None) -> None:
        name = _check_name(name, "TracedSemaphore")
        if value < 0:
            raise ValueError(f"semaphore initial value must be >= 0; got {value!r}")
        self._init(name, tracer)
        self._sem = threading.Semaphore(value)
        self._meta = threading.Lock()  # guards _owners and _available, never held while waiting
        # Holder ident -> one _Permit per permit it holds (its hold set if that acquire waited).
        self._owners: dict[int, list[_Permit]] = {}
        self._available = value

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take a permit, as ``threading.Semaphore.acquire`` (``timeout=None`` also waits forever).

        Raises:
            DeadlockError: waiting would never end (action "raise").
        """
        if (timeout == -1 or timeout is None) and self._sem.acquire(False):
            self._add_owner(None, blocking)
            return True
        timeout = _check_timeout(blocking, timeout)
        if self._sem.acquire(False):
            self._add_owner(None, blocking)
            return True
        if not blocking or timeout == 0:
            return False
        hold = self._wait(timeout)
        if hold is None:
            return False
        self._add_owner(hold, True)
        return True

    def _add_owner(self, hold: _Hold | None, blocking: bool) -> None:
        me = _get_ident()
        permit = _Permit(self, hold)
        with self._meta:
            self._available -= 1
            permits = self._owners.get(me)
            if permits is None:
                self._owners[me] = [permit]
            else:
                permits.append(permit)
        cell = _cell_of(me)
        if cell[0] is None:
            cell[0] = permit
        else:
            _push(cell, permit, self, blocking)

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
                permit = permits.pop()
                if not permits:
                    del self._owners[holder]
                if holder == me:
                    _unlink(_cell_of(me), permit)
                else:
                    permit.dead = True  # its holder's chain skips it from now on
                if permit.hold is not None:
                    ended.append(permit.hold)
            self._available += n
        caused, waiters = _charge(self)
        site = _site() if waiters else None
        if ended:
            _record_release(self, ended[0], caused, waiters, site)
            for hold in ended[1:]:
                _record_release(self, hold, 0.0, 0, None)
        else:
            _record_release(self, None, caused, waiters, site)
        self._sem.release(n)

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
