"""``Tracer``: the bounded, sequence-numbered buffer of trace events; record and read.

The design (one append per event, seqs given at merge, format when read) is in the
package docstring, ``routilux/trace/__init__.py``: read it before changing ``record``.
"""

from __future__ import annotations

import operator
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
_CHUNK = 1024  # pending events at which the recording thread merges (see the design)


def _check_int(name: str, value: Any, minimum: int, kind: str, bound: str) -> None:
    """TypeError "must be {kind}" for a non-int, ValueError "must be {bound}" below minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {bound}, got {value}")


_get_ident = threading.get_ident
_monotonic_ns = time.monotonic_ns
_prepend = operator.add  # (seq,) + recorded tuple: the event's row


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

    - ``record`` is safe to call from any number of threads at once and never waits for
      a lock. Events are numbered in the order they were recorded (seq order is buffer
      order) when a reader next looks. Timestamps never go backwards within one thread
      (across threads see the package docstring).
    - ``read``, the exports and ``save`` are safe to call from any thread while others
      record; they see a consistent snapshot that includes every event recorded before
      the call began.
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
        "_chunk",
        "_dropped_before",
        "_formatted",
        "_local",
        "_lock",
        "_names",
        "_origin_ns",
        "_pending",
        "_pid",
        "_ring",
        "_seq",
    )

    def __init__(self, capacity: int = _DEFAULT_CAPACITY) -> None:
        _check_int("capacity", capacity, 1, "an int >= 1 (events kept)",
                   "an int >= 1 (events kept)")
        self._capacity = capacity
        self._chunk = min(capacity, _CHUNK)
        self._lock = threading.Lock()  # merges and readers; record() only tries it (_flush)
        # The event with seq s lives at s % capacity: as recorded (without its seq) until
        # a reader first reads it, then as its row in TraceEvent field order (seq first).
        self._ring: list[tuple[Any, ...] | None] = [None] * capacity
        self._seq = 0  # seq of the newest merged event (0: none yet)
        self._formatted = 0  # held events with seq <= this are stored as full rows
        self._base_seq = 0  # seq at the last clear(); events after it are retained or dropped
        self._dropped_before = 0  # dropped before the last clear() or load
        self._origin_ns: int | None = None  # ts of the first event, for ts_s
        self._local = threading.local()  # .entry = (ident, thread name)
        self._names: dict[int, str] = {}  # ident -> name of live threads that recorded
        # Recorded, not yet numbered, in record order. Never replaced, only sliced off the
        # front by merges: a recording thread may hold it between loading and appending.
        self._pending: list[tuple[Any, ...]] = []
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
        """Append one event to the pending list: no lock, a few hundred nanoseconds.

        Nothing is validated, numbered or formatted here: ``kind`` should be one of
        ``EVENT_KINDS`` and ``detail`` should be small and JSON-able, but both are only
        looked at by readers.

        Args:
            kind: What happened, e.g. ``"task.started"``.
            job_id: The job the event belongs to.
            routine: The routine id within its flow.
            name: The slot, event, lock or attribute name.
            value: A depth, duration in seconds or size, depending on the kind.
            detail: A small JSON-able value.
            worker_id: The routilux WorkerState id.
        """
        try:
            ident, thread_name = self._local.entry
        except AttributeError:  # this thread's first event
            ident, thread_name = self._register_thread()
        pending = self._pending
        pending.append((_monotonic_ns(), kind, ident, thread_name, worker_id, job_id, routine,
                        name, value, detail))
        if len(pending) >= self._chunk:
            self._flush()

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
            thread_name = self._names.get(thread) or f"thread-{thread}"
        if ts_ns is None:
            ts_ns = _monotonic_ns()
        pending = self._pending
        pending.append((ts_ns, kind, thread, thread_name, worker_id, job_id, routine, name,
                        value, detail))
        if len(pending) >= self._chunk:
            self._flush()

    def _register_thread(self) -> tuple[int, str]:
        ident = _get_ident()
        entry = (ident, threading.current_thread().name)
        self._names[ident] = entry[1]
        self._local.token = _ThreadToken(self._names, ident)
        self._local.entry = entry
        return entry

    def _flush(self) -> None:
        """Merge from a recording thread that filled the pending list, unless one is running.

        Never waits: whoever holds the lock is merging anyway, and a finaliser that
        records while this thread merges must not deadlock on the lock it holds.
        """
        if self._lock.acquire(blocking=False):
            try:
                self._merge()
            finally:
                self._lock.release()

    def _merge(self) -> None:
        """Number and store the events recorded so far, in record order. Hold the lock."""
        pending = self._pending
        n = len(pending)
        if n:
            batch = pending[:n]
            del pending[:n]  # in place: appends made meanwhile land after these n
            self._store(batch)

    def _store(self, rows: list[tuple[Any, ...]]) -> None:
        """Put ``rows`` (oldest first) into the ring after the newest event. Hold the lock."""
        n = len(rows)
        cap = self._capacity
        first = self._seq + 1
        self._seq += n
        if n > cap:  # only the newest cap can be held; the rest are dropped at once
            rows = rows[n - cap :]
            first += n - cap
            n = cap
        i = first % cap
        ring = self._ring
        if i + n <= cap:
            ring[i : i + n] = rows
        else:
            k = cap - i
            ring[i:] = rows[:k]
            ring[: n - k] = rows[k:]

    # -- state -------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """The most events kept at once."""
        return self._capacity

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest event recorded (0 if none); a cursor for ``read``."""
        with self._lock:
            self._merge()
            return self._seq

    @property
    def dropped(self) -> int:
        """Events discarded so far because the buffer was full (``clear()`` does not count)."""
        with self._lock:
            self._merge()
            before, held = self._dropped_before, self._seq - self._base_seq
        return before + max(0, held - self._capacity)

    def __len__(self) -> int:
        """Number of events currently held."""
        with self._lock:
            self._merge()
            held = self._seq - self._base_seq
        return min(held, self._capacity)

    def __repr__(self) -> str:
        return (
            f"<Tracer events={len(self)} capacity={self._capacity} dropped={self.dropped} "
            f"last_seq={self._seq}>"
        )

    def clear(self) -> None:
        """Discard every held event, and every event recorded before the call.

        Sequence numbers keep counting, so readers' cursors stay valid, and ``dropped``
        keeps its count: cleared events were not dropped for lack of room.
        """
        ring: list[tuple[Any, ...] | None] = [None] * self._capacity
        with self._lock:
            self._merge()
            over = self._seq - self._base_seq - self._capacity
            self._dropped_before += max(over, 0)
            self._base_seq = self._formatted = self._seq
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
        times what the folding does. The tuples are the buffer's own immutable records
        (built when an event is first read); ``TraceEvent._make(row)`` turns one into an
        event. Same guarantees and errors as ``read``.
        """
        return self._snapshot(since)[0]

    def _snapshot(self, since: int) -> tuple[list[tuple[Any, ...]], int]:
        """The held rows with seq > since, and the dropped count, taken under one lock."""
        _check_int("since", since, 0, "an int sequence number (e.g. tracer.last_seq)",
                   ">= 0 (0 reads every held event)")
        cap = self._capacity
        with self._lock:
            self._merge()
            last = self._seq
            held = last - self._base_seq
            dropped = self._dropped_before + max(held - cap, 0)
            if held <= 0:
                return [], dropped
            first = last - min(held, cap) + 1  # the oldest held seq
            if self._formatted < last:
                self._format(max(self._formatted + 1, first), last)
            ring = self._ring
            if self._origin_ns is None:
                self._origin_ns = ring[first % cap][1]  # type: ignore[index]
            start = max(since + 1, first)
            if start > last:
                return [], dropped
            i, j = start % cap, last % cap
            rows = ring[i : j + 1] if i <= j else ring[i:] + ring[: j + 1]
        return rows, dropped  # type: ignore[return-value]

    def _format(self, lo: int, hi: int) -> None:
        """Store the held events lo..hi as full rows (seq first), once. Hold the lock.

        The first reader of an event pays for its row (a tuple per event, in C), so the
        recording threads never do and later readers get slices of the ring.
        """
        cap, ring = self._capacity, self._ring
        i, j = lo % cap, hi % cap
        parts = [(i, j + 1, lo)] if i <= j else [(i, cap, lo), (0, j + 1, lo + cap - i)]
        for a, b, seq in parts:
            ring[a:b] = list(map(_prepend, zip(range(seq, seq + b - a)), ring[a:b]))
        self._formatted = hi

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
            tracer._seq = tracer._formatted = rows[-1][0]
            for row in rows:
                tracer._ring[row[0] % tracer._capacity] = row
        return tracer
