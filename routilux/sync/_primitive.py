"""The base the traced primitives share: name, tracer, and the contended wait in slices.

While it waits, a thread is in the process-wide wait-for graph (``_graph``) and looks for a
cycle through itself every ``WAIT_SLICE`` seconds. A cycle is recorded once as
``deadlock.detected``; with the action "raise" (default) the thread that found it raises
``DeadlockError`` from ``acquire`` and the others go on once it releases its locks.
``_SingleOwner`` adds what Lock and RLock share: one inner lock, one owner, the lock as its
own node in its holder's chain (see ``_chain``).
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._deadlock import Deadlock, Waiter, WaitForGraph
from .._errors import DeadlockError
from .._validate import check_number
from . import _action
from ._chain import _cell_of, _get_ident, _unlink
from ._contention import _charge, _Contention, _contention_mutex, _record_release
from ._events import _current_tracer, _Hold, _record, _site, _thread_name, _Where, _where
from ._order import _push, _serials

if TYPE_CHECKING:
    from ..trace import Tracer

WAIT_SLICE = 0.05  # seconds a contended acquire waits before it looks for a deadlock again

_graph = WaitForGraph()


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

    __slots__ = ("__weakref__", "_cont", "_serial", "_slow", "_tracer", "name")

    name: str
    _tracer: Tracer | None

    def _init(self, name: str, tracer: Tracer | None) -> None:
        self.name = name
        self._tracer = tracer
        self._serial = next(_serials)
        self._cont: _Contention | None = None
        self._slow = False  # the release must take the slow path (see ``_chain``)

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
        with _contention_mutex:
            cont = self._cont
            if cont is None:
                cont = self._cont = _Contention()
            started = monotonic()
            cell = cont.waits[me] = [started]
        # Set before the holder is read: a holder that released without seeing it had
        # released before this thread could name it.
        self._slow = True
        acquired = False
        try:
            hold = self._wait_sliced(me, started, timeout)
            acquired = hold is not None
            return hold
        finally:
            with _contention_mutex:
                cont.waits.pop(me, None)
                if not acquired:  # no holder's release will charge the rest of this wait
                    cont.uncharged_s += max(0.0, monotonic() - cell[0])
                    cont.uncharged_n += 1

    def _record_wait(self, tracer: Tracer | None, where: _Where) -> None:
        """``lock.wait``, naming the holder(s) this thread waits for."""
        if tracer is None:
            return
        holders = self._owner_idents()
        holder = holders[0] if holders else None
        detail: dict[str, Any] = {"holder": holder, "holder_name": _thread_name(holder)}
        if len(holders) > 1:
            detail["holders"] = list(holders)
        _record(tracer, "lock.wait", self.name, where, detail=detail)

    def _wait_sliced(self, me: int, started: float, timeout: float) -> _Hold | None:
        tracer = self._tracer if self._tracer is not None else _current_tracer()
        where = _where()
        self._record_wait(tracer, where)
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
                self._slow = True  # charge whoever holds it now, even one that barged in
                if self._try_acquire(slice_s):
                    _graph.discard(me)
                    in_graph = False
                    now = monotonic()
                    _record(tracer, "lock.acquired", self.name, where, value=now - started)
                    return _Hold(tracer, where, now)
                found = _graph.check(me, claim=_action._deadlock_action == "raise")
                if found is not None:
                    in_graph = not found.claimed
                    self._deadlock_found(found, started, tracer, where)
        finally:
            if in_graph:
                _graph.discard(me)
        _record(tracer, "lock.timeout", self.name, where, value=monotonic() - started)
        return None

    def _deadlock_found(
        self, found: Deadlock, started: float, tracer: Tracer | None, where: _Where
    ) -> None:
        """Record a cycle through this thread; raise if this thread claimed it.

        Raises:
            DeadlockError: the cycle was claimed by this thread (action "raise").
        """
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

    def _release_error(self, owner: int | None, unlocked_text: str) -> RuntimeError:
        kind = type(self).__name__
        if owner is None:
            return RuntimeError(f"{unlocked_text}: {kind} {self.name!r} is not held")
        return RuntimeError(
            f"{kind} {self.name!r} is held by {_thread_name(owner)}; "
            f"{threading.current_thread().name} cannot release it"
        )


class _SingleOwner(_TracedPrimitive):
    """A primitive over one inner lock held by at most one thread (Lock and RLock).

    ``_owner`` is the holder's ident (None: free). The lock is its own node in its holder's
    chain (``_below``), and ``_cell`` is that holder's cell, so that the release needs no
    look-up; ``_hold`` is set when it was taken after a traced wait, so that its release
    is traced too.
    """

    __slots__ = ("_below", "_cell", "_hold", "_lock", "_owner")

    _lock: Any

    def _init(self, name: str, tracer: Tracer | None) -> None:
        _TracedPrimitive._init(self, name, tracer)
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._cell: list[Any] = [None, None]  # no holder yet: the first acquire looks it up
        self._below: Any = None
        self._hold: _Hold | None = None

    def _try_acquire(self, timeout: float) -> bool:
        return self._lock.acquire(True, timeout)

    def _owner_idents(self) -> tuple[int, ...]:
        owner = self._owner
        return () if owner is None else (owner,)

    def _took(self, me: int, blocking: bool) -> None:
        """Just acquired by a thread that did not take it last, or holding others: chain it."""
        cell = self._cell
        if cell[1] != me:
            cell = self._cell = _cell_of(me)
        if cell[0] is None:
            cell[0] = self
            return
        self._slow = True  # the release must put the lock below back
        _push(cell, self, self, blocking)

    def _own_after_wait(self, me: int, hold: _Hold) -> None:
        self._hold = hold
        self._slow = True
        self._owner = me
        cell = self._cell = _cell_of(me)
        if cell[0] is None:
            cell[0] = self
        else:
            _push(cell, self, self, True)

    def _free(self) -> None:
        """Leave the holder's chain, then release the inner lock; trace what needs it.

        The caller has checked that this thread holds the lock, and cleared ``_owner``.
        """
        self._slow = False
        hold, self._hold = self._hold, None
        _unlink(self._cell, self)
        if self._cont is not None or hold is not None:
            caused, waiters = _charge(self)
            _record_release(self, hold, caused, waiters, _site() if waiters else None)
        self._lock.release()
