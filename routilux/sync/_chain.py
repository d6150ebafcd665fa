"""What each thread holds: per-thread cells and the chain of traced primitives below them.

Design, read before changing it:

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

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._events import _Hold

MAX_CHAIN = 256  # primitives walked per thread chain at most (a bound, should a chain be torn)

_get_ident = threading.get_ident

# Thread ident -> [the newest traced primitive it holds or None, ident] (see the docstring).
_cells: dict[int, list[Any]] = {}
_cells_get = _cells.get


class _Permit:
    """One semaphore permit in its holder's chain (a lock is its own chain node)."""

    __slots__ = ("_below", "dead", "hold", "lock")

    # ``lock`` is the TracedSemaphore it belongs to (not imported: _semaphore imports this).
    def __init__(self, lock: Any, hold: _Hold | None) -> None:
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
