"""Trace events and the bounded, sequence-numbered buffer that holds them.

Design (read before changing ``Tracer.record``, the hot path):

- Record cheaply, format later. ``record`` stores one plain tuple laid out exactly like
  ``TraceEvent``; readers turn tuples into ``TraceEvent`` records, DataFrames, Chrome traces
  or JSON lines, off the worker threads.
- One lock covers "take the next seq, store the tuple", so seq order is buffer order. A
  reader that takes the same lock sees a consistent prefix: no holes, no half-written slots.
- No call while the lock is held. On CPython with a GIL, a thread only gives up the GIL at
  a call or a backward jump, so a ``with`` block without calls is never interrupted and the
  lock is never contended. Taking the clock inside the block, or using explicit
  ``acquire()``/``release()`` (a GIL switch can happen right after ``acquire()`` returns),
  lets a thread lose the GIL while holding the lock; eight threads recording in a loop
  then convoy on it and each record costs up to ten times more (benchmarks/trace_record.py).
  The price: the clock is read just before the seq is taken, so at a thread switch ``ts_ns``
  can step back by a few microseconds along seq. It never steps back within one thread.
  Readers follow the same rule, so they never stall writers either. (Overwriting the
  oldest event can still run a ``detail``'s ``__del__``; that costs time, not correctness.)
- The buffer is a preallocated list used as a ring: the event with sequence number ``seq``
  lives at ``seq % capacity``. Nothing is counted on the hot path: the retained range and
  the number of dropped events follow from ``last_seq``, the seq at the last ``clear()``
  and the capacity.
- Thread names are looked up once per thread (``threading.current_thread().name``) and kept
  in a dict keyed by ``threading.get_ident()``. Idents are recycled as soon as a thread
  ends (on Linux ``pthread_self()`` reuses the same addresses), so each registration plants
  a token in a ``threading.local``; the token dies with its thread and forgets the name,
  and a new thread with a recycled ident registers its own.
- Readers pull by cursor (``read(since=last_seen_seq)``). There are no push callbacks: no
  user or widget code ever runs on a worker thread because of tracing.

Rejected: ``collections.deque(maxlen=...)`` (cheap appends, but reading from a cursor
would walk the deque from one end, O(capacity)); building a ``TraceEvent`` on the hot path
(about five times the cost of a plain tuple); ``itertools.count`` without a lock (seq and
slot would be taken in separate steps, so a reader could see seq N+1 before N exists).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from ._chrome import chrome_trace
from ._event import _FIELDS, TraceEvent, _make_event
from ._jsonl import read_trace, write_trace

if TYPE_CHECKING:
    import pandas

_DEFAULT_CAPACITY = 200_000  # events


def _check_int(name: str, value: Any, minimum: int, kind: str, bound: str) -> None:
    """TypeError "must be {kind}" for a non-int, ValueError "must be {bound}" below minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {bound}, got {value}")



_get_ident = threading.get_ident
_monotonic_ns = time.monotonic_ns


class _ThreadToken:
    """Lives in a thread's ``threading.local`` and forgets the thread's name when it ends."""

    __slots__ = ("_ident", "_names")

    def __init__(self, names: dict[int, str], ident: int) -> None:
        self._names = names
        self._ident = ident

    def __del__(self) -> None:
        # Runs while the ending thread clears its state, before its ident can be reused.
        self._names.pop(self._ident, None)


class Tracer:
    """A bounded ring buffer of trace events that counts what it drops.

    Guarantees:

    - ``record`` is safe to call from any number of threads at once. Each event gets the
      next sequence number, and seq order is buffer order. Timestamps never go backwards
      within one thread (across threads see the module docstring).
    - ``read``, the exports and ``save`` are safe to call from any thread while others
      record; they see a consistent snapshot.
    - When the buffer is full the oldest events are discarded and counted in ``dropped``.

    Args:
        capacity: The most events kept at once (an int >= 1).

    Raises:
        TypeError: If ``capacity`` is not an int.
        ValueError: If ``capacity`` is less than 1.
    """

    __slots__ = (
        "__weakref__",
        "_base_seq",
        "_capacity",
        "_dropped_before",
        "_lock",
        "_origin_ns",
        "_pid",
        "_ring",
        "_seq",
        "_thread_local",
        "_thread_names",
    )

    def __init__(self, capacity: int = _DEFAULT_CAPACITY) -> None:
        _check_int("capacity", capacity, 1, "an int >= 1 (events kept)",
                   "an int >= 1 (events kept)")
        self._capacity = capacity
        self._lock = threading.Lock()
        self._ring: list[tuple[Any, ...] | None] = [None] * capacity
        self._seq = 0  # seq of the newest event (0: none yet)
        self._base_seq = 0  # seq at the last clear(); events after it are retained or dropped
        self._dropped_before = 0  # dropped before the last clear() or load
        self._origin_ns: int | None = None  # ts of the first event, for ts_s
        self._thread_names: dict[int, str] = {}
        self._thread_local = threading.local()
        self._pid = os.getpid()

    # -- hot path ----------------------------------------------------------------------------

    def record(
        self,
        kind: str,
        job_id: str | None = None,
        routine: str | None = None,
        name: str | None = None,
        value: float | None = None,
        detail: Any = None,
        worker_id: str | None = None,
    ) -> None:
        """Append one event; called by worker threads, so it stays well under a microsecond.

        Nothing is validated or formatted here: ``kind`` should be one of ``EVENT_KINDS``
        and ``detail`` should be small and JSON-able, but both are only looked at by readers.

        Args:
            kind: What happened, e.g. ``"task.started"``.
            job_id: The job the event belongs to.
            routine: The routine id within its flow.
            name: The slot, event, lock or attribute name.
            value: A depth, duration in seconds or size, depending on the kind.
            detail: A small JSON-able value.
            worker_id: The routilux WorkerState id.
        """
        ident = _get_ident()
        thread_name = self._thread_names.get(ident)
        if thread_name is None:
            thread_name = self._register_thread(ident)
        ts_ns = _monotonic_ns()
        # Keep calls out of this block: see "No call while the lock is held" above.
        with self._lock:
            seq = self._seq + 1
            self._seq = seq
            self._ring[seq % self._capacity] = (
                seq,
                ts_ns,
                kind,
                ident,
                thread_name,
                worker_id,
                job_id,
                routine,
                name,
                value,
                detail,
            )

    def record_as(
        self,
        thread: int,
        kind: str,
        job_id: str | None = None,
        routine: str | None = None,
        name: str | None = None,
        value: float | None = None,
        detail: Any = None,
        worker_id: str | None = None,
        thread_name: str | None = None,
        ts_ns: int | None = None,
    ) -> None:
        """Like ``record``, on behalf of another thread (e.g. a stack sample of a busy one).

        Args:
            thread: The ident of the thread the event is about (for a thread of another
                process, any number unique to it; readers key lanes by number and name).
            thread_name: Its name; looked up among threads that recorded before if omitted.
            ts_ns: When it happened (``time.monotonic_ns()`` of this process); default now.
                Events that happened elsewhere (a Dask worker) arrive late and keep their
                own time, so ``ts_ns`` may step back along ``seq`` by up to a task's run.
        """
        if thread_name is None:
            thread_name = self._thread_names.get(thread) or f"thread-{thread}"
        if ts_ns is None:
            ts_ns = _monotonic_ns()
        with self._lock:
            seq = self._seq + 1
            self._seq = seq
            self._ring[seq % self._capacity] = (
                seq, ts_ns, kind, thread, thread_name, worker_id, job_id, routine, name,
                value, detail,
            )

    def _register_thread(self, ident: int) -> str:
        thread_name = threading.current_thread().name
        self._thread_names[ident] = thread_name
        self._thread_local.token = _ThreadToken(self._thread_names, ident)
        return thread_name

    # -- state -------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """The most events kept at once."""
        return self._capacity

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest event recorded (0 if none); a cursor for ``read``."""
        return self._seq

    @property
    def dropped(self) -> int:
        """Events discarded so far because the buffer was full (``clear()`` does not count)."""
        with self._lock:  # no calls inside: see the module docstring
            before, held = self._dropped_before, self._seq - self._base_seq
        return before + max(0, held - self._capacity)

    def __len__(self) -> int:
        """Number of events currently held."""
        with self._lock:
            held = self._seq - self._base_seq
        return min(held, self._capacity)

    def __repr__(self) -> str:
        return (
            f"<Tracer events={len(self)} capacity={self._capacity} dropped={self.dropped} "
            f"last_seq={self._seq}>"
        )

    def clear(self) -> None:
        """Discard every held event.

        Sequence numbers keep counting, so readers' cursors stay valid, and ``dropped``
        keeps its count: cleared events were not dropped for lack of room.
        """
        ring: list[tuple[Any, ...] | None] = [None] * self._capacity
        with self._lock:
            over = self._seq - self._base_seq - self._capacity
            self._dropped_before += over if over > 0 else 0  # noqa: FURB136 - no calls here
            self._base_seq = self._seq
            self._ring = ring
            self._origin_ns = None

    # -- reading -----------------------------------------------------------------------------

    def read(self, since: int = 0) -> list[TraceEvent]:
        """Events with ``seq > since`` that are still held, oldest first.

        Pass the ``seq`` of the last event you saw (or ``last_seq``) to get only newer ones.
        Costs O(k) in the number of events returned. If events after ``since`` were already
        dropped, the result starts at the oldest held event; compare its ``seq`` with
        ``since + 1`` to see the gap.

        Args:
            since: A sequence number; 0 reads everything held.

        Raises:
            TypeError: If ``since`` is not an int.
            ValueError: If ``since`` is negative.
        """
        return [_make_event(row) for row in self._snapshot(since)[0]]

    def read_rows(self, since: int = 0) -> list[tuple[Any, ...]]:
        """Like ``read``, but each event as a plain tuple in ``TraceEvent`` field order.

        For readers that fold many events per call, such as the live dashboard: building a
        ``TraceEvent`` per event (and the garbage collection it triggers) costs several
        times what the folding does. The tuples are the buffer's own immutable records;
        ``TraceEvent._make(row)`` turns one into an event. Same guarantees and errors as
        ``read``.
        """
        return self._snapshot(since)[0]

    def _snapshot(self, since: int) -> tuple[list[tuple[Any, ...]], int]:
        """The held rows with seq > since, and the dropped count, taken under one lock."""
        _check_int("since", since, 0, "an int sequence number (e.g. tracer.last_seq)",
                   ">= 0 (0 reads every held event)")
        cap = self._capacity
        with self._lock:  # no calls inside: see the module docstring
            last = self._seq
            held = last - self._base_seq
            # Conditional expressions, not min()/max(): no calls while the lock is held.
            dropped = self._dropped_before + (held - cap if held > cap else 0)
            first = last - (held if held < cap else cap) + 1  # noqa: FURB136 - oldest held seq
            ring = self._ring
            if held > 0 and self._origin_ns is None:
                self._origin_ns = ring[first % cap][1]  # type: ignore[index]
            start = since + 1 if since >= first else first
            if start > last:
                return [], dropped
            i, j = start % cap, last % cap
            rows = ring[i : j + 1] if i <= j else ring[i:] + ring[: j + 1]
        return rows, dropped  # type: ignore[return-value]

    def to_dataframe(self, since: int = 0) -> pandas.DataFrame:
        """The held events with ``seq > since`` as a pandas DataFrame, one row per event.

        Columns are the ``TraceEvent`` fields in order, then ``ts_s``: seconds since the
        first event this tracer held when it was first read (stable across calls, so
        frames read with a cursor line up).

        Raises:
            ImportError: If pandas is not installed.
        """
        try:
            # Deferred: pandas is optional (routilux[jupyter]) and costs ~0.3 s to import;
            # ``import routilux`` must not pull it in (test_public_api).
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "Tracer.to_dataframe needs pandas, which is not installed; "
                "install it with: pip install routilux[jupyter]"
            ) from exc
        rows = self._snapshot(since)[0]
        frame = pd.DataFrame.from_records(rows, columns=list(_FIELDS))
        origin = self._origin_ns if self._origin_ns is not None else 0
        frame["ts_s"] = (frame["ts_ns"].astype("int64") - origin) / 1e9
        return frame

    def to_chrome_trace(self, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The held events as Chrome Trace Event JSON, which Perfetto and chrome://tracing open.

        Each thread gets its own track: tasks are slices named after their routine, lock
        waits are ``wait <lock>`` slices, queue depth and busy threads are counters, and
        findings, deadlocks, pool resizes and job failures are instant markers. Times are
        microseconds since the first held event.

        Thread ids are small integers (1, 2, ... in order of first appearance), one per
        (thread ident, thread name) pair: Perfetto reads ``tid`` as a 32-bit number, and
        Python idents are 64-bit addresses. Each track's ``thread_name`` metadata carries
        the real ident in ``args.ident``.

        Args:
            path: If given, the JSON is also written to this file.

        Returns:
            ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``.
        """
        rows, dropped = self._snapshot(0)
        return chrome_trace(rows, capacity=self._capacity, dropped=dropped, pid=self._pid,
                            path=path)

    # -- files -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the held events as JSON lines: a header object, then one object per event.

        ``detail`` values that JSON cannot represent are stored as their ``repr`` strings;
        nothing is pickled. ``Tracer.load`` reads the file back.
        """
        rows, dropped = self._snapshot(0)
        write_trace(path, rows, capacity=self._capacity, dropped=dropped, pid=self._pid)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tracer:
        """Read a file written by ``save`` into a new tracer.

        Events keep their ``seq`` and ``ts_ns``; ``dropped`` and ``capacity`` are restored
        (capacity grows if the file holds more events). Recording into the loaded tracer
        continues after the last seq. Kinds are not checked against ``EVENT_KINDS``, so
        traces from newer versions that add kinds still load.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If the file is not a routilux trace, or an event line is malformed;
                the message names the path and line.
        """
        header, rows = read_trace(path)
        tracer = cls(max(header["capacity"], len(rows)))
        tracer._dropped_before = header["dropped"]
        if header.get("pid") is not None:
            tracer._pid = header["pid"]  # the recording process, for to_chrome_trace
        if rows:
            tracer._base_seq = rows[0][0] - 1
            tracer._seq = rows[-1][0]
            for row in rows:
                tracer._ring[row[0] % tracer._capacity] = row
        return tracer
