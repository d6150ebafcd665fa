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
  through itself every ``WAIT_SLICE`` seconds (``routilux.sync._primitive``). A cycle is
  recorded once as ``deadlock.detected``; with the action "raise" (default) the thread that
  found it raises ``DeadlockError`` from ``acquire`` and the others go on once it releases
  its locks.
- Unlike ``threading.Lock``, a ``TracedLock`` may only be released by the thread that holds
  it, so that the owner the deadlock finder relies on is true. A semaphore, as in
  ``threading``, may be released by any thread.

The parts, one concept each: ``_chain`` (what each thread holds; read its docstring before
touching the fast path), ``_events`` (the trace events and call sites), ``_order`` (lock
order edges), ``_contention`` (waiting charged to the holder), ``_primitive`` (the shared
base and the wait in slices), ``_action`` (what a found deadlock does), and one module per
primitive: ``_lock``, ``_rlock``, ``_semaphore``.
"""

from __future__ import annotations

from .._errors import DeadlockError
# DeadlockAction (the type of set_deadlock_action's argument) is importable from here, as
# before the split, though not in __all__.
from ._action import DeadlockAction as DeadlockAction
from ._action import get_deadlock_action, set_deadlock_action
from ._lock import TracedLock
from ._rlock import TracedRLock
from ._semaphore import TracedSemaphore

__all__ = [
    "DeadlockError",
    "TracedLock",
    "TracedRLock",
    "TracedSemaphore",
    "get_deadlock_action",
    "set_deadlock_action",
]

