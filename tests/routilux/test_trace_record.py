"""Tracer.record as one append per event (issue 16): seqs given when events are merged.

Each test forces its interleaving with threading.Event / Barrier and asserts only what the
design forces: seq order follows cause and effect across threads, a thread's events keep
their order, nothing is lost or double-counted when threads end, and a record made while
the tracer's lock is held (a finaliser) neither deadlocks nor is lost.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable

import pytest

from routilux.trace import Tracer


def run_in_thread(name: str, target: Callable[[], None]) -> None:
    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.timeout(10)
def test_seq_order_follows_a_handoff_between_threads() -> None:
    # a1 -> b1 -> a2 -> b2, each handed to the other thread by an Event: every merge must
    # number them in that order, whoever merges and when.
    tracer = Tracer(100)
    turns = [threading.Event() for _ in range(4)]

    def a() -> None:
        tracer.record("x", name="a1")
        turns[0].set()
        turns[1].wait(5)
        tracer.record("x", name="a2")
        turns[2].set()

    def b() -> None:
        turns[0].wait(5)
        tracer.record("x", name="b1")
        turns[1].set()
        turns[2].wait(5)
        tracer.record("x", name="b2")
        turns[3].set()

    threads = [threading.Thread(target=a, name="A"), threading.Thread(target=b, name="B")]
    for thread in threads:
        thread.start()
    assert turns[3].wait(5)
    for thread in threads:
        thread.join(5)
    events = tracer.read()
    assert [(e.seq, e.name, e.thread_name) for e in events] == [
        (1, "a1", "A"), (2, "b1", "B"), (3, "a2", "A"), (4, "b2", "B"),
    ]
    assert all(x.ts_ns <= y.ts_ns for x, y in itertools.pairwise(events))


@pytest.mark.timeout(10)
def test_a_reader_sees_what_another_thread_recorded_before_telling_it() -> None:
    tracer = Tracer(100)
    recorded, read_done = threading.Event(), threading.Event()

    def writer() -> None:
        tracer.record("x", value=1)
        tracer.record("x", value=2)
        recorded.set()
        read_done.wait(5)
        tracer.record("x", value=3)

    thread = threading.Thread(target=writer, name="writer")
    thread.start()
    assert recorded.wait(5)
    assert tracer.last_seq == 2  # a reader merges the writer's list
    assert [e.value for e in tracer.read(0)] == [1, 2]
    read_done.set()
    thread.join(5)
    assert [(e.seq, e.value) for e in tracer.read(2)] == [(3, 3)]


@pytest.mark.timeout(30)
def test_events_of_ended_threads_are_all_numbered_and_dropped_exactly() -> None:
    # No reader until every thread has ended: their events (merged on the way as the
    # pending list fills, the capacity being small) are all numbered, and drops follow
    # from the seqs.
    tracer = Tracer(capacity=100)
    for k in range(20):
        run_in_thread(f"short-{k}", lambda k=k: [tracer.record("x", job_id=f"j{k}", value=i)
                                                 for i in range(30)])
    assert tracer.last_seq == 600
    assert tracer.dropped == 500
    events = tracer.read()
    assert [e.seq for e in events] == list(range(501, 601))
    assert [(e.job_id, e.value) for e in events] == [
        (f"j{k}", i) for k in range(16, 20) for i in range(30)
    ][-100:]
    # Ended threads are forgotten (no leak with thread churn; a recycled ident gets the
    # new thread's own name).
    gc.collect()
    assert tracer._names == {}


@pytest.mark.timeout(10)
def test_record_as_is_numbered_after_what_was_recorded_before_it() -> None:
    tracer = Tracer(100)
    ident: list[int] = []

    def worker() -> None:
        ident.append(threading.get_ident())
        tracer.record("task.started", job_id="j")  # still in the worker's list

    thread = threading.Thread(target=worker, name="busy-worker")
    thread.start()
    thread.join(5)
    tracer.record_as(ident[0], "task.sample", job_id="j", value=0.5)
    events = tracer.read()
    assert [(e.seq, e.kind) for e in events] == [(1, "task.started"), (2, "task.sample")]
    assert events[1].thread == ident[0]


@pytest.mark.timeout(10)
def test_clear_discards_events_recorded_before_it_on_other_threads() -> None:
    tracer = Tracer(10)
    run_in_thread("before-clear", lambda: [tracer.record("x") for _ in range(25)])
    tracer.clear()
    assert tracer.read() == []
    assert len(tracer) == 0
    assert tracer.last_seq == 25
    assert tracer.dropped == 15  # 25 recorded into 10 slots before the clear
    tracer.record("y")
    assert [(e.seq, e.kind) for e in tracer.read()] == [(26, "y")]


class _RecordsWhenFreed:
    """A detail whose finaliser records into the tracer: it runs while a merge evicts it."""

    def __init__(self, tracer: Tracer, label: str) -> None:
        self.tracer, self.label = tracer, label

    def __del__(self) -> None:
        self.tracer.record("freed", name=self.label)


@pytest.mark.timeout(10)
def test_a_record_from_a_finaliser_during_a_merge_neither_deadlocks_nor_is_lost() -> None:
    # Capacity 1: storing each new event evicts the old one while the merge holds the lock;
    # the evicted detail's __del__ records, and its thread's flush must not wait for it.
    tracer = Tracer(capacity=1)
    tracer.record("held", detail=_RecordsWhenFreed(tracer, "first"))
    tracer.record("next")  # its flush evicts "held": __del__ records "freed"
    assert tracer.last_seq == 3
    assert [(e.kind, e.name) for e in tracer.read()] == [("freed", "first")]
    assert tracer.dropped == 2


@pytest.mark.timeout(10)
def test_a_readers_first_event_from_a_finaliser_during_its_merge_does_not_deadlock() -> None:
    # Capacity 2 (a merge at 2 pending): A and B are merged, C waits in the pending list.
    # A reader thread that never recorded merges C, which evicts A; A's detail records
    # from that thread, so its first event registers it while it holds the lock.
    tracer = Tracer(capacity=2)
    tracer.record("A", detail=_RecordsWhenFreed(tracer, "A"))
    tracer.record("B")
    tracer.record("C")
    seen: list[tuple] = []
    run_in_thread("reader", lambda: seen.extend((e.seq, e.kind) for e in tracer.read()))
    assert seen == [(2, "B"), (3, "C")]
    assert [(e.seq, e.kind, e.thread_name) for e in tracer.read()] == [
        (3, "C", threading.current_thread().name), (4, "freed", "reader"),
    ]
    assert tracer.dropped == 2


@pytest.mark.timeout(60)
def test_eight_threads_with_readers_lose_nothing_and_keep_program_order() -> None:
    n_threads, per_thread = 8, 2_000
    tracer = Tracer(n_threads * per_thread)
    start = threading.Barrier(n_threads + 1)
    seen: list[tuple] = []

    def writer(k: int) -> None:
        start.wait()
        for i in range(per_thread):
            tracer.record("x", job_id=f"t{k}", value=i)

    threads = [threading.Thread(target=writer, args=(k,), name=f"w{k}")
               for k in range(n_threads)]
    for thread in threads:
        thread.start()
    start.wait()
    cursor = 0
    while any(t.is_alive() for t in threads):  # read by cursor while they record
        rows = tracer.read_rows(cursor)
        if rows:
            assert rows[0][0] == cursor + 1
            seen += rows
            cursor = rows[-1][0]
    for thread in threads:
        thread.join()
    seen += tracer.read_rows(cursor)
    assert [r[0] for r in seen] == list(range(1, n_threads * per_thread + 1))
    for k in range(n_threads):
        assert [r[9] for r in seen if r[6] == f"t{k}"] == list(range(per_thread))
    assert tracer.dropped == 0
