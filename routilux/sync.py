"""Named locks and a semaphore that trace their waits, their order, and find deadlocks.

``TracedLock``, ``TracedRLock`` and ``TracedSemaphore`` are drop-ins for ``threading``'s
(context manager, ``acquire(blocking=True, timeout=-1) -> bool``, ``release()``,
``locked()``), with a name used in trace events and error messages.

What they guarantee:
- An uncontended acquire takes the inner ``threading`` primitive without blocking and
  notes the owner and, in its thread's cell, that the thread holds it; it records nothing.
- A contended acquire records ``lock.wait``, then ``lock.acquired`` (value: seconds waited)
  and, at the matching release, ``lock.released`` (value: seconds held); or ``lock.timeout``
  (value: seconds waited) when ``timeout`` runs out. A holder that others waited for records
  ``lock.released`` too, just before it lets go: the waiting it caused (``detail.caused_s``)
  and its site (``detail.site``: the line of its ``with``, or of its ``release()``). Events
  go to the ``tracer=`` given, else to the tracer of the current runtime
  (``routilux._context.current_tracer``); with neither, nothing is recorded but deadlocks
  are still found.
- Lock order: a thread that takes lock B while it holds lock A records ``lock.order``
  (A -> B, with the routine and the file:line of the acquire) the first time that edge is
  seen by that tracer. Acquires with ``blocking=False`` (they cannot wait, so they cannot
  deadlock) and re-acquires of a ``TracedRLock`` its thread holds make no edge, and neither
  do locks taken one after another. ``routilux.diagnostics`` turns cycles of these edges
  into ``lock_order`` findings, deadlock or not.
- While it waits, a thread is in the process-wide wait-for graph and looks for a cycle
  through itself every ``WAIT_SLICE`` seconds. A cycle is recorded once as
  ``deadlock.detected``; with the action "raise" (default) the thread that found it raises
  ``DeadlockError`` from ``acquire`` and the others go on once it releases its locks.
- Unlike ``threading.Lock``, a ``TracedLock`` may only be released by the thread that holds
  it, so that the owner the deadlock finder relies on is true. A semaphore, as in
  ``threading``, may be released by any thread.

Design: what each thread holds.
- ``_cells`` maps a thread ident to its cell, ``[newest, ident]``: the newest traced
  primitive the thread holds (a lock itself, or a ``_Permit`` of a semaphore) or None.
  Each of those points at the one below it (``_below``), so a thread's chain lists what it
  holds, newest first. A lock keeps the cell of its last holder, so the uncontended fast
  path of ``TracedLock`` looks the cell up only when another thread took the lock last;
  otherwise it stores into the cell on each side. An empty cell means the thread held
  nothing, so no order edge can arise; else the slow path records the edges. Cells stay in
  the dict (keyed by ident, which the system reuses): no acquire inserts or deletes a key.
- A chain is only read and written by its own thread (a permit given back by another
  thread is only marked ``dead``; its holder's chain skips it). The owner field
  (``_owner``) is set after the inner lock is taken and cleared before it is released,
  which is what ``_deadlock`` relies on.
- A holder's release goes the slow way (``_slow``) when it took the lock over another
  (nested), when it took another over this one, after a traced wait, or when a thread
  started waiting for it; so a fast release always empties its thread's cell. Waiters
  register in the lock's ``_Contention`` and set ``_slow`` again every wait slice, so a
  thread that barges in and holds the lock for a long while is charged too.
- A thread that ends while holding a traced lock leaves it held, as ``threading`` does; if
  the system gives its ident to a new thread, that thread's chain starts with that lock.

Rejected: a ``threading.local`` stack per thread (one attribute look-up costs about what
the whole uncontended acquire does); ``setdefault``/``pop`` of the ident on every
acquire/release (deleting and re-inserting a key makes the dict compact itself every few
acquires: about a third slower than the cell); recording the caller's file:line on every
acquire (a frame look-up per acquire would double the fast path): a holder's site is taken
at its slow release instead, where ``with lock:`` reports the line of the ``with``.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import weakref
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
MAX_CHAIN = 256  # primitives walked per thread chain at most (a bound, should a chain be torn)

DeadlockAction = Literal["raise", "report"]
_DEADLOCK_ACTIONS: tuple[str, ...] = ("raise", "report")
_deadlock_action: str = "raise"

_graph = WaitForGraph()
_get_ident = threading.get_ident
_logger = logging.getLogger("routilux")

# Thread ident -> [the newest traced primitive it holds or None, ident] (see "Design").
_cells: dict[int, list[Any]] = {}
_cells_get = _cells.get

_serials = itertools.count(1)  # lock ids in ``lock.order`` events, unique in this process
_contention_mutex = threading.Lock()  # guards every _Contention; never held while waiting
# id(tracer) -> (weak ref to it, {(held serial, acquired serial): seq of its lock.order})
_order_seen: dict[int, tuple[weakref.ref[Any], dict[tuple[int, int], int]]] = {}
_THIS_FILE = os.path.normcase(os.path.abspath(__file__))
_THREADING_FILE = os.path.normcase(os.path.abspath(threading.__file__))


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


def _site() -> str | None:
    """file:line of the nearest caller outside this module and ``threading``."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.normcase(frame.f_code.co_filename)
        if path != _THIS_FILE and path != _THREADING_FILE:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


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


# --------------------------------------------------------------------------------------
# What each thread holds: the chains
# --------------------------------------------------------------------------------------
class _Permit:
    """One semaphore permit in its holder's chain (a lock is its own chain node)."""

    __slots__ = ("_below", "dead", "hold", "lock")

    def __init__(self, lock: TracedSemaphore, hold: _Hold | None) -> None:
        self.lock = lock
        self.hold = hold
        self._below: Any = None
        self.dead = False  # given back by another thread: its holder's chain skips it


def _held_by(node: Any) -> list[Any]:
    """The primitives in a chain, newest first (dead permits skipped, duplicates kept once)."""
    out: list[Any] = []
    for _ in range(MAX_CHAIN):
        if node is None:
            break
        if type(node) is _Permit:
            if not node.dead and node.lock not in out:
                out.append(node.lock)
        elif node not in out:
            out.append(node)
        node = node._below
    return out


def _cell_of(me: int) -> list[Any]:
    """This thread's cell, made on its first acquire (only its own thread makes it)."""
    cell = _cells_get(me)
    if cell is None:
        cell = _cells[me] = [None, me]
    return cell


def _push(cell: list[Any], node: Any, prim: Any, blocking: bool) -> None:
    """Put ``node`` on top of this thread's chain; note the order if the acquire blocks."""
    top = cell[0]
    node._below = top
    cell[0] = node
    if type(top) is not _Permit and top is not None:
        top._slow = True  # no longer the newest: its release must unlink it from the middle
    if blocking and top is not None:
        _note_order(top, prim)


def _set_top(cell: list[Any], node: Any) -> None:
    """Make ``node`` (or the first live node below it) this thread's newest."""
    while type(node) is _Permit and node.dead:
        node = node._below
    cell[0] = node


def _unlink(cell: list[Any], node: Any) -> bool:
    """Take ``node`` out of this thread's chain wherever it is; False if it is not there."""
    top = cell[0]
    if top is node:
        _set_top(cell, node._below)
        node._below = None
        return True
    above = top
    for _ in range(MAX_CHAIN):
        if above is None:
            return False
        below = above._below
        if below is node:
            above._below = node._below
            node._below = None
            return True
        above = below
    return False


# --------------------------------------------------------------------------------------
# Lock order
# --------------------------------------------------------------------------------------
def _seen_edges(tracer: Any) -> dict[tuple[int, int], int]:
    key = id(tracer)
    entry = _order_seen.get(key)
    if entry is None or entry[0]() is not tracer:

        def forget(ref: weakref.ref[Any], key: int = key) -> None:
            current = _order_seen.get(key)
            if current is not None and current[0] is ref:
                del _order_seen[key]

        try:
            entry = (weakref.ref(tracer, forget), {})
        except TypeError:  # a tracer without weak references: remember it as long as it lives
            entry = (lambda tracer=tracer: tracer, {})  # type: ignore[assignment]
        _order_seen[key] = entry  # type: ignore[assignment]
    return entry[1]


def _still_held(tracer: Any, seq: int) -> bool:
    """Whether the tracer still holds the event recorded at ``seq`` (not cleared, not dropped)."""
    try:  # a routilux Tracer's own fields: read on every nested acquire, so no properties
        last, base, capacity = tracer._seq, tracer._base_seq, tracer._capacity
    except AttributeError:
        return True  # a stand-in tracer that keeps everything
    return base < seq and last - seq < capacity


def _note_order(top: Any, prim: Any) -> None:
    """Record ``held -> prim`` for each primitive this thread holds, once per tracer."""
    tracer = prim._tracer if prim._tracer is not None else _context.current_tracer()
    if tracer is None:
        return
    seen = _seen_edges(tracer)
    serial = prim._serial
    if top._below is None and type(top) is not _Permit:  # one lock held: the common case
        seq = seen.get((top._serial, serial))
        if seq is not None and _still_held(tracer, seq):
            return
    new = []
    for held in _held_by(top):
        if held is prim:
            continue
        seq = seen.get((held._serial, serial))
        if seq is None or not _still_held(tracer, seq):
            new.append(held)
    if not new:
        return
    where = _where()
    site = _site()
    for held in new:
        _record(tracer, "lock.order", prim.name, where, detail={
            "held": held.name, "held_id": held._serial,
            "acquired": prim.name, "acquired_id": serial, "site": site,
        })
        last = getattr(tracer, "last_seq", 0)  # merges: the seq of the event just recorded
        seen[(held._serial, serial)] = last if isinstance(last, int) else 0


# --------------------------------------------------------------------------------------
# Contention charged to the holder
# --------------------------------------------------------------------------------------
class _Contention:
    """Who waits for one primitive now, and the waiting not yet charged to a holder.

    Guarded by ``_contention_mutex``. Each waiter's cell holds the monotonic time up to
    which its wait has been charged; a holder's release charges every waiter from there to
    now and moves the mark. A wait that ends without the lock (timeout, deadlock) leaves its
    uncharged part for the next release to collect.
    """

    __slots__ = ("uncharged_n", "uncharged_s", "waits")

    def __init__(self) -> None:
        self.waits: dict[int, list[float]] = {}
        self.uncharged_s = 0.0
        self.uncharged_n = 0


def _charge(prim: Any) -> tuple[float, int]:
    """The waiting ``prim``'s holder caused since the last charge: (seconds, waiters)."""
    cont = prim._cont
    if cont is None:
        return 0.0, 0
    with _contention_mutex:
        now = monotonic()
        caused, waiters = cont.uncharged_s, cont.uncharged_n
        cont.uncharged_s, cont.uncharged_n = 0.0, 0
        for cell in cont.waits.values():
            caused += max(0.0, now - cell[0])
            cell[0] = now
            waiters += 1
    return caused, waiters


def _record_release(
    prim: Any, hold: _Hold | None, caused: float, waiters: int, site: str | None
) -> None:
    """``lock.released`` for a traced hold, or for any hold others waited for."""
    if hold is None and not waiters:
        return
    now = monotonic()
    detail = None
    if waiters:
        detail = {"caused_s": round(caused, 6), "waiters": waiters, "site": site}
    if hold is not None:
        _record(hold.tracer, "lock.released", prim.name, hold.where, now - hold.since, detail)
        return
    tracer = prim._tracer if prim._tracer is not None else _context.current_tracer()
    _record(tracer, "lock.released", prim.name, _where(), None, detail)


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
        self._slow = False  # the release must take the slow path (see the module docstring)

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

    def _wait_sliced(self, me: int, started: float, timeout: float) -> _Hold | None:
        tracer = self._tracer if self._tracer is not None else _context.current_tracer()
        where = _where()
        if tracer is not None:
            holders = self._owner_idents()
            holder = holders[0] if holders else None
            detail: dict[str, Any] = {"holder": holder, "holder_name": _thread_name(holder)}
            if len(holders) > 1:
                detail["holders"] = list(holders)
            _record(tracer, "lock.wait", self.name, where, detail=detail)
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
