"""Trace events: the bounded buffer that records them, their files, and the readings of them.

The floor of routilux: this package imports nothing of routilux, so the model, the engine,
``sync`` and the readers (diagnostics, tuning, the Jupyter dashboard) can all depend on it.

- ``_event``: ``TraceEvent`` (one event) and ``EVENT_KINDS`` (what each kind means).
- ``_tracer``: ``Tracer``, the bounded buffer: record (the hot path) and read by cursor.
- ``_jsonl``: ``Tracer.save`` / ``Tracer.load`` files and their validation.
- ``_chrome``: ``Tracer.to_chrome_trace`` (Perfetto / chrome://tracing).
- ``_lanes``: where a task ran (pool thread, executor thread, remote), ``LOOP_THREAD_NAME``.
- ``_sources``: the one input reader (a tracer, a traced runtime, a path, or events).
- ``_spans``: ``task_spans``, each task's run rebuilt from its events.
- ``_series``: ``pool_series`` / ``PoolCounter``, the pool over time.
"""

from __future__ import annotations

from ._event import EVENT_KINDS, TraceEvent
from ._lanes import LANES
from ._series import PoolCounter, PoolSample, pool_series
from ._spans import TaskSpan, task_spans
from ._tracer import Tracer

# Importable from routilux.trace beside __all__, as before the split: the loader's limits,
# the lane names, and the readers diagnostics and tuning share (``X as X`` re-exports).
from ._jsonl import MAX_LOAD_CAPACITY as MAX_LOAD_CAPACITY
from ._jsonl import MAX_LOAD_NESTING as MAX_LOAD_NESTING
from ._lanes import LANE_EXECUTOR as LANE_EXECUTOR
from ._lanes import LANE_POOL as LANE_POOL
from ._lanes import LANE_REMOTE as LANE_REMOTE
from ._lanes import LOOP_THREAD_NAME as LOOP_THREAD_NAME
from ._lanes import _lane_of as _lane_of
from ._sources import _source_events as _source_events
from ._spans import _task_spans as _task_spans

__all__ = [
    "EVENT_KINDS",
    "LANES",
    "PoolCounter",
    "PoolSample",
    "TaskSpan",
    "TraceEvent",
    "Tracer",
    "pool_series",
    "task_spans",
]


def _fixup_module_metadata() -> None:
    """Reprs, tracebacks and pickles name ``routilux.trace.Tracer``, not ``..._tracer.Tracer``."""
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith(__name__ + "._"):
            try:
                obj.__module__ = __name__
            except (AttributeError, TypeError):
                pass


_fixup_module_metadata()
del _fixup_module_metadata
