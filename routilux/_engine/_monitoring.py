"""The process-wide monitoring switch behind ``routilux.monitoring.MonitoringRegistry``.

While it is on, every Runtime created records a trace (as with ``trace=True``), and a
runtime that was created untraced starts tracing at its next ``post`` (so a notebook cell
traced by ``%%routilux trace`` covers the runtimes it uses, not only those it creates).
Turning it off stops the tracing it started on existing runtimes; runtimes born traced
keep their tracer. The tracers it started stay listed in ``traced()``, so a report or an
export after the fact still reads them.

Hot paths read ``enabled`` (a module global) without a lock: one attribute load per post.
``ROUTILUX_ENABLE_MONITORING=true`` in the environment turns it on at import.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

MAX_TRACED = 100  # tracers remembered by traced(), oldest forgotten first

enabled = os.environ.get("ROUTILUX_ENABLE_MONITORING", "").strip().lower() in (
    "1", "true", "yes", "on")
_lock = threading.Lock()
_generation = 0  # bumped by every enable(): which runtimes a given session traced
# (weak runtime, tracer, attached: tracing started on an existing runtime, generation)
_traced: list[tuple[weakref.ref[Any], Any, bool, int]] = []


def enable() -> int:
    """Turn monitoring on; returns the session number ``traced(since=...)`` filters by."""
    global enabled, _generation
    with _lock:
        if not enabled:
            _generation += 1
        enabled = True
        return _generation


def disable() -> None:
    """Turn monitoring off; tracing it attached to existing runtimes stops."""
    global enabled
    with _lock:
        enabled = False
        attached = [(ref(), tracer) for ref, tracer, att, _ in _traced if att]
    for runtime, tracer in attached:
        if runtime is not None:
            runtime._stop_tracing(tracer)


def adopt(runtime: Any, tracer: Any, attached: bool) -> None:
    """Remember a tracer the switch gave ``runtime`` (called by the runtime)."""
    with _lock:
        _traced.append((weakref.ref(runtime), tracer, attached, _generation))
        del _traced[:-MAX_TRACED]


def traced(since: int | None = None) -> list[tuple[Any, Any]]:
    """``(runtime or None if collected, tracer)`` pairs the switch traced, oldest first."""
    with _lock:
        items = list(_traced)
    return [(ref(), tracer) for ref, tracer, _, gen in items if since is None or gen >= since]
