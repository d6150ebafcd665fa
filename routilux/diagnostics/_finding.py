"""What every detector returns: the ``Finding`` record, its kinds, its severities, the thresholds.

A finding is a frozen value: the detectors build it, ``diagnose`` sorts it (severity, then
kind, then title), ``routilux_jupyter`` shows it. The kinds are fixed by the tutorial
notebooks that teach them (``FINDING_NOTEBOOKS``); the thresholds, by name, are what
``diagnose(**thresholds)`` accepts, checked here so every detector can trust its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..trace import TraceEvent

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FINDING_KINDS",
    "FINDING_NOTEBOOKS",
    "MAX_EVENTS",
    "SEVERITIES",
    "Finding",
    "check_thresholds",
    "fmt_s",
    "seqs",
    "sort_key",
]

FINDING_NOTEBOOKS: Mapping[str, str] = MappingProxyType({
    "shared_mutable_state": "01_shared_mutable_state.ipynb",
    "blocking": "02_blocking_the_pool.ipynb",
    "deadlock": "03_deadlocks.ipynb",
    "lock_order": "03_deadlocks.ipynb",
    "pool_exhaustion": "04_pool_exhaustion.ipynb",
    "barrier": "05_barrier_usage.ipynb",
})
"""Finding kind -> the tutorial notebook (in ``notebooks/``) that teaches that pitfall."""

FINDING_KINDS: tuple[str, ...] = tuple(FINDING_NOTEBOOKS)
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

DEFAULT_THRESHOLDS: Mapping[str, int | float] = MappingProxyType({
    "state_min_writes": 1,  # writes of one routine attribute in logic before it is reported
    "blocking_ratio": 10.0,  # times the routine's median run time that counts as an outlier
    "blocking_min_s": 0.1,  # seconds; shorter tasks never count as blocking
    "blocking_queue_wait_s": 0.05,  # seconds another activation's queue wait must overlap
    "blocking_min_peers": 3,  # finished peers a routine needs for its own median
    "blocking_lone_s": 1.0,  # seconds an outlier (far longer than its routine's median) must run
    "exhaustion_window_s": 1.0,  # seconds the queue must keep growing
    "exhaustion_min_growth": 5,  # items the queue must grow by within each window
    "exhaustion_backlog_s": 3.0,  # seconds a saturated pool must keep a backlog
    "exhaustion_wait_s": 1.0,  # seconds activations of that backlog waited (95th percentile)
    "barrier_backlog": 50,  # items one slot may run ahead of the emptiest slot
    "barrier_starved_items": 5,  # items piled in a never-released barrier's slot
})
"""Every threshold ``diagnose`` accepts, with its default (each detector's module says more)."""

MAX_EVENTS = 50  # seqs kept in Finding.events (the first ones)

_KIND_ORDER = {k: i for i, k in enumerate(FINDING_KINDS)}
_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
_INT_THRESHOLDS = frozenset({
    "state_min_writes", "blocking_min_peers", "exhaustion_min_growth", "barrier_backlog",
    "barrier_starved_items",
})


@dataclass(frozen=True)
class Finding:
    """One pitfall a detector found: what, how bad, the evidence, and what to do.

    Attributes:
        kind: one of ``FINDING_KINDS``.
        severity: "high", "medium" or "low".
        title: one line naming the routine/lock/slot and the symptom, in plain words.
        evidence: a small dict of numbers and names (counts, seconds, routine ids...).
        fix: a plain-words recommendation.
        events: sequence numbers of the trace events that support the finding (at most
            ``MAX_EVENTS``, oldest first); ``TraceEvent`` records are accepted and stored
            as their ``seq``.
        notebook: the tutorial notebook for this kind (``FINDING_NOTEBOOKS``).
        key: what makes two findings "the same" across ``diagnose`` calls, e.g.
            ``"blocking:fetch"``; defaults to ``"<kind>:<title>"``.

    Raises:
        ValueError: an unknown kind or severity (the message lists the valid ones).
    """

    kind: str
    severity: str
    title: str
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    fix: str = ""
    events: tuple[int, ...] = ()
    notebook: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FINDING_NOTEBOOKS:
            raise ValueError(
                f"unknown finding kind {self.kind!r}; kinds are: {', '.join(FINDING_KINDS)}"
            )
        if self.severity not in _SEVERITY_ORDER:
            raise ValueError(
                f"unknown severity {self.severity!r}; severities are: {', '.join(SEVERITIES)}"
            )
        seqs = tuple(e.seq if isinstance(e, TraceEvent) else int(e) for e in self.events)
        object.__setattr__(self, "events", seqs)
        object.__setattr__(self, "evidence", dict(self.evidence))
        if not self.notebook:
            object.__setattr__(self, "notebook", FINDING_NOTEBOOKS[self.kind])
        if not self.key:
            object.__setattr__(self, "key", f"{self.kind}:{self.title}")

    def to_dict(self) -> dict[str, Any]:
        """The finding as a plain JSON-able dict (``events`` as a list)."""
        return {
            "kind": self.kind, "severity": self.severity, "title": self.title,
            "evidence": dict(self.evidence), "fix": self.fix, "events": list(self.events),
            "notebook": self.notebook, "key": self.key,
        }

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}\n  fix: {self.fix}"


def sort_key(finding: Finding) -> tuple[int, int, str]:
    """Most severe first, then in ``FINDING_KINDS`` order, then by title."""
    return _SEVERITY_ORDER[finding.severity], _KIND_ORDER[finding.kind], finding.title


def fmt_s(seconds: float) -> str:
    """A duration for a title: "0.52 s", "3.1 ms", "12 us"."""
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def seqs(events: Iterable[TraceEvent]) -> tuple[int, ...]:
    """The supporting events' seqs for ``Finding.events``: distinct, oldest first, capped."""
    out = sorted({e.seq for e in events if e.seq > 0})
    return tuple(out[:MAX_EVENTS])


def check_thresholds(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``DEFAULT_THRESHOLDS`` with ``overrides`` applied, each checked by name.

    Raises:
        TypeError: an unknown name (the message lists the valid ones), or a value that is
            not a number.
        ValueError: a count below 1 or not whole, or a time or ratio that is not positive.
    """
    unknown = sorted(set(overrides) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise TypeError(
            f"diagnose() got unknown threshold(s) {', '.join(unknown)}; thresholds are: "
            f"{', '.join(DEFAULT_THRESHOLDS)}"
        )
    out = dict(DEFAULT_THRESHOLDS)
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"threshold {name} must be a number, got {value!r}")
        if name in _INT_THRESHOLDS:
            if value != int(value) or value < 1:
                raise ValueError(f"threshold {name} must be a whole number >= 1, got {value!r}")
            value = int(value)
        elif not value > 0 or math.isinf(value):
            raise ValueError(f"threshold {name} must be a positive number of seconds or "
                             f"a positive ratio, got {value!r}")
        out[name] = value
    return out
