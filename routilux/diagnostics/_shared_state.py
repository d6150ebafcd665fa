"""Shared mutable state: logic that assigns to its routine object (``shared_mutable_state``).

A routine object is shared by every job that runs it (api.md §3, §15), so ``self.x = ...``
inside logic races between jobs and leaks one job's value into another's. The runtime
records each such assignment as a ``state.write`` event; ``Runtime.state_writes()`` counts
them even when tracing is off.

One finding per (routine, attribute) with the number of writes and the distinct threads
and jobs that wrote. *state_min_writes* = 1: writes needed to report (any write breaks the
rule). Severity high once two threads or two jobs wrote, else medium.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..trace import TraceEvent
from ._finding import DEFAULT_THRESHOLDS, Finding, seqs

__all__ = ["detect_shared_mutable_state"]


def detect_shared_mutable_state(
    events: Sequence[TraceEvent],
    statistics: Any = None,
    *,
    state_writes: Mapping[tuple[str, str], int] | None = None,
    state_min_writes: int = DEFAULT_THRESHOLDS["state_min_writes"],  # type: ignore[assignment]
) -> list[Finding]:
    """Routine attributes assigned inside logic (``state.write`` events).

    Args:
        events: trace events (any order; only ``state.write`` is read).
        statistics: unused; accepted so every detector has the same shape.
        state_writes: ``Runtime.state_writes()`` counts, used when tracing was off or
            dropped events (then threads and jobs are unknown).
        state_min_writes: writes of one attribute needed before it is reported.
    """
    by_key: dict[tuple[str, str], list[TraceEvent]] = defaultdict(list)
    for e in events:
        if e.kind == "state.write":
            by_key[(str(e.routine), str(e.name))].append(e)
    counts = dict(state_writes or {})
    findings = []
    for key in sorted(set(by_key) | set(counts)):
        evs = by_key.get(key, [])
        writes = max(len(evs), int(counts.get(key, 0)))
        if writes >= state_min_writes:
            findings.append(_finding(*key, evs, writes))
    return findings


def _finding(routine: str, attr: str, evs: list[TraceEvent], writes: int) -> Finding:
    """The finding for ``writes`` writes of ``routine``'s ``attr`` (``evs``: those traced)."""
    threads = len({(e.thread, e.thread_name) for e in evs}) if evs else None
    jobs = len({e.job_id for e in evs if e.job_id is not None}) if evs else None
    shared = (threads or 0) >= 2 or (jobs or 0) >= 2 or (not evs and writes >= 2)
    who = ""
    if evs:
        who = f" from {threads} thread{'s' * (threads != 1)} and {jobs} job{'s' * (jobs != 1)}"
    title = (
        f"Routine {routine!r} assigns self.{attr} inside its logic "
        f"({writes} write{'s' * (writes != 1)}{who}): the attribute is shared by every job"
    )
    fix = (
        f"Don't keep state on the routine object: logic runs concurrently and every job "
        f"sees the same self.{attr}, so updates race and one job's value leaks into "
        f"another's. Keep per-job values in the job: get_current_job().set_data("
        f"{attr!r}, value) and .get_data({attr!r}). Keep counters in the worker with an "
        f"exact update: worker_state.modify_routine_state({routine!r}, lambda s: "
        f"{{**s, {attr!r}: s.get({attr!r}, 0) + 1}}). Runtime(strict=True) makes such "
        "writes raise SharedStateError, so tests catch them."
    )
    return Finding(
        "shared_mutable_state", "high" if shared else "medium", title,
        {"routine": routine, "attribute": attr, "writes": writes, "threads": threads,
         "jobs": jobs},
        fix, seqs(evs), key=f"shared_mutable_state:{routine}.{attr}",
    )
