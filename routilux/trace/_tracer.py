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

import itertools
import json
import math
import operator
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas

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

_FORMAT_NAME = "routilux-trace"  # the "format" of a saved trace's header line
_FORMAT_VERSION = 1
# Limits of Tracer.load, so a hostile or corrupt file gives a ValueError, never a
# RecursionError, a MemoryError or an OverflowError (issue 13).
MAX_LOAD_CAPACITY = 10_000_000  # events a loaded tracer may hold (its ring is allocated)
MAX_LOAD_NESTING = 100  # arrays/objects nested inside one event line
_INT64 = 1 << 63  # seq, ts_ns, thread idents and counters must fit in 64 bits
_DEFAULT_CAPACITY = 200_000  # events

EVENT_KINDS: dict[str, str] = {
    "job.posted": "a job was posted: routine is the entry routine, name the entry slot",
    "job.completed": "a job finished without error; value is its latency in seconds",
    "job.failed": "a job ended in error; value is its latency in seconds, detail the error",
    "job.cancelled": "a job was cancelled; value is its latency in seconds, detail the reason",
    "slot.enqueue": "a slot received data; value is its unconsumed item count afterwards",
    "slot.full": "a slot refused an item; value is its max_queue_length",
    "policy.hold": "an activation policy declined to run yet; value is the unconsumed count",
    "barrier.wait": "an all-slots-ready routine waits; detail maps each slot to its count",
    "barrier.release": "a barrier joined one item per slot; value is the distinct job count",
    "task.queued": "an activation joined the run queue; value is the queue depth afterwards",
    "task.started": "a pool thread took a task; value is its run-queue wait in seconds",
    "task.finished": "a task's logic returned or raised; value is its run time in seconds",
    "task.error": "a task's logic raised; detail is 'ExcType: message'",
    "task.sample": "a stack sample of a long-running task; detail is the formatted stack",
    "state.write": "a routine attribute was assigned while its logic ran; name is the attribute",
    "pool.size": "tracing started; value is the worker pool's size then",
    "pool.resize": "the worker pool changed size; value is the new size, detail the old one",
    "pool.autosize": "automatic sizing decided; name the action, value the size, detail "
                     "{old, new, reason, numbers}",
    "queue.depth": "periodic sample; value is queued activations, detail {busy, size}",
    "lock.wait": "a thread started waiting for a contended traced lock; name is the lock",
    "lock.acquired": "a traced lock was acquired after a wait; value is seconds waited",
    "lock.released": "a traced lock was released after a wait for it, or while others waited; "
                     "value is seconds held (None if not known), detail the waiting it caused",
    "lock.timeout": "a lock acquire gave up; value is seconds waited",
    "lock.order": "a thread holding lock detail.held took lock name; detail has both ids and "
                  "the site (file:line), recorded once per new edge",
    "deadlock.detected": "threads wait for each other's locks in a cycle; detail is the cycle",
    "finding": "a pitfall detector's verdict; name is the finding kind",
}


def _check_int(name: str, value: Any, minimum: int, kind: str, bound: str) -> None:
    """TypeError "must be {kind}" for a non-int, ValueError "must be {bound}" below minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {bound}, got {value}")


class TraceEvent(NamedTuple):
    """One thing that happened in the runtime, as recorded by a ``Tracer``.

    A ``NamedTuple`` rather than a frozen dataclass: it is just as immutable and far cheaper
    to build, which matters when a reader converts a hundred thousand events. See
    docs/trace_events.md for what each field means for each kind.
    """

    seq: int
    """1-based, strictly increasing within one tracer; buffer order is seq order."""
    ts_ns: int
    """``time.monotonic_ns()`` when the event was recorded."""
    kind: str
    """One of ``EVENT_KINDS`` (not enforced when recording)."""
    thread: int
    """``threading.get_ident()`` of the recording thread."""
    thread_name: str
    """Name of the recording thread when it first recorded."""
    worker_id: str | None = None
    """The routilux WorkerState id (not the thread), if any."""
    job_id: str | None = None
    routine: str | None = None
    """Routine id within its flow."""
    name: str | None = None
    """Slot, event, lock or attribute name, depending on the kind."""
    value: int | float | None = None
    """A number whose meaning depends on the kind: a depth, a duration in seconds, a size."""
    detail: Any = None
    """A small JSON-able value, or None."""

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict keyed by field name, in field order."""
        return dict(zip(self._fields, self, strict=True))


_FIELDS: tuple[str, ...] = TraceEvent._fields

_get_ident = threading.get_ident
_monotonic_ns = time.monotonic_ns
_make_event = TraceEvent._make


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
        trace_events = _ChromeTrace(self._pid).build(rows)
        trace = {
            "traceEvents": trace_events,
            "displayTimeUnit": "ms",
            "otherData": {
                "format": _FORMAT_NAME,
                "version": _FORMAT_VERSION,
                "capacity": self._capacity,
                "dropped": dropped,
                "first_seq": rows[0][0] if rows else 0,
                "last_seq": rows[-1][0] if rows else 0,
            },
        }
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(trace, fh, default=repr)
        return trace

    # -- files -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the held events as JSON lines: a header object, then one object per event.

        ``detail`` values that JSON cannot represent are stored as their ``repr`` strings;
        nothing is pickled. ``Tracer.load`` reads the file back.
        """
        rows, dropped = self._snapshot(0)
        header = {
            "format": _FORMAT_NAME,
            "version": _FORMAT_VERSION,
            "capacity": self._capacity,
            "dropped": dropped,
            "pid": self._pid,
            "events": len(rows),
            "fields": list(_FIELDS),
        }
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")
            fh.writelines(_event_line(row) + "\n" for row in rows)

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
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                header = _read_header(path, fh.readline())
                rows = [
                    _parse_event(path, lineno, line)
                    for lineno, line in enumerate(fh, start=2)
                    if line.strip()
                ]
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not a routilux trace: it is not UTF-8 text") from exc
        _check_sequence(path, rows, header)
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


# -- JSON lines -------------------------------------------------------------------------------


def _event_line(row: Sequence[Any]) -> str:
    event = dict(zip(_FIELDS, row, strict=True))
    try:
        # default=repr turns a nested non-JSON value into its repr, keeping the structure.
        return json.dumps(event, default=repr)
    except (TypeError, ValueError):
        # Keys JSON cannot hold (tuples...) or a circular structure: keep the repr only.
        event["detail"] = repr(event["detail"])
        return json.dumps(event, default=repr)


def _nesting_error(where: str, line: str) -> ValueError | None:
    """A ValueError if ``line`` nests arrays/objects deeper than MAX_LOAD_NESTING.

    Checked before ``json.loads``, which would recurse once per level. Cheap for normal
    lines: only a line with that many brackets at all is scanned (strings skipped).
    """
    if line.count("[") + line.count("{") <= MAX_LOAD_NESTING:
        return None
    depth = deepest = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_LOAD_NESTING:
                    return ValueError(
                        f"{where}: nested more than {MAX_LOAD_NESTING} levels deep; "
                        "Tracer.save never writes that")
        elif ch in "]}":
            depth -= 1
    return None


def _loads(where: str, line: str) -> Any:
    """``json.loads`` with the loader's limits; ValueError naming ``where`` otherwise."""
    nesting = _nesting_error(where, line)
    if nesting is not None:
        raise nesting
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError(f"{where}: nested too deeply to read") from None


def _read_header(path: Path, line: str) -> dict[str, Any]:
    not_trace = f"{path} is not a routilux trace (a JSON-lines file written by Tracer.save)"
    try:
        header = _loads(f"{path}: line 1", line)
    except ValueError as exc:
        if "line 1:" in str(exc):
            raise
        raise ValueError(f"{not_trace}: its first line is not a JSON object") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT_NAME:
        raise ValueError(f'{not_trace}: its first line lacks "format": "{_FORMAT_NAME}"')
    version = header.get("version")
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"{path} is a routilux trace of version {version!r}; this routilux reads "
            f"version {_FORMAT_VERSION} only"
        )
    capacity = header.get("capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"{path}: header capacity must be an int >= 1, got {capacity!r}")
    if capacity > MAX_LOAD_CAPACITY:
        raise ValueError(
            f"{path}: line 1: header capacity {capacity} is larger than Tracer.load accepts "
            f"(MAX_LOAD_CAPACITY = {MAX_LOAD_CAPACITY} events)")
    dropped = header.get("dropped")
    if isinstance(dropped, bool) or not isinstance(dropped, int) or not 0 <= dropped < _INT64:
        raise ValueError(f"{path}: header dropped must be an int >= 0, got {dropped!r}")
    pid = header.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)
                            or not 0 <= pid < _INT64):
        raise ValueError(f"{path}: header pid must be an int, got {pid!r}")
    return header


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -_INT64 <= v < _INT64


def _is_opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


_FIELD_CHECKS: tuple[tuple[str, Any, str], ...] = (
    ("seq", _is_int, "a 64-bit int"),
    ("ts_ns", _is_int, "a 64-bit int (nanoseconds)"),
    ("kind", lambda v: isinstance(v, str), "a string"),
    ("thread", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 * _INT64,
     "a 64-bit int"),
    ("thread_name", lambda v: isinstance(v, str), "a string"),
    ("worker_id", _is_opt_str, "a string or null"),
    ("job_id", _is_opt_str, "a string or null"),
    ("routine", _is_opt_str, "a string or null"),
    ("name", _is_opt_str, "a string or null"),
    (
        "value",
        lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
        "a number or null",
    ),
)


def _parse_event(path: Path, lineno: int, line: str) -> tuple[Any, ...]:
    where = f"{path}: line {lineno}"
    try:
        obj = _loads(where, line)
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        # A malformed file is a bad value, not a wrong argument type: ValueError.
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")  # noqa: TRY004
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise ValueError(
            f"{where}: missing field(s) {', '.join(missing)}; an event has {', '.join(_FIELDS)}"
        )
    for field, check, expected in _FIELD_CHECKS:
        if not check(obj[field]):
            raise ValueError(f"{where}: {field} must be {expected}, got {obj[field]!r}")
    return tuple(obj[f] for f in _FIELDS)


def _check_sequence(path: Path, rows: list[tuple[Any, ...]], header: dict[str, Any]) -> None:
    expected = header.get("events")
    if expected is not None and expected != len(rows):
        raise ValueError(
            f"{path}: header says {expected!r} events but the file holds {len(rows)} "
            f"(was it truncated?)"
        )
    for prev, row in itertools.pairwise(rows):
        if row[0] != prev[0] + 1:
            raise ValueError(
                f"{path}: event seq {row[0]} follows seq {prev[0]}; a saved trace holds "
                f"consecutive sequence numbers"
            )
    if rows and rows[0][0] < 1:
        raise ValueError(f"{path}: the first event has seq {rows[0][0]}; seq starts at 1")


# -- Chrome Trace Event format -------------------------------------------------------------


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)
    return v


class _OpenSlice(NamedTuple):
    ts_ns: int
    key: tuple[Any, ...]
    args: dict[str, Any]


class _ChromeTrace:
    """Turns trace rows into Chrome Trace Event dicts (one use per export)."""

    INSTANT_KINDS = frozenset({"finding", "deadlock.detected", "pool.resize", "pool.autosize",
                               "job.failed"})

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tids: dict[tuple[int, str], int] = {}  # (ident, thread name) -> track id
        self.tid_by_ident: dict[int, int] = {}  # latest track of each ident
        self.open_tasks: dict[int, list[_OpenSlice]] = {}
        self.open_waits: dict[tuple[int, Any], _OpenSlice] = {}
        self.events: list[dict[str, Any]] = []
        self.origin_ns = 0

    def build(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        rows = list(rows)
        meta: list[dict[str, Any]] = [self._meta("process_name", 0, {"name": "routilux"})]
        if not rows:
            return meta
        self.origin_ns = min(r[1] for r in rows)
        end_ns = max(r[1] for r in rows)
        handlers = {
            "task.started": self._task_started,
            "task.error": self._task_error,
            "task.finished": self._task_finished,
            "lock.wait": self._lock_wait,
            "lock.acquired": self._lock_done,
            "lock.timeout": self._lock_done,
            "queue.depth": self._queue_depth,
        }
        for row in rows:
            event = _make_event(row)
            tid = self._tid(event.thread, event.thread_name)
            handler = handlers.get(event.kind)
            if handler is not None:
                handler(event, tid)
            if event.kind == "deadlock.detected":
                self._deadlock(event, tid)
            if event.kind in self.INSTANT_KINDS:
                self._instant(event, tid)
        for tid, stack in self.open_tasks.items():
            for task in stack:
                self._slice(
                    tid,
                    task.key[0] or "task",
                    "task",
                    task.ts_ns,
                    end_ns,
                    {**task.args, "unfinished": True},
                )
        for (tid, lock), wait in self.open_waits.items():
            self._slice(
                tid, f"wait {lock}", "lock", wait.ts_ns, end_ns, {**wait.args, "unfinished": True}
            )
        for (ident, thread_name), tid in self.tids.items():
            meta.append(self._meta("thread_name", tid, {"name": thread_name, "ident": ident}))
        self.events.sort(key=lambda e: e["ts"])
        return meta + self.events

    def _meta(self, name: str, tid: int, args: dict[str, Any]) -> dict[str, Any]:
        return {"ph": "M", "name": name, "pid": self.pid, "tid": tid, "ts": 0, "args": args}

    def _tid(self, ident: int, thread_name: str) -> int:
        tid = self.tids.get((ident, thread_name))
        if tid is None:
            tid = self.tids[(ident, thread_name)] = len(self.tids) + 1
        self.tid_by_ident[ident] = tid
        return tid

    def _us(self, ts_ns: int) -> float:
        return (ts_ns - self.origin_ns) / 1000.0

    def _slice(
        self, tid: int, name: str, cat: str, start_ns: int, end_ns: int, args: dict[str, Any]
    ) -> None:
        self.events.append(
            {
                "ph": "X",
                "name": name,
                "cat": cat,
                "pid": self.pid,
                "tid": tid,
                "ts": self._us(start_ns),
                "dur": max(0.0, (end_ns - start_ns) / 1000.0),
                "args": args,
            }
        )

    # tasks

    @staticmethod
    def _task_key(e: TraceEvent) -> tuple[Any, ...]:
        return (e.routine, e.job_id, e.name)

    def _task_started(self, e: TraceEvent, tid: int) -> None:
        args = {"job": e.job_id, "slot": e.name, "worker": e.worker_id}
        self.open_tasks.setdefault(tid, []).append(_OpenSlice(e.ts_ns, self._task_key(e), args))

    def _find_task(self, e: TraceEvent, tid: int) -> int | None:
        stack = self.open_tasks.get(tid, [])
        for i in range(len(stack) - 1, -1, -1):
            key = stack[i].key
            if key[0] == e.routine and key[1] == e.job_id and e.name in (None, key[2]):
                return i
        return None

    def _task_error(self, e: TraceEvent, tid: int) -> None:
        i = self._find_task(e, tid)
        if i is not None and e.detail is not None:
            self.open_tasks[tid][i].args["error"] = _jsonable(e.detail)

    def _task_finished(self, e: TraceEvent, tid: int) -> None:
        i = self._find_task(e, tid)
        if i is not None:
            task = self.open_tasks[tid].pop(i)
            start_ns, args = task.ts_ns, task.args
        elif _number(e.value):
            # The start was dropped from the buffer: rebuild it from the run time.
            start_ns = max(self.origin_ns, e.ts_ns - int(e.value * 1e9))  # type: ignore[operator]
            args = {"job": e.job_id, "slot": e.name, "worker": e.worker_id, "start_lost": True}
        else:
            return
        if e.detail is not None:
            args["error"] = _jsonable(e.detail)
        self._slice(tid, e.routine or "task", "task", start_ns, e.ts_ns, args)

    # locks

    def _lock_wait(self, e: TraceEvent, tid: int) -> None:
        args: dict[str, Any] = {"lock": e.name, "job": e.job_id, "routine": e.routine}
        if isinstance(e.detail, dict):
            args["holder"] = _jsonable(e.detail.get("holder"))
            args["holder_name"] = _jsonable(e.detail.get("holder_name"))
        self.open_waits[(tid, e.name)] = _OpenSlice(e.ts_ns, (e.name,), args)

    def _close_wait(self, tid: int, lock: Any, end_ns: int, outcome: str) -> None:
        wait = self.open_waits.pop((tid, lock), None)
        if wait is not None:
            self._slice(
                tid, f"wait {lock}", "lock", wait.ts_ns, end_ns, {**wait.args, "outcome": outcome}
            )

    def _lock_done(self, e: TraceEvent, tid: int) -> None:
        outcome = "acquired" if e.kind == "lock.acquired" else "timeout"
        self._close_wait(tid, e.name, e.ts_ns, outcome)

    def _deadlock(self, e: TraceEvent, tid: int) -> None:
        cycle = e.detail.get("cycle") if isinstance(e.detail, dict) else None
        for entry in cycle if isinstance(cycle, list) else ():
            if not isinstance(entry, dict):
                continue
            ident, thread_name = entry.get("thread"), entry.get("thread_name")
            waiter = self.tids.get((ident, thread_name)) or self.tid_by_ident.get(ident)
            if waiter is not None:
                self._close_wait(waiter, entry.get("waits_for"), e.ts_ns, "deadlock")
        for lock in (e.name or "").split(", "):
            self._close_wait(tid, lock, e.ts_ns, "deadlock")

    # counters and markers

    def _queue_depth(self, e: TraceEvent, tid: int) -> None:
        ts = self._us(e.ts_ns)
        if _number(e.value):
            self.events.append(
                {
                    "ph": "C",
                    "name": "queue",
                    "pid": self.pid,
                    "tid": tid,
                    "ts": ts,
                    "args": {"depth": e.value},
                }
            )
        if isinstance(e.detail, dict):
            args = {k: e.detail[k] for k in ("busy", "size") if _number(e.detail.get(k))}
            if args:
                self.events.append(
                    {
                        "ph": "C",
                        "name": "threads",
                        "pid": self.pid,
                        "tid": tid,
                        "ts": ts,
                        "args": args,
                    }
                )

    def _instant(self, e: TraceEvent, tid: int) -> None:
        args = {
            k: v
            for k, v in (
                ("job", e.job_id),
                ("routine", e.routine),
                ("value", e.value if _number(e.value) else None),
                ("detail", _jsonable(e.detail)),
            )
            if v is not None
        }
        self.events.append(
            {
                "ph": "i",
                "s": "g" if e.kind == "deadlock.detected" else "t",
                "name": e.kind if e.name is None else f"{e.kind}: {e.name}",
                "cat": e.kind.split(".")[0],
                "pid": self.pid,
                "tid": tid,
                "ts": self._us(e.ts_ns),
                "args": args,
            }
        )


# -- Tasks and the pool over time (one reading shared by every chart and detector) ---------

LOOP_THREAD_NAME = "RoutiluxAsyncLoop"
"""Default name of the event-loop thread that runs coroutine logic (its trace lane)."""

LANE_POOL, LANE_EXECUTOR, LANE_REMOTE = "pool", "executor", "remote"
LANES: tuple[str, ...] = (LANE_POOL, LANE_EXECUTOR, LANE_REMOTE)
"""Where a task ran: on a pool thread, on an in-process executor's thread (the event loop:
coroutines overlap there and hold no pool thread), or in another process or host."""

_REMOTE_IDENT = 1 << 48  # remote lanes use idents from here up (executors/_remote.py)
_JOB_DROPPED = frozenset({"job.failed", "job.cancelled"})


def _lane_of(thread: int, thread_name: str, detail: Any) -> str:
    """The lane of a task from its ``task.started`` (or, lacking one, ``task.finished``)."""
    if isinstance(detail, dict) and "executor" in detail:
        remote = detail.get("pid") is not None or detail.get("address") is not None
        return LANE_REMOTE if remote else LANE_EXECUTOR
    if thread >= _REMOTE_IDENT:
        return LANE_REMOTE
    if thread_name.startswith(LOOP_THREAD_NAME):
        return LANE_EXECUTOR  # a trace recorded before task.started named its executor
    return LANE_POOL


def _source_events(source: Any, what: str) -> list[TraceEvent]:
    """The events of a ``Tracer``, a traced ``Runtime``, a saved trace's path, or an
    iterable of ``TraceEvent``, in seq order."""
    if isinstance(source, Tracer):
        return source.read(0)
    if isinstance(source, str | os.PathLike):
        return Tracer.load(source).read(0)
    if hasattr(source, "tracer") and callable(getattr(source, "statistics", None)):
        tracer = source.tracer
        if tracer is None:
            raise ValueError(
                f"{what}() needs a trace, and this runtime records none; create it with "
                "Runtime(trace=True)"
            )
        return tracer.read(0)
    if isinstance(source, Iterable) and not isinstance(source, bytes | dict):
        events = list(source)
        bad = next((e for e in events if not isinstance(e, TraceEvent)), None)
        if bad is not None:
            raise TypeError(
                f"{what}() got an iterable that is not all TraceEvent records (found a "
                f"{type(bad).__name__}); pass Tracer.read() or a Tracer"
            )
        events.sort(key=lambda e: e.seq)
        return events
    raise TypeError(
        f"{what}() needs a routilux.trace.Tracer, a traced routilux Runtime, the path of a "
        f"saved trace or an iterable of TraceEvent, got {type(source).__name__}"
    )


class TaskSpan(NamedTuple):
    """One task's run, rebuilt from its ``task.started`` / ``task.finished`` events."""

    thread: int
    """The ident of the lane the logic ran on (see ``TraceEvent.thread``)."""
    thread_name: str
    lane: str
    """One of ``LANES``: ``"pool"`` (held a pool thread), ``"executor"``, ``"remote"``."""
    routine: str | None
    job_id: str | None
    slot: str | None
    start_ns: int
    end_ns: int
    """The ``task.finished`` time; for an unfinished task, ``now_ns`` (or the last event)."""
    run_s: float
    """Seconds the logic ran: the ``task.finished`` value, else ``end_ns - start_ns``."""
    wait_s: float | None
    """Seconds it waited in the run queue (the ``task.started`` value), if known."""
    finished: bool
    error: str | None
    start_seq: int
    """Seq of its ``task.started``; 0 when that event was dropped (``start_ns`` is then
    rebuilt from the run time)."""
    end_seq: int
    """Seq of its ``task.finished``; 0 while unfinished."""


def task_spans(source: Any, *, now_ns: int | None = None) -> list[TaskSpan]:
    """Every task of a trace with its lane, run time and outcome, ordered by start.

    A ``task.finished`` closes the open ``task.started`` of the same lane, job, routine
    and slot; several coroutines of one routine can be open at once on the event loop's
    lane, so among equals it closes the one whose start is nearest to the finish minus the
    run time it reports. A task whose start was dropped from the buffer is rebuilt from
    its run time (``start_seq == 0``); a task still running ends at ``now_ns`` (default:
    the trace's last timestamp) with ``finished=False``. On a pool thread a new start
    closes a task whose finish is missing (a thread runs one task at a time).

    Args:
        source: a ``Tracer``, a traced ``Runtime``, a saved trace's path, or an iterable
            of ``TraceEvent``.
        now_ns: where unfinished tasks end.

    Raises:
        TypeError: ``source`` is none of those.
        ValueError: a runtime that does not trace.
    """
    events = _source_events(source, "task_spans")
    return _task_spans(events, now_ns)


_SPAN_KINDS = frozenset({"task.started", "task.finished", "task.error"})
_NUM = (int, float)  # bools are ints too: a task's value is never a bool


def _task_spans(events: Sequence[Sequence[Any]], now_ns: int | None = None) -> list[TaskSpan]:
    """``task_spans`` over events (``TraceEvent``s or tuples in field order), in seq order."""
    # One flat loop over tuples by index (attribute access on a NamedTuple costs more).
    rows = [r for r in events if r[2] in _SPAN_KINDS]
    if now_ns is None:
        now_ns = max((r[1] for r in events), default=0)
    open_: dict[tuple[Any, ...], list[Sequence[Any]]] = {}
    pool_open: dict[tuple[int, str], tuple[Any, ...]] = {}  # pool thread -> its open key
    errors: dict[tuple[Any, ...], str] = {}
    lanes: dict[tuple[int, str], str] = {}  # lane of a start without detail, by thread
    spans: list[TaskSpan] = []
    append = spans.append
    for r in rows:
        seq, ts, kind, thread, thread_name = r[0], r[1], r[2], r[3], r[4]
        tn = (thread, thread_name)
        key = (thread, thread_name, r[6], r[7], r[8])
        if kind == "task.started":
            detail = r[10]
            if detail is None:
                lane = lanes.get(tn)
                if lane is None:
                    lane = lanes[tn] = _lane_of(thread, thread_name, None)
            else:
                lane = _lane_of(thread, thread_name, detail)
            if lane == LANE_POOL:
                prev_key = pool_open.pop(tn, None)
                if prev_key is not None and open_.get(prev_key):
                    p = open_[prev_key].pop()  # its finish is missing: close it here
                    append(TaskSpan(p[3], p[4], lane, p[7], p[6], p[8], p[1], ts,
                                    (ts - p[1]) / 1e9,
                                    float(p[9]) if isinstance(p[9], _NUM) else None,
                                    False, errors.pop(prev_key, None), p[0], 0))
                pool_open[tn] = key
            starts = open_.get(key)
            if starts is None:
                open_[key] = [r]
            else:
                starts.append(r)
        elif kind == "task.error":
            errors[key] = str(r[10])
        else:
            value = r[9]
            run = float(value) if isinstance(value, _NUM) else None
            error = errors.pop(key, None)
            if isinstance(r[10], str):
                error = r[10]
            starts = open_.get(key)
            if starts:
                if len(starts) == 1 or run is None:
                    st = starts.pop(0)
                else:  # overlapping coroutines: the start this run time points at
                    guess = ts - int(run * 1e9)
                    k = min(range(len(starts)), key=lambda i: abs(starts[i][1] - guess))
                    st = starts.pop(k)
                lane = lanes.get(tn) if st[10] is None else None
                if lane is None:
                    lane = _lane_of(st[3], st[4], st[10])
                if lane == LANE_POOL and pool_open.get(tn) == key:
                    del pool_open[tn]
                append(TaskSpan(st[3], st[4], lane, st[7], st[6], st[8], st[1], ts,
                                run if run is not None else (ts - st[1]) / 1e9,
                                float(st[9]) if isinstance(st[9], _NUM) else None,
                                True, error, st[0], seq))
            elif run is not None:  # the start was dropped: rebuild it from the run time
                append(TaskSpan(thread, thread_name, _lane_of(thread, thread_name, None),
                                r[7], r[6], r[8], ts - int(run * 1e9), ts, run, None, True,
                                error, 0, seq))
    for key, starts in open_.items():
        for st in starts:
            end = max(now_ns, st[1])
            append(TaskSpan(st[3], st[4], _lane_of(st[3], st[4], st[10]), st[7], st[6],
                            st[8], st[1], end, (end - st[1]) / 1e9,
                            float(st[9]) if isinstance(st[9], _NUM) else None, False,
                            errors.get(key), st[0], 0))
    spans.sort(key=_BY_START)
    return spans


_BY_START = operator.itemgetter(6, 12)  # (start_ns, start_seq)


class PoolSample(NamedTuple):
    """The pool from one instant on, until the next sample: what ``pool_series`` returns.

    Immutable (a ``NamedTuple``, as ``TraceEvent`` is: as frozen as a frozen dataclass and
    far cheaper to build, and a flood makes one per task event).
    """

    ts_ns: int
    """``time.monotonic_ns()`` from which these counts hold."""
    busy: int
    """Tasks on pool threads between their ``task.started`` and ``task.finished`` (a
    thread waiting for a lock or at a barrier inside logic is busy; coroutines on the event
    loop's lane and remote lanes hold no pool thread)."""
    queued: int
    """Activations between their ``task.queued`` and ``task.started``."""
    size: int | None
    """The pool's size (``None`` until the trace says)."""


_POOL_KINDS = frozenset({
    "task.started", "task.finished", "task.queued", "pool.size", "pool.resize",
    "queue.depth", "job.failed", "job.cancelled",
})
_BY_TIME = operator.itemgetter(1, 0)  # (ts_ns, seq)
_UNSET = object()


class PoolCounter:
    """Folds trace events into ``PoolSample``s incrementally (``pool_series`` in pieces).

    For a live reader (the dashboard) that reads the trace by cursor: ``feed`` each batch
    and get the samples it adds. Each batch is taken in time order (``ts_ns``, then seq);
    an event older than the last sample (a remote task's start arriving late) counts from
    the last sample's time, so samples never go back in time.

    Rules, the same as ``pool_series``:

    - busy: +1 at a ``task.started`` on a pool lane (``task_spans`` lanes), -1 at its
      ``task.finished``. A finish whose start was dropped changes nothing; a new start on
      a pool thread that still has one open replaces it (a thread runs one task at a time).
    - queued: +1 at ``task.queued``, -1 at the ``task.started`` of the same job, routine
      and slot on any lane. A start that lands before its ``task.queued`` (the runtime
      records the queueing after handing the task over) cancels that ``task.queued``
      instead; a start with no ``task.queued`` at all (it was dropped) changes nothing.
      Activations still queued when their job fails or is cancelled leave the count at
      the ``job.failed`` / ``job.cancelled``: the runtime drops them unstarted.
    - size: the ``pool.size`` value (recorded when tracing starts), then each
      ``pool.resize``; until either is seen, the first ``queue.depth`` sample's size.

    Args:
        size: the pool size to assume until the trace says (default unknown: ``None``).
    """

    __slots__ = ("_busy", "_credit", "_lanes", "_last", "_open", "_pending", "_queued",
                 "_size", "_size_known")

    def __init__(self, size: int | None = None) -> None:
        self._busy = 0
        self._queued = 0
        self._size = size
        self._size_known = False  # a pool.size / pool.resize was seen
        self._open: dict[tuple[int, str], tuple[Any, ...]] = {}  # pool thread -> open key
        self._pending: dict[tuple[Any, ...], int] = {}  # (job, routine, slot) -> queued
        self._credit: dict[tuple[Any, ...], int] = {}  # started before their task.queued
        self._lanes: dict[tuple[int, str], bool] = {}  # (thread, name) -> a pool lane
        self._last: PoolSample | None = None

    @property
    def last(self) -> PoolSample | None:
        """The newest sample (the pool as of the last event fed), or None before any."""
        return self._last

    def feed(self, events: Iterable[Sequence[Any]]) -> list[PoolSample]:
        """Fold ``events`` (``TraceEvent``s or tuples in their field order); the new samples.

        The first event about the pool starts the series with a sample (the state after
        it). After that a sample is added only when a count changes; changes at one
        instant make one sample.
        """
        # One flat loop with locals: the live dashboard folds every event through here.
        rows = [r for r in events if r[2] in _POOL_KINDS]
        rows.sort(key=_BY_TIME)
        out: list[PoolSample] = []
        busy, queued, size = self._busy, self._queued, self._size
        open_, pending, credit, lanes = self._open, self._pending, self._credit, self._lanes
        last = self._last
        if last is None:
            lts, lb, lq, ls = None, _UNSET, _UNSET, _UNSET
        else:
            lts, lb, lq, ls = last
        for row in rows:
            ts, kind = row[1], row[2]
            if kind == "task.started":
                thread, name, detail = row[3], row[4], row[10]
                key = (row[6], row[7], row[8])
                if detail is None:
                    pool = lanes.get((thread, name))
                    if pool is None:
                        pool = lanes[(thread, name)] = \
                            _lane_of(thread, name, None) == LANE_POOL
                else:
                    pool = _lane_of(thread, name, detail) == LANE_POOL
                if pool:
                    if (thread, name) not in open_:
                        busy += 1
                    open_[(thread, name)] = key
                n = pending.get(key)
                if n:
                    queued -= 1
                    if n > 1:
                        pending[key] = n - 1
                    else:
                        del pending[key]
                else:
                    credit[key] = credit.get(key, 0) + 1
            elif kind == "task.finished":
                tn = (row[3], row[4])
                if open_.get(tn) == (row[6], row[7], row[8]):
                    del open_[tn]
                    busy -= 1
            elif kind == "task.queued":
                key = (row[6], row[7], row[8])
                c = credit.get(key)
                if c:
                    credit[key] = c - 1
                else:
                    pending[key] = pending.get(key, 0) + 1
                    queued += 1
            elif kind == "pool.size" or kind == "pool.resize":
                value = row[9]
                if isinstance(value, _NUM) and value >= 1:
                    size = int(value)
                    self._size_known = True
            elif kind == "queue.depth":
                detail = row[10]
                if not self._size_known and size is None and isinstance(detail, dict) \
                        and isinstance(detail.get("size"), _NUM):
                    size = int(detail["size"])
            else:  # job.failed / job.cancelled: its queued activations are dropped
                job = row[6]
                for key in [k for k in pending if k[0] == job]:
                    queued -= pending.pop(key)
            if busy != lb or queued != lq or size != ls:
                if lts is not None and ts < lts:
                    ts = lts  # never back in time (a late remote start)
                sample = PoolSample(ts, busy, queued, size)
                if out and out[-1][0] == ts:
                    out[-1] = sample  # several changes at one instant: the state after all
                    if len(out) > 1 and out[-2][1:] == sample[1:]:
                        out.pop()  # ... which undid each other
                        sample = out[-1]
                else:
                    out.append(sample)
                lts, lb, lq, ls = sample
        self._busy, self._queued, self._size = busy, queued, size
        if out:
            self._last = out[-1]
        return out


def pool_series(source: Any) -> list[PoolSample]:
    """Busy threads, queued activations and pool size over a trace: one sample per change.

    Exact: at every instant the sample in effect equals what the task events say (the
    rules are ``PoolCounter``'s), unlike the ``queue.depth`` samples, which are taken every
    ~100 ms and miss what happens between. Every chart of the pool and the detectors read
    this series.

    Args:
        source: a ``Tracer``, a traced ``Runtime``, a saved trace's path, or an iterable
            of ``TraceEvent``.

    Returns:
        ``PoolSample``s in time order; the first at the first event about the pool (the
        state after it), then one per change. Empty for a trace without such events.

    Raises:
        TypeError: ``source`` is none of those.
        ValueError: a runtime that does not trace.
    """
    return PoolCounter().feed(_source_events(source, "pool_series"))
