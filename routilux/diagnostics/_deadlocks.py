"""Deadlocks that happened: wait-for cycles among traced locks (kind ``deadlock``).

``routilux.sync`` records a ``deadlock.detected`` event when traced locks wait for each
other in a cycle. Each is reported with the cycle in words and the locks involved, once per
set of locks however often it recurred. No threshold: every cycle is reported. Cycles in
the order locks were taken that did not hang are the ``lock_order`` detector's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..trace import TraceEvent
from ._finding import Finding, seqs

__all__ = ["detect_deadlocks"]


def detect_deadlocks(events: Sequence[TraceEvent], statistics: Any = None) -> list[Finding]:
    """Wait-for cycles among traced locks (``deadlock.detected``), one finding per lock set."""
    groups: dict[frozenset[str], list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "deadlock.detected":
            groups[_locks(e)].append(e)
    return [_finding(locks, evs) for locks, evs in groups.items()]


def _locks(e: TraceEvent) -> frozenset[str]:
    """The names of the locks in one ``deadlock.detected`` cycle."""
    cycle = e.detail.get("cycle") if isinstance(e.detail, Mapping) else None
    locks: set[str] = set()
    if isinstance(cycle, list):
        for step in cycle:
            if isinstance(step, Mapping):
                locks.update(str(step[k]) for k in ("holds", "waits_for") if k in step)
    if not locks and e.name:
        locks.update(n.strip() for n in str(e.name).split(","))
    return frozenset(locks)


def _finding(locks: frozenset[str], evs: list[TraceEvent]) -> Finding:
    """The finding for the cycle over ``locks``, seen as ``evs``."""
    first = evs[0]
    detail = first.detail if isinstance(first.detail, Mapping) else {}
    cycle = [s for s in detail.get("cycle") or () if isinstance(s, Mapping)]
    message = detail.get("message") or "; ".join(
        f"{s.get('thread_name')} holds {s.get('holds')!r} and waits for "
        f"{s.get('waits_for')!r}" for s in cycle
    ) or f"threads wait for each other's locks {', '.join(sorted(locks))}"
    order = sorted(locks)
    ordered = " then ".join(repr(n) for n in order)
    routines = sorted({str(s["routine"]) for s in cycle if s.get("routine") is not None})
    times = len(evs)
    title = f"Deadlock: {message}" + (f" (seen {times} times)" if times > 1 else "")
    fix = (
        f"Take these locks in one fixed order everywhere (for example always {ordered}), "
        "so no thread can hold one while waiting for a lock another thread holds before "
        "it; keep lock scopes small, and acquire with a timeout (lock.acquire(timeout=...)"
        ") so a wait that cannot finish gives up instead of hanging."
    )
    return Finding(
        "deadlock", "high", title,
        {"locks": order, "threads": [str(s.get("thread_name")) for s in cycle],
         "routines": routines, "occurrences": times, "message": message},
        fix, seqs(evs), key="deadlock:" + ",".join(order),
    )
