"""Contention charged to the holder: who waits for a primitive, and the waiting they suffered.

A holder that others waited for records ``lock.released`` just before it lets go, with the
waiting it caused (``detail.caused_s``), the number of waiters and its site.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any

from ._events import _current_tracer, _Hold, _record, _where

_contention_mutex = threading.Lock()  # guards every _Contention; never held while waiting


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
    tracer = prim._tracer if prim._tracer is not None else _current_tracer()
    _record(tracer, "lock.released", prim.name, _where(), None, detail)
