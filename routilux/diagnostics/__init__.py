"""Pitfall detectors: what went wrong in a run, read from its trace, each with evidence, a fix.

``diagnose(runtime_or_tracer)`` runs six detectors over the trace events (and, for a live
``Runtime``, its ``statistics()``, ``state_writes()`` and ``running_tasks()``) and returns
``Finding`` records, most severe first. Each detector is a pure function over a list of
``TraceEvent`` records, so it works the same on a live runtime, on ``Tracer.load(path)`` and
on a hand-built event list. A healthy run yields no finding at all: every detector needs a
symptom *and* its cause before it speaks.

The detectors, one module each (its docstring says what it keys on), with the thresholds
they take (defaults in ``DEFAULT_THRESHOLDS``):

=========================  ===================  ==============================================
kind                       module               thresholds
=========================  ===================  ==============================================
``shared_mutable_state``   ``_shared_state``    state_min_writes
``blocking``               ``_blocking``        blocking_min_s, blocking_ratio,
                                                blocking_min_peers, blocking_lone_s,
                                                blocking_queue_wait_s
``deadlock``               ``_deadlocks``       (none: every wait-for cycle is reported)
``lock_order``             ``_lock_order``      (none: every cycle that did not deadlock)
``pool_exhaustion``        ``_exhaustion``      exhaustion_window_s, exhaustion_min_growth,
                                                exhaustion_backlog_s, exhaustion_wait_s
``barrier``                ``_barrier``         barrier_backlog, barrier_starved_items
=========================  ===================  ==============================================

Every threshold can be overridden by name: ``diagnose(rt, blocking_min_s=0.5)``; unknown
names raise ``TypeError`` listing the valid ones. ``diagnose(..., record=True)`` records one
``finding`` trace event per new finding (name = kind, detail = ``{"title", "severity",
"key"}``); a finding whose ``key`` was already recorded into that tracer (by an earlier call,
or found in the trace itself) is not recorded again.

docs/diagnostics.md has the same in longer form, with examples.
"""

from .. import _faces
from ._barrier import detect_barrier_misuse as detect_barrier_misuse
from ._blocking import UNDISPATCHED_SHARE as UNDISPATCHED_SHARE
from ._blocking import WAITERS_CAP as WAITERS_CAP
from ._blocking import detect_blocking as detect_blocking
from ._deadlocks import detect_deadlocks as detect_deadlocks
from ._diagnose import SAMPLE_STACK_LIMIT as SAMPLE_STACK_LIMIT
from ._diagnose import diagnose as diagnose
from ._exhaustion import BACKLOG_SATURATION as BACKLOG_SATURATION
from ._exhaustion import EXHAUSTION_PARTS as EXHAUSTION_PARTS
from ._exhaustion import LITTLE_HEADROOM as LITTLE_HEADROOM  # tuning sizes pools with it too
from ._exhaustion import detect_pool_exhaustion as detect_pool_exhaustion
from ._finding import DEFAULT_THRESHOLDS as DEFAULT_THRESHOLDS
from ._finding import FINDING_KINDS as FINDING_KINDS
from ._finding import FINDING_NOTEBOOKS as FINDING_NOTEBOOKS
from ._finding import MAX_EVENTS as MAX_EVENTS
from ._finding import SEVERITIES as SEVERITIES
from ._finding import Finding as Finding
from ._lock_order import detect_lock_order as detect_lock_order
from ._shared_state import detect_shared_mutable_state as detect_shared_mutable_state
from ._stalls import STALL_FACTOR as STALL_FACTOR

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FINDING_KINDS",
    "FINDING_NOTEBOOKS",
    "SEVERITIES",
    "Finding",
    "detect_barrier_misuse",
    "detect_blocking",
    "detect_deadlocks",
    "detect_lock_order",
    "detect_pool_exhaustion",
    "detect_shared_mutable_state",
    "diagnose",
]


_faces.claim_public_names(globals())
