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

Design of ``Tracer`` (read before changing ``Tracer.record``, the hot path):

- One append per event on the recording thread. ``record`` reads the clock and appends one
  plain tuple to the calling thread's own list, found through a ``threading.local``: no
  lock, no sequence number, no shared counter is touched. ``list.append`` is atomic under
  the GIL (and under the per-object locks of free-threaded CPython), and only the owner
  appends to its list, so nothing else is needed. Eight threads recording at once no
  longer queue on one lock (benchmarks/trace_record.py, "8 threads").
- Sequence numbers are given when events are merged, not when they are recorded. A merge
  takes the tracer's lock, reads the clock once (the *cut*), takes from every thread's list
  the events recorded up to the cut, sorts them by ``ts_ns`` (stable: one thread's events
  keep their order) and stores them in the ring with the next consecutive seqs. So seqs
  have no holes and seq order is buffer order, as before; cursors, ``last_seq`` and the
  drop arithmetic are unchanged. The cut keeps cause before effect: an event recorded
  after something another thread did after the cut has a later clock, so it waits for
  the next merge rather than being numbered before its cause. The only reordering is an
  event whose thread lost the GIL between reading the clock and appending: it is numbered
  in the next merge, so ``ts_ns`` can step back by a few microseconds along seq (the old
  locked design had the same step for the same reason). It never steps back within one
  thread.
- Who merges: every reader (``read``, ``read_rows``, ``last_seq``, ``dropped``, ``len``,
  the exports, ``save``, ``clear``), ``record_as`` (so an event recorded on behalf of
  another thread is numbered after what was recorded before it), and a recording thread
  whose list reaches ``_CHUNK`` events (about once per ``_CHUNK`` events per thread, and
  then for every thread at once). That flush tries the lock without waiting: a thread
  that finds a reader merging keeps appending and tries again on its next event, so the
  hot path never waits (only a thread's first event takes the lock, to register it). Pending lists hold at most about ``min(capacity, _CHUNK)``
  events per recording thread beyond ``capacity``.
- Format when read. A merge stores the recorded tuples without their seq (the slot says
  it: the event with sequence number ``seq`` lives at ``seq % capacity``), whole runs at a
  time with one slice assignment. The first reader of an event replaces it in the ring by
  its row in ``TraceEvent`` field order (``(seq,) + tuple``, in C, once per event), so
  later reads are slices, as before; ``TraceEvent`` records, DataFrames, Chrome traces
  and JSON lines are built from rows, off the worker threads.
- Bounded and counted as before. The ring keeps the newest ``capacity`` events; nothing
  is counted on the hot path: the retained range and the number of dropped events follow
  from ``last_seq``, the seq at the last ``clear()`` and the capacity.
- Thread names are looked up once per thread (``threading.current_thread().name``), when
  the thread first records, and kept with its list. The registration also plants a token
  in the thread's ``threading.local``; the token dies with its thread, forgets its name
  (idents are recycled as soon as a thread ends) and hands its list to the next merge,
  which numbers what is left and then drops the list.
- Readers pull by cursor (``read(since=last_seen_seq)``). There are no push callbacks: no
  user or widget code ever runs on a worker thread because of tracing.

Rejected: a global ``itertools.count()`` taken per event (its ``next()`` is atomic under
the GIL, but a thread can lose the GIL between taking seq N and appending it, so a reader
would see N+1 before N and would have to wait for or skip the hole; it also costs a call
per event, and merging by seq gives nothing the clock does not); per-thread sequences (seq
would no longer be one order); one lock per event (the previous design: about two to three
times the cost of the append, and a convoy when a thread loses the GIL holding it);
``collections.deque(maxlen=...)`` (reading from a cursor would walk the deque from one
end, O(capacity)); building a ``TraceEvent`` on the hot path (about five times the cost of
a plain tuple); a background merging thread (a thread per tracer, for what readers and an
occasional flush already do).
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
