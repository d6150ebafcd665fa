"""routilux.trace.task_spans and pool_series: one reading of tasks and of the pool (issue 12).

The oracle in these tests is deliberately naive: at each event's instant it counts, from
the raw events, the pool-lane tasks started and not finished and the activations queued
and not started, by brute force; ``pool_series`` must give the same numbers.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

import pytest
from util import JOIN_TIMEOUT, make_routine, new_flow, running

from routilux import Routine, immediate_policy
from routilux.diagnostics import diagnose
from routilux.sync import TracedLock
from routilux.trace import (
    LANES,
    PoolCounter,
    PoolSample,
    TaskSpan,
    TraceEvent,
    Tracer,
    pool_series,
    task_spans,
)
from routilux.tuning._recording import _rebuild

T0 = 10**12
LOOP = "RoutiluxAsyncLoop"


class Ev:
    """A hand-built trace; ``t`` in seconds."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def __call__(self, kind: str, t: float, *, thread: int = 1, thread_name: str | None = None,
                 job: str | None = None, routine: str | None = "r", name: str | None = "in",
                 value: Any = None, detail: Any = None) -> TraceEvent:
        e = TraceEvent(len(self.events) + 1, T0 + round(t * 1e9), kind, thread,
                       thread_name or f"RoutiluxThread-{thread}", None, job, routine, name,
                       value, detail)
        self.events.append(e)
        return e


def at(series: list[PoolSample], ts_ns: int) -> PoolSample:
    """The sample in effect at ``ts_ns``."""
    current = None
    for s in series:
        if s.ts_ns > ts_ns:
            break
        current = s
    assert current is not None, f"no sample at {ts_ns}"
    return current


def oracle(events: list[TraceEvent], ts_ns: int) -> tuple[int, int]:
    """(busy, queued) at ``ts_ns`` by brute force over the raw events (no shared code)."""
    upto = [e for e in events if e.ts_ns <= ts_ns]
    busy = 0
    open_by_thread: dict[tuple[int, str], int] = defaultdict(int)
    for e in sorted(upto, key=lambda e: (e.ts_ns, e.seq)):
        pool = e.thread_name != LOOP and not (isinstance(e.detail, dict) and "executor" in e.detail)
        if e.kind == "task.started" and pool:
            open_by_thread[(e.thread, e.thread_name)] += 1
        elif e.kind == "task.finished" and open_by_thread[(e.thread, e.thread_name)]:
            open_by_thread[(e.thread, e.thread_name)] -= 1
    busy = sum(open_by_thread.values())
    per_key: dict[tuple[Any, ...], int] = defaultdict(int)
    for e in upto:
        key = (e.job_id, e.routine, e.name)
        if e.kind == "task.queued":
            per_key[key] += 1
        elif e.kind == "task.started":
            per_key[key] -= 1
    # A start recorded before its task.queued cancels it: count each key at >= 0.
    return busy, sum(max(0, n) for n in per_key.values())


def assert_exact(events: list[TraceEvent], series: list[PoolSample]) -> None:
    for e in events:
        sample = at(series, e.ts_ns)
        assert (sample.busy, sample.queued) == oracle(events, e.ts_ns), (e, sample)


# ---------------------------------------------------------------------------------------
# task_spans
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_interleaved_coroutines_keep_their_own_run_time() -> None:
    # Job A runs 0.0-0.2 s, job B 0.1-0.9 s, both on the loop's one lane; pairing by
    # thread alone closed B's start with A's finish (issue 12: A measured 0.9 s).
    ev = Ev()
    ev("task.started", 0.0, thread_name=LOOP, job="A", value=0.0, detail={"executor": "asyncio"})
    ev("task.started", 0.1, thread_name=LOOP, job="B", value=0.0, detail={"executor": "asyncio"})
    ev("task.finished", 0.2, thread_name=LOOP, job="A", value=0.2)
    ev("task.finished", 0.9, thread_name=LOOP, job="B", value=0.8)
    spans = {s.job_id: s for s in task_spans(ev.events)}
    assert spans["A"].run_s == pytest.approx(0.2) and spans["B"].run_s == pytest.approx(0.8)
    assert spans["A"].end_ns == T0 + 200_000_000 and spans["B"].end_ns == T0 + 900_000_000
    assert {s.lane for s in spans.values()} == {"executor"}
    rec = _rebuild(ev.events)  # tuning's replay reads the same spans
    assert sorted((t.job, round(t.run_s, 3)) for t in rec.tasks) == [("A", 0.2), ("B", 0.8)]
    assert all(p.busy == 0 for p in pool_series(ev.events))  # the loop holds no pool thread


@pytest.mark.timeout(10)
def test_overlapping_coroutines_of_one_activation_key_pair_by_run_time() -> None:
    # One job delivering twice to the same slot: two identical keys open at once. Each
    # finish closes the start its reported run time points at.
    ev = Ev()
    ev("task.started", 0.0, thread_name=LOOP, job="A", value=0.0, detail={"executor": "asyncio"})
    ev("task.started", 0.3, thread_name=LOOP, job="A", value=0.0, detail={"executor": "asyncio"})
    ev("task.finished", 0.4, thread_name=LOOP, job="A", value=0.1)  # the second one
    ev("task.finished", 1.0, thread_name=LOOP, job="A", value=1.0)  # the first one
    spans = task_spans(ev.events)
    assert [(s.start_seq, s.end_seq) for s in spans] == [(1, 4), (2, 3)]


@pytest.mark.timeout(10)
def test_remote_lanes_lost_starts_errors_and_unfinished_tasks() -> None:
    ev = Ev()
    remote = {"executor": "processes", "address": None, "pid": 4242, "thread": "MainThread"}
    ev("task.started", 0.0, thread=(1 << 48) + 5, thread_name="RoutiluxProcess-4242",
       job="A", value=0.01, detail=remote)
    ev("task.finished", 0.5, thread=(1 << 48) + 5, thread_name="RoutiluxProcess-4242",
       job="A", value=0.5)
    ev("task.finished", 0.6, thread=2, job="B", value=0.25)  # its start was dropped
    ev("task.started", 0.7, thread=3, job="C", value=0.0)
    ev("task.error", 0.8, thread=3, job="C", value=0.1, detail="ValueError: x")
    ev("task.finished", 0.8, thread=3, job="C", value=0.1, detail="ValueError: x")
    ev("task.started", 0.9, thread=4, job="D", value=0.0)  # still running
    spans = {s.job_id: s for s in task_spans(ev.events, now_ns=T0 + 1_500_000_000)}
    assert spans["A"].lane == "remote" and spans["A"].wait_s == pytest.approx(0.01)
    assert spans["B"].start_seq == 0 and spans["B"].start_ns == T0 + 350_000_000
    assert spans["B"].lane == "pool" and spans["B"].finished
    assert spans["C"].error == "ValueError: x"
    assert not spans["D"].finished and spans["D"].run_s == pytest.approx(0.6)
    assert set(LANES) == {"pool", "executor", "remote"}
    busy = [p.busy for p in pool_series(ev.events)]
    assert max(busy) == 1  # C and D on pool threads, never at once; A is remote, B lost


@pytest.mark.timeout(10)
def test_sources_and_bad_input() -> None:
    tracer = Tracer()
    tracer.record("pool.size", value=2)
    tracer.record("task.queued", "j", "r", "in", 1)
    tracer.record("task.started", "j", "r", "in", 0.0)
    tracer.record("task.finished", "j", "r", "in", 0.0)
    events = tracer.read()
    assert pool_series(tracer) == pool_series(events) == pool_series(reversed(events))
    assert [(p.busy, p.queued, p.size) for p in pool_series(tracer)] == [
        (0, 0, 2), (0, 1, 2), (1, 0, 2), (0, 0, 2)]
    assert task_spans(tracer) == task_spans(events)
    assert isinstance(task_spans(tracer)[0], TaskSpan)
    sample = pool_series(tracer)[0]
    with pytest.raises(AttributeError):  # immutable, as TraceEvent is
        sample.busy = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="needs a routilux.trace.Tracer, a traced routilux"):
        pool_series(42)
    with pytest.raises(TypeError, match="not all TraceEvent records"):
        task_spans([{"kind": "task.started"}])
    with running(thread_pool_size=1) as rt, pytest.raises(ValueError, match="trace=True"):
        pool_series(rt)


@pytest.mark.timeout(10)
def test_start_before_its_queued_event_and_failed_jobs_rules() -> None:
    ev = Ev()
    ev("pool.resize", 0.0, value=4, detail=2, routine=None, name=None)
    ev("task.started", 0.1, job="A", value=0.0)  # recorded before its task.queued
    ev("task.queued", 0.1001, job="A", value=0)
    ev("task.queued", 0.2, job="B", value=1)
    ev("job.failed", 0.3, job="B", routine=None, name=None, value=0.1)  # B never starts
    series = pool_series(ev.events)
    assert [(p.busy, p.queued, p.size) for p in series] == [
        (0, 0, 4), (1, 0, 4), (1, 1, 4), (1, 0, 4)]
    assert series[0].ts_ns == T0
    counter = PoolCounter()
    pieces = counter.feed(ev.events[:2]) + counter.feed(ev.events[2:])
    assert pieces == series and counter.last == series[-1]


# ---------------------------------------------------------------------------------------
# pool_series on real runs
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_traced_runtime_records_its_size_first_and_on_resize() -> None:
    flow = new_flow()
    flow.add_routine(make_routine(lambda *a: None), "r")
    with running(thread_pool_size=3, trace=True) as rt:
        first = rt.tracer.read()[0]
        assert (first.kind, first.value) == ("pool.size", 3)
        rt.exec(flow)
        rt.post(flow.flow_id, "r", "in", {})
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        rt.resize(5)
        series = pool_series(rt)
    assert series[0].size == 3 and series[-1].size == 5


@pytest.mark.timeout(120)
def test_pool_series_equals_the_task_events_through_a_flood() -> None:
    # Three stages on 3 threads, 300 jobs posted at once: the queue deepens, emits take the
    # "next task" path and the shared queue both; every instant must match the events.
    flow = new_flow()
    flow.add_routine(make_routine(lambda d, m, ws: flow.routines["a"].emit("out")), "a")
    flow.add_routine(make_routine(lambda d, m, ws: flow.routines["b"].emit("out")), "b")
    flow.add_routine(make_routine(lambda *a: None), "c")
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "c", "in")
    with running(thread_pool_size=3, trace=True) as rt:
        rt.exec(flow)
        for i in range(300):
            rt.post(flow.flow_id, "a", "in", {"i": i})
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        events = rt.tracer.read()
    series = pool_series(events)
    assert_exact(events, series)
    assert max(p.busy for p in series) <= 3 and max(p.queued for p in series) >= 10
    assert series[-1].busy == series[-1].queued == 0
    assert [t for t in (p.ts_ns for p in series)] == sorted(p.ts_ns for p in series)
    # Each task.queued carries the run-queue depth after its enqueue (docs/trace_events.md),
    # on both paths (the shared queue and an emitting thread's next slot): never None.
    depths = [e.value for e in events if e.kind == "task.queued"]
    assert len(depths) == 900 and all(type(d) is int and d >= 1 for d in depths), depths[:5]


@pytest.mark.timeout(120)
def test_three_threads_waiting_for_one_holders_lock_are_four_busy() -> None:
    held, release = threading.Event(), threading.Event()
    with running(thread_pool_size=4, trace=True) as rt:
        lock = TracedLock("ledger", tracer=rt.tracer)

        def holder(d: Any, m: Any, ws: Any) -> None:
            with lock:
                held.set()
                assert release.wait(JOIN_TIMEOUT)

        def waiter(d: Any, m: Any, ws: Any) -> None:
            with lock:
                pass

        flow = new_flow()
        flow.add_routine(make_routine(holder), "holder")
        flow.add_routine(make_routine(waiter), "waiter")
        rt.exec(flow)
        rt.post(flow.flow_id, "holder", "in", {})
        assert held.wait(JOIN_TIMEOUT)
        for _ in range(3):
            rt.post(flow.flow_id, "waiter", "in", {})
        waits = threading.Event()
        for _ in range(int(JOIN_TIMEOUT / 0.01)):  # until the three waits are recorded
            if sum(e.kind == "lock.wait" for e in rt.tracer.read()) == 3:
                waits.set()
                break
            waits.wait(0.01)
        assert waits.is_set()
        series = pool_series(rt)
        third_wait = [e for e in rt.tracer.read() if e.kind == "lock.wait"][-1]
        release.set()
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        events = rt.tracer.read()
    assert at(series, third_wait.ts_ns).busy == 4  # three waiting + the holder
    assert at(series, third_wait.ts_ns).queued == 0
    final = pool_series(events)
    assert_exact(events, final)
    assert max(p.busy for p in final) == 4 and final[-1].busy == 0


class _Sleeper(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.set_activation_policy(immediate_policy())

    async def logic(self, slot_data: Any, policy_message: Any, worker_state: Any) -> None:
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
def test_an_async_flood_holds_no_pool_thread_and_is_not_blocking() -> None:
    flow = new_flow()
    flow.add_routine(_Sleeper(), "req")
    with running(thread_pool_size=2, trace=True) as rt:
        rt.exec(flow)
        for i in range(200):
            rt.post(flow.flow_id, "req", "in", {"i": i})
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        events = rt.tracer.read()
        findings = diagnose(rt)
    starts = [e for e in events if e.kind == "task.started"]
    assert {e.thread_name for e in starts} == {LOOP}
    assert all(e.detail == {"executor": "asyncio"} for e in starts)
    series = pool_series(events)
    assert all(p.busy == 0 for p in series)
    assert_exact(events, series)
    assert findings == []
