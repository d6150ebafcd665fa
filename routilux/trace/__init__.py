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
  plain tuple to the tracer's pending list: no lock, no sequence number, no formatting.
  ``list.append`` is atomic under the GIL, so the appends of all threads form one order,
  the order the events were recorded in; nothing else is needed. (The previous design
  took a lock per event to number it: two to three times the cost of the append, and a
  convoy of recording threads whenever one lost the GIL holding it.)
- Sequence numbers are given when events are merged. A merge takes the tracer's lock,
  slices the pending events off the front of the list (appends made meanwhile land after
  them, so none is lost or taken twice) and stores them in the ring with the next
  consecutive seqs. So seq order is record order, seqs have no holes, and buffer order is
  seq order, as before; cursors, ``last_seq`` and the drop arithmetic are unchanged. The
  clock is read just before the append, so at a thread switch ``ts_ns`` can step back by
  a few microseconds along seq (as before); it never steps back within one thread.
- Who merges: every reader (``read``, ``read_rows``, ``last_seq``, ``dropped``, ``len``,
  the exports, ``save``, ``clear``), and a recording thread that finds ``_CHUNK`` events
  pending (``min(capacity, _CHUNK)``). That flush tries the lock without waiting: a thread
  that finds a merge running goes on (the merge takes its event too, or the next one
  does), so ``record`` never waits, and a finaliser that records during its own thread's
  merge (a detail freed by the ring) cannot deadlock. At most about ``_CHUNK`` events wait
  unnumbered beyond ``capacity``.
- Format when read. A merge stores the recorded tuples without their seq (the slot says
  it: the event with sequence number ``seq`` lives at ``seq % capacity``), whole runs at a
  time with one slice assignment. The first reader of an event replaces it in the ring by
  its row in ``TraceEvent`` field order (``(seq,) + tuple``, in C, once per event), so
  later reads are slices; ``TraceEvent`` records, DataFrames, Chrome traces and JSON
  lines are built from rows, off the worker threads.
- Bounded and counted as before. The ring keeps the newest ``capacity`` events; nothing
  is counted on the hot path: the retained range and the number of dropped events follow
  from ``last_seq``, the seq at the last ``clear()`` and the capacity.
- Thread names are looked up once per thread (``threading.current_thread().name``) and
  kept, with the ident, in the thread's entry of a ``threading.local`` (one attribute
  read per event). A token planted beside it dies with the thread and forgets the name
  kept for ``record_as`` lookups (idents are recycled as soon as a thread ends).
- Readers pull by cursor (``read(since=last_seen_seq)``). There are no push callbacks: no
  user or widget code ever runs on a worker thread because of tracing.

Rejected: a global ``itertools.count()`` taken per event (its ``next()`` is atomic under
the GIL, but a thread can lose the GIL between taking seq N and storing it, so a reader
would see N+1 before N and would have to wait for the hole or skip it; and a call per
event); per-thread lists merged by timestamp (measured slower than the one list, and
their order across threads is only as good as the clock's resolution, 15.6 ms on Windows
before Python 3.13, where one list is exact); one lock per event (the previous design);
``collections.deque(maxlen=...)`` (reading from a cursor would walk the deque from one
end, O(capacity)); building a ``TraceEvent`` on the hot path (about five times the cost of
a plain tuple); a background merging thread (a thread per tracer, for what readers and an
occasional flush already do). On a free-threaded CPython, ``list.append`` takes the list's
own lock; per-thread lists would then avoid that contention.
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
from ._lanes import POOL_THREAD_PREFIX as POOL_THREAD_PREFIX
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


# routilux._faces.claim_public_names does this for the other faces; trace imports nothing
# of routilux, so it keeps its own four lines.
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
