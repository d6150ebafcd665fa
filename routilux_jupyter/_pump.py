"""The pump: the thread that ticks a dashboard, what one tick reads, and who is open.

What one tick costs is what watching costs the runtime watched (issue 16: at most 10 %),
so a tick does the least it can:

- It reads only the events new since the last tick: ``tracer.read_rows(cursor)``, a slice
  of the tracer's ring taken under its lock (no per-event work there), as plain tuples.
- It folds them incrementally into the model (each part keeps running state: the pool
  series' ``PoolCounter``, the lock table, open tasks), so its cost is linear in the new
  events and independent of the trace's size.
- Bounded time whatever the backlog: a pump tick folds at most ``MAX_TICK_EVENTS``
  (a dashboard attached to a long trace catches up over several ticks; a backlog the
  tracer's ring overwrote meanwhile is counted as dropped), in slices of ``FOLD_SLICE``
  with a short sleep between them. The sleep hands the GIL over: a thread waking from
  I/O (a 1 ms stage) would otherwise wait for the pump's whole switch interval (5 ms)
  each time.
- It sends one message, whose size is bounded by what changed (the model's ``delta``).

The pump holds the dashboard weakly between ticks, and ``time.thread_time`` around each
tick gives ``Dashboard.cpu_s``: the pump thread's own CPU, for its share of the run.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._dashboard import Dashboard
    from ._model import DashboardModel

__all__ = ["FOLD_SLICE", "MAX_TICK_EVENTS", "dashboards", "fold_new_events", "stop_all"]

PUMP_INTERVAL_S = 0.1  # seconds between ticks: at most 10 messages a second
JOIN_TIMEOUT_S = 2.0  # seconds close() waits for the pump thread
MAX_TICK_EVENTS = 25_000  # events one pump tick folds at most (about 20 ms of folding)
FOLD_SLICE = 1_000  # events folded between two GIL hand-overs (about 1 ms)
YIELD_S = 0.0002  # seconds slept between slices: long enough for a waiting thread to run

serial = itertools.count(1)
_open: weakref.WeakValueDictionary[int, Dashboard] = weakref.WeakValueDictionary()
_atexit_registered = False


def register(dash: Dashboard, number: int) -> None:
    """Count ``dash`` among the open dashboards (stopped at interpreter exit)."""
    global _atexit_registered
    _open[number] = dash
    if not _atexit_registered:
        atexit.register(_stop_all_at_exit)
        _atexit_registered = True


def unregister(number: int) -> None:
    _open.pop(number, None)


def dashboards() -> list[Dashboard]:
    """Dashboards not yet closed, oldest first (``%routilux monitor`` adds one each time)."""
    return [dash for _, dash in sorted(_open.items())]


def stop_all(timeout: float = JOIN_TIMEOUT_S) -> None:
    """Stop every dashboard's pump (their last picture stays); used by ``%unload_ext``."""
    for dash in dashboards():
        dash.stop(timeout)


def _stop_all_at_exit() -> None:
    # Interpreter exit: stop the pumps, say nothing to a frontend that may be gone.
    for dash in dashboards():
        dash.stop(timeout=0.5, notify=False)


def run_pump(dash_ref: weakref.ref[Dashboard], stop: threading.Event, interval_s: float,
             ) -> None:
    """The pump thread: one tick per interval until stopped or there is nothing to watch.

    Holds the dashboard only weakly between ticks, so a dropped dashboard ends it.
    """
    while not stop.wait(interval_s):
        dash = dash_ref()
        if dash is None:
            return
        keep_going = dash.pump_tick()
        del dash
        if not keep_going:
            return


def read_new(tracer: Any, cursor: int) -> Sequence[Any]:
    """Events after ``cursor``: plain tuples from ``read_rows`` (several times cheaper than
    building a ``TraceEvent`` each), or ``read`` on a tracer without it."""
    read_rows = getattr(tracer, "read_rows", None)
    return read_rows(cursor) if read_rows is not None else tracer.read(cursor)


def fold_new_events(model: DashboardModel, tracer: Any, cursor: int,
                    budget: int | None) -> int:
    """Fold the events after ``cursor`` into ``model`` (at most ``budget``; None: all);
    the new cursor. Slices of ``FOLD_SLICE`` with a GIL hand-over between them."""
    rows = read_new(tracer, cursor)
    if not rows:
        return cursor
    if budget is not None and len(rows) > budget:
        rows = rows[:budget]
    n = len(rows)
    if n <= FOLD_SLICE:
        model.feed(rows)
    else:
        for start in range(0, n, FOLD_SLICE):
            if start:
                time.sleep(YIELD_S)
            model.feed(rows[start:start + FOLD_SLICE])
    return rows[-1][0]  # seq
