"""Barrier misuse: all-slots-ready routines mixing jobs, filling unevenly, starving (``barrier``).

Read from ``barrier.wait`` / ``barrier.release`` events, with the routine's ``slot.enqueue``
and ``slot.full`` (an arrival the barrier holds is its ``barrier.wait`` alone). Three problems, each its own finding:

1. *Mixed jobs*: a release joining items of different jobs, when one of those jobs
   delivered to more than one slot of the routine (a fan-out request whose branches got
   paired with another request's). Jobs that each feed a single slot, such as separate
   posts, are paired across jobs by design and not reported.
2. *Uneven filling*: one slot's unconsumed backlog exceeds the emptiest slot's by more
   than *barrier_backlog* = 50 items in a ``barrier.wait``, or a ``slot.full`` on the
   routine.
3. *Starved*: the barrier never released over the trace, one slot never held an item, and
   another piled up *barrier_starved_items* = 5 items. A starved barrier's uneven filling
   is that same story, so it is reported only if a slot also overflowed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..trace import TraceEvent
from ._finding import DEFAULT_THRESHOLDS, MAX_EVENTS, Finding, seqs

__all__ = ["detect_barrier_misuse"]


def detect_barrier_misuse(
    events: Sequence[TraceEvent],
    statistics: Any = None,
    *,
    barrier_backlog: int = DEFAULT_THRESHOLDS["barrier_backlog"],  # type: ignore[assignment]
    barrier_starved_items: int = DEFAULT_THRESHOLDS["barrier_starved_items"],  # type: ignore[assignment]
) -> list[Finding]:
    """All-slots-ready routines that mix jobs, fill unevenly, or never complete a set.

    Args:
        events: trace events (any order).
        statistics: unused; accepted so every detector has the same shape.
        barrier_backlog / barrier_starved_items: see the module docstring.
    """
    seen = _index(events)
    if seen is None:
        return []
    findings = []
    for r in sorted(seen.barriers):
        rel = seen.releases.get(r, [])
        ws = seen.waits.get(r, [])
        full = seen.fulls.get(r, [])
        mixed = _mixed_jobs(r, rel, seen.job_slots[r])
        if mixed is not None:
            findings.append(mixed)
        starved = _starved(r, rel, ws, seen.fed[r], barrier_starved_items)
        if starved is not None:
            findings.append(starved)
            if not full:
                continue
        uneven = _uneven(r, ws, full, barrier_backlog)
        if uneven is not None:
            findings.append(uneven)
    return findings


class _Barriers(NamedTuple):
    """The trace's barrier events, by routine."""

    barriers: set[str]
    waits: dict[str, list[TraceEvent]]
    releases: dict[str, list[TraceEvent]]
    fulls: dict[str, list[TraceEvent]]
    job_slots: dict[str, dict[str, set[str]]]  # routine -> job -> slots it fed
    fed: dict[str, set[str]]  # routine -> slots that received an item


def _index(events: Sequence[TraceEvent]) -> _Barriers | None:
    """The barrier routines' events, or None when the trace has no barrier."""
    waits: dict[str, list[TraceEvent]] = defaultdict(list)
    releases: dict[str, list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "barrier.wait":
            waits[str(e.routine)].append(e)
        elif e.kind == "barrier.release":
            releases[str(e.routine)].append(e)
    barriers = set(waits) | set(releases)
    if not barriers:
        return None
    fulls: dict[str, list[TraceEvent]] = defaultdict(list)
    job_slots: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    fed: dict[str, set[str]] = defaultdict(set)
    for e in events:
        r = str(e.routine)
        if r not in barriers:
            continue
        if e.kind == "slot.full":
            fulls[r].append(e)
        elif e.kind == "slot.enqueue" or e.kind == "barrier.wait":
            # An arrival: a held one records only its barrier.wait (older traces both).
            fed[r].add(str(e.name))
            if e.job_id is not None:
                job_slots[r][e.job_id].add(str(e.name))
    return _Barriers(barriers, waits, releases, fulls, job_slots, fed)


def _mixed_jobs(r: str, rel: list[TraceEvent], job_slots: dict[str, set[str]]) -> Finding | None:
    """(1) Joins of different jobs, where one of them is a fan-out request."""
    fanout = {j for j, slots in job_slots.items() if len(slots) >= 2}
    mixed = []
    for e in rel:
        jobs = e.detail if isinstance(e.detail, (list, tuple)) else None
        distinct = set(jobs) if jobs is not None else None
        n_jobs = len(distinct) if distinct is not None else \
            int(e.value) if isinstance(e.value, (int, float)) else 1
        if n_jobs <= 1:
            continue
        if distinct is not None and job_slots and not (distinct & fanout):
            continue  # each job feeds one slot (separate posts): pairing by design
        mixed.append(e)
    if not mixed:
        return None
    example = mixed[0].detail if isinstance(mixed[0].detail, (list, tuple)) else None
    title = (f"Barrier {r!r} joined items of different jobs in {len(mixed)} of "
             f"{len(rel)} activations: one request's data was paired with another's")
    fix = ("all_slots_ready pairs the oldest item of each slot in arrival order, "
           "whatever job it belongs to, so concurrent requests sharing a worker get "
           "crossed. Use all_slots_ready_policy(match_job=True) to join only items of "
           "the same job, or give each request its own worker (runtime.exec(flow), "
           "then post(..., worker_id=...)).")
    return Finding(
        "barrier", "high", title,
        {"routine": r, "problem": "mixed_jobs", "mixed_joins": len(mixed),
         "joins": len(rel),
         "example_jobs": [str(j)[:8] for j in example] if example else None},
        fix, seqs(mixed), key=f"barrier:{r}:mixed_jobs",
    )


def _starved(r: str, rel: list[TraceEvent], ws: list[TraceEvent], fed: set[str],
             starved_items: int) -> Finding | None:
    """(3) Never released, one slot never fed, another piling up."""
    counts = [e.detail for e in ws if isinstance(e.detail, Mapping)]
    if rel or not counts:
        return None
    slots = sorted({str(s) for c in counts for s in c})
    never = [s for s in slots if all(not c.get(s) for c in counts) and s not in fed]
    piled = {s: max(int(c.get(s) or 0) for c in counts) for s in slots}
    top = max(piled, key=lambda s: piled[s]) if piled else None
    if not never or top is None or piled[top] < starved_items:
        return None
    missing = ", ".join(repr(s) for s in never)
    title = (f"Barrier {r!r} never ran: slot{'s' * (len(never) > 1)} {missing} "
             f"received no data while {piled[top]} items wait in {top!r}")
    fix = (f"An all-slots-ready routine runs only when every slot holds an item, "
           f"so with nothing arriving in {missing} it never runs and the other "
           f"slots fill up silently. Connect an event to {missing} "
           "(flow.connect(...)) or post to it; if the routine should run with "
           "whatever arrives, use immediate_policy() instead of a barrier.")
    return Finding(
        "barrier", "high", title,
        {"routine": r, "problem": "starved", "empty_slots": never,
         "waiting_items": piled[top], "waits": len(ws)},
        fix, seqs(ws[:MAX_EVENTS]), key=f"barrier:{r}:starved",
    )


def _uneven(r: str, ws: list[TraceEvent], full: list[TraceEvent],
            backlog: int) -> Finding | None:
    """(2) Slots filling unevenly: the widest gap between slots in a wait, or refusals."""
    worst, worst_e = -1, None
    for e in ws:
        c = e.detail
        if isinstance(c, Mapping) and len(c) >= 2:
            vals = [int(v or 0) for v in c.values()]
            gap = max(vals) - min(vals)
            if gap > worst:
                worst, worst_e = gap, e
    if not (worst > backlog or full):
        return None
    c = dict(worst_e.detail) if worst_e is not None else {}
    hi = max(c, key=lambda s: c[s] or 0) if c else (full[0].name if full else "?")
    lo = min(c, key=lambda s: c[s] or 0) if c else None
    if c:
        title = (f"Barrier {r!r} fills unevenly: slot {hi!r} ran {worst} items ahead "
                 f"of {lo!r} ({c[hi]} vs {c[lo]} waiting)")
    else:
        title = f"Barrier {r!r} fills unevenly"
    if full:
        title += f"; {len(full)} item{'s' * (len(full) != 1)} refused as slot " \
                 f"{full[0].name!r} was full"
    fix = (f"A barrier takes one item from every slot per activation, so when {hi!r} "
           "is fed faster than the others its surplus only grows, until the slot is "
           "full and arrivals raise SlotQueueFullError. Feed the slots at matching "
           "rates (one item per slot per request), or don't use a barrier here: "
           "use immediate_policy() and combine the data in logic or in the job "
           "(get_current_job().set_data), or batch_size_policy(n) for batches.")
    support = ([worst_e] if worst_e is not None else []) + full[:MAX_EVENTS - 1]
    return Finding(
        "barrier", "high" if full else "medium", title,
        {"routine": r, "problem": "uneven", "max_backlog_gap": max(worst, 0),
         "ahead_slot": hi, "behind_slot": lo, "refused": len(full),
         "counts": c or None},
        fix, seqs(support), key=f"barrier:{r}:uneven",
    )
