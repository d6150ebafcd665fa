"""Lock-order inversions: cycles in the order traced locks were taken, hung or not (``lock_order``).

A deadlock needs bad timing; its cause does not. If one routine takes ``accounts`` then
``ledger`` and another ``ledger`` then ``accounts``, the two can deadlock the day they
overlap, even if every run so far was lucky. ``routilux.sync`` records each new edge
"holding A, took B" as a ``lock.order`` event; this module reads those edges back and
reports every cycle among them (two locks or more) as a ``lock_order`` finding, as Linux's
lockdep and Abseil's deadlock detection do.

Design:
- Pure functions over ``TraceEvent`` lists, like the other detectors: they work the same on
  a live runtime's tracer and on ``Tracer.load(path)``.
- A lock is identified by its ``held_id``/``acquired_id`` (unique within the process that
  recorded it), so two locks that share a name are still two locks; a trace without ids
  falls back to names. Its name is what the finding shows.
- Every elementary cycle is reported, found by a depth-first search from each lock over
  locks ordered after it (so each cycle is found once, from its first lock), capped at
  ``MAX_CYCLES``: lock graphs are small, and past a few dozen cycles the advice is the same.
- A cycle whose locks also deadlocked in the trace (``deadlock.detected`` with the same set
  of lock names) is left to the deadlock finding, so one bug is reported once.
- The order to adopt keeps every edge of the cycle but one: the edge seen last (the newest
  habit) is the one to change, and the order starts at the lock that edge took.

Rejected: reporting strongly connected components instead of cycles (one finding for two
unrelated inversions that share a lock, with no single edge to change).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..trace import TraceEvent
from ._finding import Finding, seqs
from ._stacks import CELL_RE

__all__ = ["MAX_CYCLES", "detect_lock_order", "lock_order_cycles", "lock_order_edges"]

MAX_CYCLES = 20  # cycles reported at most per trace


class Edge(NamedTuple):
    """Some thread held ``held`` when it took ``acquired``: the first time, and how often."""

    held: Any  # lock key: its id, or its name in traces without ids
    acquired: Any
    held_name: str
    acquired_name: str
    first: TraceEvent  # the first lock.order event of this edge
    events: tuple[TraceEvent, ...]

    def evidence(self) -> dict[str, Any]:
        e = self.first
        detail = e.detail if isinstance(e.detail, Mapping) else {}
        return {
            "held": self.held_name,
            "acquired": self.acquired_name,
            "routine": e.routine,
            "thread": e.thread_name,
            "job": e.job_id,
            "site": detail.get("site"),
            "times": len(self.events),
        }

    def who(self) -> str:
        e = self.first
        routines = []
        for ev in self.events:
            if ev.routine is not None and ev.routine not in routines:
                routines.append(ev.routine)
        if routines:
            label = "routine" if len(routines) == 1 else "routines"
            return f"{label} {', '.join(repr(r) for r in routines)}"
        return f"thread {e.thread_name}"


def place(site: str | None) -> str | None:
    """A site in words for titles and fixes: "notebook cell line 12", else "file:line"."""
    if not site:
        return None
    path, sep, line = str(site).rpartition(":")
    if sep and line.isdigit() and CELL_RE.search(path):
        return f"notebook cell line {line}"
    return str(site)


def _key(detail: Mapping[str, Any], role: str) -> Any:
    ident = detail.get(f"{role}_id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        return ident
    return str(detail.get(role))


def lock_order_edges(events: Sequence[TraceEvent]) -> dict[tuple[Any, Any], Edge]:
    """The (held, acquired) edges in ``lock.order`` events, first seen first."""
    found: dict[tuple[Any, Any], list[TraceEvent]] = {}
    names: dict[Any, str] = {}
    for e in events:
        if e.kind != "lock.order" or not isinstance(e.detail, Mapping):
            continue
        if e.detail.get("held") is None or e.detail.get("acquired") is None:
            continue
        held, acquired = _key(e.detail, "held"), _key(e.detail, "acquired")
        if held == acquired:
            continue  # cannot happen for one lock; a trace without ids may show a name twice
        names.setdefault(held, str(e.detail["held"]))
        names.setdefault(acquired, str(e.detail["acquired"]))
        found.setdefault((held, acquired), []).append(e)
    return {
        pair: Edge(pair[0], pair[1], names[pair[0]], names[pair[1]], evs[0], tuple(evs))
        for pair, evs in found.items()
    }


def lock_order_cycles(
    edges: Mapping[tuple[Any, Any], Edge], limit: int = MAX_CYCLES
) -> list[list[Edge]]:
    """Every elementary cycle of the edge graph (at most ``limit``), each as its edges in order.

    Each cycle starts at its lock that comes first in the order locks were first seen.
    """
    rank: dict[Any, int] = {}
    for (held, acquired), _edge in sorted(edges.items(), key=lambda kv: kv[1].first.seq):
        rank.setdefault(held, len(rank))
        rank.setdefault(acquired, len(rank))
    out_of: dict[Any, list[Any]] = {}
    for held, acquired in edges:
        out_of.setdefault(held, []).append(acquired)
    for targets in out_of.values():
        targets.sort(key=rank.__getitem__)
    cycles: list[list[Edge]] = []
    for start in sorted(rank, key=rank.__getitem__):
        floor = rank[start]
        path = [start]
        on_path = {start}
        stack = [iter(out_of.get(start, ()))]
        while stack and len(cycles) < limit:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                on_path.discard(path.pop())
                continue
            if nxt == start:
                nodes = [*path, start]
                cycles.append([edges[(a, b)] for a, b in itertools.pairwise(nodes)])
            elif rank[nxt] > floor and nxt not in on_path:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(out_of.get(nxt, ())))
        if len(cycles) >= limit:
            break
    return cycles


def _deadlocked_sets(events: Sequence[TraceEvent]) -> set[frozenset[str]]:
    """The lock-name sets of the ``deadlock.detected`` cycles in the trace."""
    out = set()
    for e in events:
        if e.kind != "deadlock.detected":
            continue
        names: set[str] = set()
        cycle = e.detail.get("cycle") if isinstance(e.detail, Mapping) else None
        for step in cycle if isinstance(cycle, list) else ():
            if isinstance(step, Mapping):
                names.update(str(step[k]) for k in ("holds", "waits_for") if k in step)
        if not names and e.name:
            names.update(n.strip() for n in str(e.name).split(",") if n.strip())
        out.add(frozenset(names))
    return out


def detect_lock_order(events: Sequence[TraceEvent], statistics: Any = None) -> list[Finding]:
    """One ``lock_order`` finding per cycle of ``lock.order`` edges that did not deadlock."""
    edges = lock_order_edges(events)
    if not edges:
        return []
    deadlocked = _deadlocked_sets(events)
    findings = []
    for cycle in lock_order_cycles(edges):
        names = [edge.held_name for edge in cycle]
        if frozenset(names) in deadlocked:
            continue  # the deadlock finding already tells this story
        # Change the edge seen last; the order to adopt starts at the lock it took.
        newest = max(range(len(cycle)), key=lambda i: cycle[i].first.seq)
        changed = cycle[newest]
        order = [e.held_name for e in cycle[newest + 1 :] + cycle[: newest + 1]]
        steps = [f"{e.held_name!r} -> {e.acquired_name!r} ({e.who()})" for e in cycle]
        if len(steps) == 2:
            taken = f"{steps[0]} and {steps[1]}"
        else:
            taken = ", ".join(steps[:-1]) + f" and {steps[-1]}"
        title = (
            f"Lock-order inversion: {taken}; threads that run these at the same time can "
            "deadlock, even though this run did not"
        )
        ordered = " then ".join(repr(n) for n in order)
        site = changed.evidence()["site"]
        where = f" at {place(site)}" if site else ""
        fix = (
            f"Adopt one order for these locks everywhere: always {ordered}. "
            f"Change {changed.who()}, which takes {changed.acquired_name!r} while holding "
            f"{changed.held_name!r}{where}: take {changed.acquired_name!r} first, or release "
            f"{changed.held_name!r} before taking it."
        )
        evidence = {
            "locks": names,
            "order": order,
            "edges": [e.evidence() for e in cycle],
            "routines": sorted({str(ev.routine) for e in cycle for ev in e.events
                                if ev.routine is not None}),
            "change": {"held": changed.held_name, "acquired": changed.acquired_name,
                       "site": site},
        }
        rotation = min(range(len(names)), key=lambda i: names[i:] + names[:i])
        key_names = names[rotation:] + names[:rotation]
        findings.append(Finding(
            "lock_order", "high", title, evidence, fix,
            seqs(ev for e in cycle for ev in e.events),
            key="lock_order:" + "->".join(key_names),
        ))
    return findings
