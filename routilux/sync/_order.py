"""Lock order: the ``lock.order`` edge recorded the first time a thread nests two primitives.

A thread that takes primitive B while it holds A records ``A -> B`` (with the routine and
the file:line of the acquire) once per tracer; ``routilux.diagnostics`` turns cycles of
these edges into ``lock_order`` findings. An edge counts as seen while the tracer still
holds the event that recorded it, so a cleared or overflowed trace gets it again.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from ._chain import _held_by, _Permit
from ._events import _current_tracer, _record, _site, _where

_serials = itertools.count(1)  # lock ids in ``lock.order`` events, unique in this process
# id(tracer) -> (weak ref to it, {(held serial, acquired serial): seq of its lock.order})
_order_seen: dict[int, tuple[weakref.ref[Any], dict[tuple[int, int], int]]] = {}


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
    tracer = prim._tracer if prim._tracer is not None else _current_tracer()
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


def _push(cell: list[Any], node: Any, prim: Any, blocking: bool) -> None:
    """Put ``node`` on top of this thread's chain; a blocking acquire notes its order edges.

    Only a blocking acquire can wait, so only it can deadlock: ``blocking=False`` makes no
    edge.
    """
    top = cell[0]
    node._below = top
    cell[0] = node
    if type(top) is not _Permit and top is not None:
        top._slow = True  # no longer the newest: its release must unlink it from the middle
    if blocking and top is not None:
        _note_order(top, prim)
