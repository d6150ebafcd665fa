"""Tests for routilux.trace: the ring buffer, its readers, and its file formats."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routilux.trace import EVENT_KINDS, TraceEvent, Tracer

REPO_ROOT = Path(__file__).resolve().parents[2]
FIELDS = (
    "seq",
    "ts_ns",
    "kind",
    "thread",
    "thread_name",
    "worker_id",
    "job_id",
    "routine",
    "name",
    "value",
    "detail",
)


def run_in_thread(name: str, target: Any) -> None:
    """Run ``target`` to completion in a new thread called ``name``."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(exc)

    thread = threading.Thread(target=body, name=name)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


# -- TraceEvent -------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_trace_event_fields_are_in_the_documented_order() -> None:
    assert TraceEvent._fields == FIELDS


@pytest.mark.timeout(10)
def test_trace_event_is_immutable_and_converts_to_dict() -> None:
    event = TraceEvent(1, 5, "task.started", 7, "pool-1", "w1", "j1", "r1", "in", 0.5, {"a": 1})
    with pytest.raises(AttributeError):
        event.kind = "other"  # type: ignore[misc]
    assert event.to_dict() == {
        "seq": 1,
        "ts_ns": 5,
        "kind": "task.started",
        "thread": 7,
        "thread_name": "pool-1",
        "worker_id": "w1",
        "job_id": "j1",
        "routine": "r1",
        "name": "in",
        "value": 0.5,
        "detail": {"a": 1},
    }
    assert list(event.to_dict()) == list(FIELDS)


# -- construction -----------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("capacity", "error", "match"),
    [
        (0, ValueError, r"capacity must be an int >= 1 .*got 0"),
        (-5, ValueError, r"capacity must be an int >= 1 .*got -5"),
        (1.5, TypeError, r"capacity must be an int >= 1 .*got float 1.5"),
        ("100", TypeError, r"capacity must be an int >= 1 .*got str '100'"),
        (None, TypeError, r"capacity must be an int >= 1 .*got NoneType None"),
        (True, TypeError, r"capacity must be an int >= 1 .*got bool True"),
    ],
)
def test_invalid_capacity_is_rejected(capacity: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Tracer(capacity)


@pytest.mark.timeout(10)
def test_defaults() -> None:
    tracer = Tracer()
    assert tracer.capacity == 200_000
    assert len(tracer) == 0
    assert tracer.dropped == 0
    assert tracer.last_seq == 0
    assert tracer.read() == []
    assert "capacity=200000" in repr(tracer)


# -- recording and reading --------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_record_stores_every_field() -> None:
    tracer = Tracer(10)
    tracer.record(
        "task.finished",
        job_id="j1",
        routine="r1",
        name="in",
        value=0.25,
        detail="ValueError: bad",
        worker_id="w1",
    )
    [event] = tracer.read()
    assert isinstance(event, TraceEvent)
    assert event.seq == 1
    assert event.kind == "task.finished"
    assert (event.worker_id, event.job_id, event.routine, event.name) == ("w1", "j1", "r1", "in")
    assert (event.value, event.detail) == (0.25, "ValueError: bad")
    assert event.thread == threading.get_ident()
    assert event.thread_name == threading.current_thread().name
    assert isinstance(event.ts_ns, int)


@pytest.mark.timeout(10)
def test_record_does_not_validate_kinds() -> None:
    tracer = Tracer(10)
    tracer.record("not.a.kind", detail=object())
    assert tracer.read()[0].kind == "not.a.kind"


@pytest.mark.timeout(10)
def test_seq_is_monotonic_and_read_since_returns_newer_events() -> None:
    tracer = Tracer(100)
    for i in range(10):
        tracer.record("slot.enqueue", value=i)
    events = tracer.read()
    assert [e.seq for e in events] == list(range(1, 11))
    assert [e.value for e in events] == list(range(10))
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(events))
    assert [e.seq for e in tracer.read(since=7)] == [8, 9, 10]
    assert tracer.read(since=10) == []
    assert tracer.read(since=99) == []
    assert tracer.last_seq == 10


@pytest.mark.timeout(10)
def test_read_after_wrap_around() -> None:
    tracer = Tracer(5)
    for i in range(1, 13):
        tracer.record("task.queued", value=i)
    assert len(tracer) == 5
    assert [e.seq for e in tracer.read()] == [8, 9, 10, 11, 12]
    assert [e.value for e in tracer.read()] == [8, 9, 10, 11, 12]
    assert [e.seq for e in tracer.read(since=9)] == [10, 11, 12]
    # A cursor older than the oldest held event starts at the oldest held event.
    assert [e.seq for e in tracer.read(since=3)] == [8, 9, 10, 11, 12]
    assert tracer.read(since=12) == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("capacity", [1, 2, 3, 7])
def test_read_matches_a_reference_model_at_every_step(capacity: int) -> None:
    tracer = Tracer(capacity)
    for n in range(1, 3 * capacity + 3):
        tracer.record("x", value=n)
        held = list(range(max(1, n - capacity + 1), n + 1))
        for since in range(n + 2):
            assert [e.seq for e in tracer.read(since)] == [s for s in held if s > since]
        assert tracer.dropped == n - len(held)
        assert len(tracer) == len(held)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("since", "error", "match"),
    [
        (-1, ValueError, r"since must be >= 0 .*got -1"),
        (1.0, TypeError, r"since must be an int sequence number .*got float 1.0"),
        ("3", TypeError, r"since must be an int sequence number .*got str '3'"),
        (None, TypeError, r"since must be an int sequence number .*got NoneType"),
    ],
)
def test_read_rejects_bad_cursors(since: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Tracer(4).read(since)


@pytest.mark.timeout(10)
def test_dropped_counts_discarded_events() -> None:
    tracer = Tracer(3)
    for _ in range(3):
        tracer.record("x")
    assert tracer.dropped == 0
    for _ in range(7):
        tracer.record("x")
    assert tracer.dropped == 7
    assert len(tracer) == 3
    assert f"dropped={7}" in repr(tracer)


@pytest.mark.timeout(10)
def test_clear_keeps_seq_counting_and_dropped() -> None:
    tracer = Tracer(3)
    for _ in range(5):
        tracer.record("x")
    tracer.clear()
    assert len(tracer) == 0
    assert tracer.read() == []
    assert tracer.last_seq == 5
    assert tracer.dropped == 2
    tracer.record("y")
    assert [(e.seq, e.kind) for e in tracer.read()] == [(6, "y")]
    assert [e.seq for e in tracer.read(since=5)] == [6]
    assert tracer.dropped == 2
    for _ in range(4):
        tracer.record("z")
    assert tracer.dropped == 4


# -- threads ----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_concurrent_recording_loses_nothing_below_capacity() -> None:
    n_threads, per_thread = 8, 3_000
    tracer = Tracer(n_threads * per_thread)
    start = threading.Barrier(n_threads)

    def writer(index: int) -> None:
        start.wait()
        for i in range(per_thread):
            tracer.record("task.started", job_id=f"t{index}", value=i)

    threads = [
        threading.Thread(target=writer, args=(k,), name=f"writer-{k}") for k in range(n_threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events = tracer.read()
    assert tracer.dropped == 0
    assert len(events) == n_threads * per_thread == len(tracer)
    # seq order is buffer order.
    assert [e.seq for e in events] == list(range(1, n_threads * per_thread + 1))
    # Each thread's events are all there, in program order, under its own name.
    for k in range(n_threads):
        mine = [e for e in events if e.job_id == f"t{k}"]
        assert [e.value for e in mine] == list(range(per_thread))
        assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(mine))
        assert {e.thread_name for e in mine} == {f"writer-{k}"}
        assert len({e.thread for e in mine}) == 1


@pytest.mark.timeout(60)
def test_reading_while_others_record_sees_consistent_snapshots() -> None:
    n_writers, per_thread = 4, 5_000
    tracer = Tracer(1_000)  # small, so the ring wraps many times during the test
    start = threading.Barrier(n_writers + 1)
    writers_done = threading.Event()
    problems: list[str] = []
    reads = 0

    def writer() -> None:
        start.wait()
        for i in range(per_thread):
            tracer.record("x", value=i)

    def reader() -> None:
        nonlocal reads
        start.wait()
        cursor = 0
        while not writers_done.is_set() or cursor < tracer.last_seq:
            events = tracer.read(cursor)
            reads += 1
            seqs = [e.seq for e in events]
            if not seqs:
                continue
            if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                problems.append(f"read({cursor}) returned non-consecutive seqs")
            if seqs[0] <= cursor:
                problems.append(f"read({cursor}) returned seq {seqs[0]}")
            if len(seqs) > tracer.capacity:
                problems.append(f"read({cursor}) returned {len(seqs)} events")
            cursor = seqs[-1]

    writers = [threading.Thread(target=writer, name=f"w{k}") for k in range(n_writers)]
    reader_thread = threading.Thread(target=reader, name="reader")
    for thread in [*writers, reader_thread]:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    reader_thread.join()

    assert problems == []
    assert reads > 0
    assert tracer.last_seq == n_writers * per_thread
    assert tracer.dropped == n_writers * per_thread - 1_000


@pytest.mark.timeout(10)
def test_thread_names_come_from_the_recording_thread() -> None:
    tracer = Tracer(10)
    idents: dict[str, int] = {}

    def work(label: str) -> None:
        idents[label] = threading.get_ident()
        tracer.record("task.started", routine=label)

    # Threads run one after another, so the OS may hand the second one the first one's
    # ident; the name must still be the second thread's own.
    run_in_thread("pool-first", lambda: work("a"))
    run_in_thread("pool-second", lambda: work("b"))
    tracer.record("job.posted")

    events = tracer.read()
    assert [(e.routine, e.thread_name) for e in events] == [
        ("a", "pool-first"),
        ("b", "pool-second"),
        (None, threading.current_thread().name),
    ]
    assert [e.thread for e in events[:2]] == [idents["a"], idents["b"]]


@pytest.mark.timeout(10)
def test_a_thread_keeps_the_name_it_had_when_it_first_recorded() -> None:
    tracer = Tracer(10)

    def work() -> None:
        tracer.record("a")
        threading.current_thread().name = "renamed"
        tracer.record("b")

    run_in_thread("original", work)
    assert [e.thread_name for e in tracer.read()] == ["original", "original"]


# -- save / load ------------------------------------------------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


@pytest.mark.timeout(10)
def test_save_load_round_trip(tmp_path: Path) -> None:
    tracer = Tracer(4)
    tracer.record("job.posted", job_id="j0", routine="src", name="in", worker_id="w")
    run_in_thread("pool-1", lambda: tracer.record("task.started", "j1", "r", "in", 0.001, None))
    tracer.record("barrier.wait", routine="join", name="left", value=1, detail={"left": 1})
    tracer.record("task.sample", detail=["a.py:1 in f", "b.py:2 in g"])
    tracer.record("finding", name="shared_state", detail={"title": "t", "severity": "warning"})
    path = tmp_path / "run.jsonl"
    tracer.save(path)

    loaded = Tracer.load(path)
    assert loaded.read() == tracer.read()
    assert [e.seq for e in loaded.read()] == [2, 3, 4, 5]
    assert loaded.dropped == tracer.dropped == 1
    assert loaded.capacity == 4
    assert loaded.last_seq == 5
    assert [e.seq for e in loaded.read(since=3)] == [4, 5]
    # Recording into a loaded trace continues its sequence.
    loaded.record("job.completed")
    assert loaded.read()[-1].seq == 6
    assert loaded.dropped == 2

    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "routilux-trace"
    assert header["version"] == 1
    assert (header["capacity"], header["dropped"]) == (4, 1)
    assert [json.loads(line)["seq"] for line in lines[1:]] == [2, 3, 4, 5]
    # The Chrome export of a loaded trace names the process that recorded it.
    assert {e["pid"] for e in loaded.to_chrome_trace()["traceEvents"]} == {header["pid"]}


@pytest.mark.timeout(10)
def test_save_stores_non_json_details_as_repr(tmp_path: Path) -> None:
    tracer = Tracer(10)
    tracer.record("a", detail=Opaque())
    tracer.record("b", detail={"nested": Opaque(), "n": 1})
    tracer.record("c", detail={(1, 2): "tuple key"})
    circular: list[Any] = []
    circular.append(circular)
    tracer.record("d", detail=circular)
    path = tmp_path / "odd.jsonl"
    tracer.save(path)
    assert "pickle" not in path.read_text(encoding="utf-8")
    details = [e.detail for e in Tracer.load(path).read()]
    assert details == [
        "<Opaque>",
        {"nested": "<Opaque>", "n": 1},
        "{(1, 2): 'tuple key'}",
        "[[...]]",
    ]


@pytest.mark.timeout(10)
def test_save_and_load_an_empty_tracer(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    Tracer(7).save(path)
    loaded = Tracer.load(path)
    assert (len(loaded), loaded.capacity, loaded.dropped, loaded.last_seq) == (0, 7, 0, 0)


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_detail = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
optional_text = st.none() | st.text(max_size=12)
event_args = st.tuples(
    st.sampled_from(sorted(EVENT_KINDS)) | st.text(min_size=1, max_size=12),
    optional_text,  # job_id
    optional_text,  # routine
    optional_text,  # name
    st.none() | st.integers() | st.floats(allow_nan=False),  # value
    json_detail,
    optional_text,  # worker_id
)


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event_args, max_size=30), capacity=st.integers(1, 40))
def test_save_load_round_trip_property(events: list[tuple[Any, ...]], capacity: int) -> None:
    tracer = Tracer(capacity)
    for args in events:
        tracer.record(*args)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"
        tracer.save(path)
        loaded = Tracer.load(path)
    assert loaded.read() == tracer.read()
    assert loaded.dropped == tracer.dropped
    assert loaded.capacity == tracer.capacity
    assert loaded.last_seq == tracer.last_seq


@pytest.mark.timeout(10)
def test_load_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        Tracer.load(tmp_path / "nope.jsonl")


GOOD_HEADER = {"format": "routilux-trace", "version": 1, "capacity": 10, "dropped": 0}


def event_line(n: int, **changes: Any) -> str:
    """One saved event line with seq ``n``; ``changes`` override fields (even seq)."""
    event = dict.fromkeys(FIELDS)
    event.update(seq=n, ts_ns=1000 * n, kind="x", thread=1, thread_name="main")
    event.update(changes)
    return json.dumps(event)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", r"is not a routilux trace.*first line is not a JSON object"),
        ("hello world\n", r"is not a routilux trace.*first line is not a JSON object"),
        ('{"traceEvents": []}\n', r'is not a routilux trace.*lacks "format": "routilux-trace"'),
        ("[1, 2]\n", r'is not a routilux trace.*lacks "format"'),
        (json.dumps({**GOOD_HEADER, "version": 2}), r"version 2; this routilux reads version 1"),
        (json.dumps({**GOOD_HEADER, "capacity": 0}), r"capacity must be an int >= 1, got 0"),
        (json.dumps({**GOOD_HEADER, "dropped": -1}), r"dropped must be an int >= 0, got -1"),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1) + "\n{oops\n",
            r"line 3 is not valid JSON",
        ),
        (json.dumps(GOOD_HEADER) + "\n[1]\n", r"line 2: expected a JSON object, got list"),
        (
            json.dumps(GOOD_HEADER) + '\n{"seq": 1}\n',
            r"line 2: missing field\(s\) ts_ns, kind, thread",
        ),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1, seq="1") + "\n",
            r"line 2: seq must be a 64-bit int, got '1'",
        ),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1, value="fast") + "\n",
            r"line 2: value must be a number or null, got 'fast'",
        ),
        # Hostile files (issue 13): a ValueError naming path and line, never a
        # RecursionError, MemoryError or OverflowError, nor an event that loads and
        # later breaks to_chrome_trace().
        (
            json.dumps(GOOD_HEADER) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n",
            r"line 2: nested more than 100 levels deep",
        ),
        (
            json.dumps(GOOD_HEADER) + "\n"
            + event_line(1).replace('"detail": null', '"detail": ' + "[" * 5000 + "]" * 5000)
            + "\n",
            r"line 2: nested more than 100 levels deep",
        ),
        ("{" * 100_000 + "\n", r"line 1: nested more than 100 levels deep"),
        (json.dumps({**GOOD_HEADER, "capacity": 10**10}),
         r"line 1: header capacity 10000000000 is larger than Tracer.load accepts"),
        (json.dumps({**GOOD_HEADER, "capacity": 10**21}),
         r"line 1: header capacity 1000000000000000000000 is larger than Tracer.load"),
        (json.dumps({**GOOD_HEADER, "dropped": 10**400}), r"dropped must be an int >= 0"),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1, ts_ns=10**400) + "\n",
            r"line 2: ts_ns must be a 64-bit int \(nanoseconds\), got 1000",
        ),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1).replace('"ts_ns": 1000',
                                                                  '"ts_ns": 1e400') + "\n",
            r"line 2: ts_ns must be a 64-bit int \(nanoseconds\), got inf",
        ),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1, job_id=3) + "\n",
            r"line 2: job_id must be a string or null, got 3",
        ),
        (
            json.dumps(GOOD_HEADER) + "\n" + event_line(1) + "\n" + event_line(3) + "\n",
            r"event seq 3 follows seq 1",
        ),
        (
            json.dumps({**GOOD_HEADER, "events": 2}) + "\n" + event_line(1) + "\n",
            r"header says 2 events but the file holds 1",
        ),
    ],
)
def test_load_rejects_files_that_are_not_routilux_traces(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as info:
        Tracer.load(path)
    assert str(path) in str(info.value)


@pytest.mark.timeout(10)
def test_load_rejects_binary_files(tmp_path: Path) -> None:
    path = tmp_path / "trace.bin"
    path.write_bytes(b"\x80\x04\x95pickle\xff\xfe")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Tracer.load(path)


@pytest.mark.timeout(10)
def test_load_accepts_unknown_kinds_and_grows_capacity(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    lines = [json.dumps({**GOOD_HEADER, "capacity": 1}), event_line(4, kind="kind.from.later")]
    lines.append(event_line(5))
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    loaded = Tracer.load(path)
    assert [(e.seq, e.kind) for e in loaded.read()] == [(4, "kind.from.later"), (5, "x")]
    assert loaded.capacity == 2


# -- Chrome trace -----------------------------------------------------------------------------


def validate_chrome_trace(trace: dict[str, Any]) -> None:
    """Check the structural rules Perfetto and chrome://tracing rely on."""
    assert set(trace) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert trace["displayTimeUnit"] == "ms"
    json.dumps(trace)  # plain JSON, no default= needed
    named_tids = set()
    used_tids = set()
    for event in trace["traceEvents"]:
        for key in ("ph", "ts", "pid", "tid"):
            assert key in event, (key, event)
        assert isinstance(event["ts"], int | float) and not isinstance(event["ts"], bool)
        assert math.isfinite(event["ts"]) and event["ts"] >= 0, event
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert 0 <= event["tid"] < 2**31, "Perfetto reads tid as a 32-bit number"
        if event["ph"] == "M":
            assert event["name"] in {"process_name", "thread_name"}
            assert isinstance(event["args"]["name"], str)
            if event["name"] == "thread_name":
                named_tids.add(event["tid"])
            continue
        used_tids.add(event["tid"])
        assert isinstance(event["name"], str) and event["name"]
        if event["ph"] == "X":
            assert isinstance(event["dur"], int | float) and event["dur"] >= 0, event
        elif event["ph"] == "C":
            assert event["args"], event
            assert all(
                isinstance(v, int | float) and not isinstance(v, bool)
                for v in event["args"].values()
            ), event
        elif event["ph"] == "i":
            assert event["s"] in {"g", "p", "t"}
        else:
            raise AssertionError(f"unexpected phase {event['ph']!r}")
    assert used_tids <= named_tids
    process = [e for e in trace["traceEvents"] if e.get("name") == "process_name"]
    assert [e["args"]["name"] for e in process] == ["routilux"]


def write_synthetic_trace(path: Path, rows: list[dict[str, Any]], dropped: int = 0) -> Tracer:
    """A trace with chosen threads and timestamps (in ns), loaded from a file."""
    lines = [json.dumps({**GOOD_HEADER, "capacity": 1000, "dropped": dropped})]
    for seq, row in enumerate(rows, start=1):
        lines.append(event_line(seq, **row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Tracer.load(path)


T1 = {"thread": 140_000_000_000_001, "thread_name": "pool-1"}
T2 = {"thread": 140_000_000_000_002, "thread_name": "pool-2"}
SAMPLER = {"thread": 140_000_000_000_003, "thread_name": "routilux-sampler"}
WATCHDOG = {"thread": 140_000_000_000_004, "thread_name": "routilux-watchdog"}


def synthetic_rows() -> list[dict[str, Any]]:
    ms = 1_000_000
    return [
        {"ts_ns": 10 * ms, "kind": "job.posted", "job_id": "j1", "routine": "src", **T1},
        {"ts_ns": 10 * ms, "kind": "queue.depth", "value": 3,
         "detail": {"busy": 1, "size": 2}, **SAMPLER},
        {"ts_ns": 11 * ms, "kind": "task.started", "job_id": "j1", "routine": "src",
         "name": "in", "worker_id": "w1", "value": 0.001, **T1},
        {"ts_ns": 12 * ms, "kind": "lock.wait", "name": "db", "job_id": "j1",
         "detail": {"holder": T2["thread"], "holder_name": "pool-2"}, **T1},
        {"ts_ns": 12 * ms, "kind": "task.started", "job_id": "j2", "routine": "sink",
         "name": "data", "worker_id": "w1", **T2},
        {"ts_ns": 15 * ms, "kind": "lock.acquired", "name": "db", "value": 0.003, **T1},
        {"ts_ns": 16 * ms, "kind": "task.error", "job_id": "j1", "routine": "src",
         "detail": "ValueError: boom", **T1},
        {"ts_ns": 16 * ms, "kind": "task.finished", "job_id": "j1", "routine": "src",
         "name": "in", "worker_id": "w1", "value": 0.005, "detail": "ValueError: boom", **T1},
        {"ts_ns": 17 * ms, "kind": "job.failed", "job_id": "j1", "value": 0.007,
         "detail": "ValueError: boom", **T1},
        {"ts_ns": 18 * ms, "kind": "lock.wait", "name": "cache", "job_id": "j2", **T2},
        {"ts_ns": 19 * ms, "kind": "lock.timeout", "name": "cache", "value": 0.001, **T2},
        {"ts_ns": 20 * ms, "kind": "lock.wait", "name": "a", **T1},
        {"ts_ns": 20 * ms, "kind": "lock.wait", "name": "b", **T2},
        {"ts_ns": 21 * ms, "kind": "deadlock.detected", "name": "a, b", "detail": {
            "cycle": [
                {**T1, "routine": "src", "job_id": "j3", "holds": "b", "waits_for": "a"},
                {**T2, "routine": "sink", "job_id": "j2", "holds": "a", "waits_for": "b"},
            ],
            "message": "pool-1 holds 'b' and waits for 'a'; pool-2 holds 'a' and waits for 'b'",
        }, **WATCHDOG},
        {"ts_ns": 22 * ms, "kind": "pool.resize", "value": 4, "detail": 2, **SAMPLER},
        {"ts_ns": 23 * ms, "kind": "finding", "name": "shared_state",
         "detail": {"title": "shared mutable state", "severity": "warning"}, **WATCHDOG},
        {"ts_ns": 24 * ms, "kind": "lock.wait", "name": "never", **T1},
        {"ts_ns": 25 * ms, "kind": "queue.depth", "value": 0,
         "detail": {"busy": 1, "size": 4}, **SAMPLER},
    ]  # fmt: skip


@pytest.mark.timeout(10)
def test_chrome_trace_of_a_synthetic_trace(tmp_path: Path) -> None:
    tracer = write_synthetic_trace(tmp_path / "in.jsonl", synthetic_rows(), dropped=3)
    out = tmp_path / "trace.json"
    trace = tracer.to_chrome_trace(out)
    validate_chrome_trace(trace)
    assert json.loads(out.read_text(encoding="utf-8")) == trace
    assert trace["otherData"]["dropped"] == 3

    events = trace["traceEvents"]
    names = {e["args"]["name"]: e["tid"] for e in events if e["name"] == "thread_name"}
    assert set(names) == {"pool-1", "pool-2", "routilux-sampler", "routilux-watchdog"}
    idents = {e["args"]["name"]: e["args"]["ident"] for e in events if e["name"] == "thread_name"}
    assert idents["pool-1"] == T1["thread"]
    t1, t2 = names["pool-1"], names["pool-2"]

    slices = {(e["tid"], e["name"]): e for e in events if e["ph"] == "X"}
    src = slices[(t1, "src")]
    assert (src["ts"], src["dur"]) == (1000.0, 5000.0)  # µs since the first event
    assert src["args"] == {"job": "j1", "slot": "in", "worker": "w1", "error": "ValueError: boom"}
    sink = slices[(t2, "sink")]  # never finished: closed at the last timestamp
    assert (sink["ts"], sink["dur"]) == (2000.0, 13000.0)
    assert sink["args"]["unfinished"] is True
    assert "error" not in sink["args"]

    db = slices[(t1, "wait db")]
    assert (db["ts"], db["dur"], db["args"]["outcome"]) == (2000.0, 3000.0, "acquired")
    assert db["args"]["holder_name"] == "pool-2"
    cache = slices[(t2, "wait cache")]
    assert (cache["ts"], cache["dur"], cache["args"]["outcome"]) == (8000.0, 1000.0, "timeout")
    for tid, lock in ((t1, "a"), (t2, "b")):
        wait = slices[(tid, f"wait {lock}")]
        assert (wait["ts"], wait["dur"], wait["args"]["outcome"]) == (10000.0, 1000.0, "deadlock")
    never = slices[(t1, "wait never")]
    assert (never["dur"], never["args"]["unfinished"]) == (1000.0, True)

    counters = [(e["name"], e["ts"], e["args"]) for e in events if e["ph"] == "C"]
    assert counters == [
        ("queue", 0.0, {"depth": 3}),
        ("threads", 0.0, {"busy": 1, "size": 2}),
        ("queue", 15000.0, {"depth": 0}),
        ("threads", 15000.0, {"busy": 1, "size": 4}),
    ]
    instants = {e["name"]: e for e in events if e["ph"] == "i"}
    assert set(instants) == {
        "job.failed",
        "deadlock.detected: a, b",
        "pool.resize",
        "finding: shared_state",
    }
    assert instants["deadlock.detected: a, b"]["s"] == "g"
    assert instants["job.failed"]["s"] == "t"
    assert instants["job.failed"]["args"]["detail"] == "ValueError: boom"
    assert instants["pool.resize"]["args"] == {"value": 4, "detail": 2}


@pytest.mark.timeout(10)
def test_chrome_trace_rebuilds_a_task_whose_start_was_dropped(tmp_path: Path) -> None:
    ms = 1_000_000
    rows = [
        {"ts_ns": 100 * ms, "kind": "job.posted", **T2},
        {"ts_ns": 104 * ms, "kind": "task.finished", "routine": "r", "job_id": "j",
         "value": 0.002, **T1},
    ]  # fmt: skip
    trace = write_synthetic_trace(tmp_path / "t.jsonl", rows).to_chrome_trace()
    validate_chrome_trace(trace)
    [task] = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert (task["ts"], task["dur"], task["args"]["start_lost"]) == (2000.0, 2000.0, True)


@pytest.mark.timeout(30)
def test_chrome_trace_from_live_threads() -> None:
    tracer = Tracer(1000)
    both_started = threading.Barrier(2)

    def pool_thread(routine: str) -> None:
        tracer.record("task.started", job_id="j", routine=routine, name="in", worker_id="w")
        both_started.wait()
        tracer.record("lock.wait", name="db", detail={"holder": None, "holder_name": None})
        tracer.record("lock.acquired", name="db", value=0.0)
        tracer.record("task.finished", job_id="j", routine=routine, name="in", value=0.0)

    threads = [
        threading.Thread(target=pool_thread, args=(f"r{k}",), name=f"pool-{k}") for k in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tracer.record("queue.depth", value=0, detail={"busy": 0, "size": 2})
    tracer.record("finding", name="pool_exhaustion", detail={"title": "t", "severity": "info"})

    trace = tracer.to_chrome_trace()
    validate_chrome_trace(trace)
    tasks = sorted(e["name"] for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "task")
    assert tasks == ["r0", "r1"]
    by_name = {e["name"]: e["tid"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert by_name["r0"] != by_name["r1"]


@pytest.mark.timeout(10)
def test_chrome_trace_of_an_empty_tracer() -> None:
    trace = Tracer(5).to_chrome_trace()
    validate_chrome_trace(trace)
    assert [e["name"] for e in trace["traceEvents"]] == ["process_name"]


# -- DataFrame --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_to_dataframe_columns() -> None:
    pd = pytest.importorskip("pandas")
    tracer = Tracer(10)
    tracer.record("job.posted", job_id="j1")
    tracer.record("task.started", job_id="j1", routine="r", value=0.5)
    tracer.record("job.completed", job_id="j1", value=1.5)
    frame = tracer.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [*FIELDS, "ts_s"]
    assert list(frame["seq"]) == [1, 2, 3]
    assert frame["ts_s"].iloc[0] == 0.0
    assert frame["ts_s"].is_monotonic_increasing
    later = tracer.to_dataframe(since=2)
    assert list(later["seq"]) == [3]
    assert later["ts_s"].iloc[0] == frame["ts_s"].iloc[2]  # one origin for every read
    empty = Tracer(3).to_dataframe()
    assert list(empty.columns) == [*FIELDS, "ts_s"]
    assert len(empty) == 0


@pytest.mark.timeout(10)
def test_to_dataframe_without_pandas_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match=re.escape("pip install routilux[jupyter]")):
        Tracer(3).to_dataframe()


@pytest.mark.timeout(60)
def test_importing_the_trace_module_does_not_import_pandas() -> None:
    code = "import sys, routilux.trace; assert 'pandas' not in sys.modules, 'pandas imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr


# -- documentation ----------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_every_event_kind_is_documented() -> None:
    doc = (REPO_ROOT / "docs" / "trace_events.md").read_text(encoding="utf-8")
    kinds_section = doc.split("\n## Kinds\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_.]+)` \|", kinds_section, flags=re.MULTILINE)
    assert sorted(documented) == sorted(EVENT_KINDS)
    assert all(description.strip() for description in EVENT_KINDS.values())
