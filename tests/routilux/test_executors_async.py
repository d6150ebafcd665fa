"""Coroutine logic (#8): ``async def`` logic runs on the runtime's event loop thread.

What must hold: awaiting holds no pool thread (thousands of awaits with a pool of 4);
emit, the job context and the error strategies behave as for sync logic; the job stays in
flight until its coroutine returns; the trace shows these tasks on the loop's own lane;
the loop thread starts lazily and ends at shutdown.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running, wait_until

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    get_current_job,
    get_current_job_id,
    get_current_worker_state,
)

LOOP_THREAD = "RoutiluxAsyncLoop"


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOOP_THREAD and t.is_alive()]


def _sink_flow(logic, got: Recorder, prefix: str = "async"):
    """entry routine 'a' (the given logic) -> 'sink' (sync, records item and job id)."""
    flow = new_flow(prefix)
    flow.add_routine(make_routine(logic), "a")
    flow.add_routine(make_routine(
        lambda sd, pm, ws: got.add((sd["in"][0], get_current_job_id(),
                                    threading.current_thread().name)), events=()), "sink")
    flow.connect("a", "out", "sink", "in")
    return flow


@pytest.mark.timeout(60)
def test_thousands_of_awaits_hold_no_pool_thread() -> None:
    # Every coroutine waits until all N have started: with a pool of 4 this completes only
    # if an awaiting coroutine holds no pool thread. No sleeps, no timing luck.
    n = 2000
    state = {"started": 0}
    all_in: dict[str, asyncio.Event] = {}

    async def logic(slot_data, policy_message, worker_state):
        if "ev" not in all_in:  # created on the loop thread, by the first coroutine
            all_in["ev"] = asyncio.Event()
        state["started"] += 1  # only the loop thread runs this: no lock needed
        if state["started"] == n:
            all_in["ev"].set()
        await all_in["ev"].wait()

    flow = new_flow("async-many")
    flow.add_routine(make_routine(logic, events=()), "a")
    with running(thread_pool_size=4) as rt:
        jobs = [rt.post(flow.flow_id, "a", "in", {"i": i})[1] for i in range(n)]
        finish_all(rt)
        assert {j.status for j in jobs} == {"completed"}
        assert state["started"] == n
        assert rt.statistics().threads <= 4


@pytest.mark.timeout(60)
def test_concurrent_awaits_take_about_one_await() -> None:
    # 1000 x 0.3 s awaits on 4 threads: blocking would need 75 s; awaiting needs ~0.3 s.
    # The bound is loose on purpose (a slow CI machine); the claim is the order of magnitude.
    async def logic(slot_data, policy_message, worker_state):
        await asyncio.sleep(0.3)

    flow = new_flow("async-time")
    flow.add_routine(make_routine(logic, events=()), "a")
    with running(thread_pool_size=4) as rt:
        t0 = time.perf_counter()
        for i in range(1000):
            rt.post(flow.flow_id, "a", "in", {"i": i})
        finish_all(rt)
        elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, f"1000 concurrent 0.3 s awaits took {elapsed:.2f} s"


@pytest.mark.timeout(30)
def test_pool_threads_stay_free_for_sync_work_while_coroutines_await() -> None:
    gate = threading.Event()
    got = Recorder()

    async def slow(slot_data, policy_message, worker_state):
        while not gate.is_set():
            await asyncio.sleep(0.005)

    flow = new_flow("async-free")
    flow.add_routine(make_routine(slow, events=()), "slow")
    flow.add_routine(make_routine(lambda sd, pm, ws: got.add(sd["in"][0]), events=()), "fast")
    with running(thread_pool_size=2) as rt:
        slow_jobs = [rt.post(flow.flow_id, "slow", "in", {})[1] for _ in range(20)]
        for i in range(10):
            rt.post(flow.flow_id, "fast", "in", {"i": i})
        got.wait_for(10)  # the pool of 2 ran sync work while 20 coroutines awaited
        assert all(j.status == "running" for j in slow_jobs)
        gate.set()
        finish_all(rt)
        assert {j.status for j in slow_jobs} == {"completed"}


@pytest.mark.timeout(30)
def test_emit_and_job_context_inside_a_coroutine() -> None:
    got = Recorder()
    seen = Recorder()

    async def logic(slot_data, policy_message, worker_state):
        job = get_current_job()
        await asyncio.sleep(0.01 * (slot_data["in"][0]["i"] % 3))  # interleave the jobs
        assert get_current_job() is job  # still this job after the await
        seen.add((job.job_id, job.metadata["i"], get_current_worker_state() is worker_state))
        job.set_data("doubled", slot_data["in"][0]["i"] * 2)
        routine.emit("out", i=slot_data["in"][0]["i"], job=job.job_id)

    routine = make_routine(logic)
    flow = new_flow("async-emit")
    flow.add_routine(routine, "a")
    flow.add_routine(make_routine(
        lambda sd, pm, ws: got.add((sd["in"][0], get_current_job_id(),
                                    threading.current_thread().name)), events=()), "sink")
    flow.connect("a", "out", "sink", "in")
    with running(thread_pool_size=3) as rt:
        jobs = {}
        for i in range(30):
            _, job = rt.post(flow.flow_id, "a", "in", {"i": i}, metadata={"i": i})
            jobs[job.job_id] = (i, job)
        finish_all(rt)
        for item, job_id, thread in got.wait_for(30):
            assert item["job"] == job_id  # downstream runs under the emitting job
            assert jobs[job_id][0] == item["i"]
            assert thread.startswith("RoutiluxThread")  # downstream sync logic: the pool
        for job_id, i, same_ws in seen.snapshot():
            assert jobs[job_id][0] == i and same_ws
        assert all(job.get_data("doubled") == i * 2 for i, job in jobs.values())
        assert {job.status for _, job in jobs.values()} == {"completed"}


@pytest.mark.timeout(30)
def test_job_stays_in_flight_until_the_coroutine_returns() -> None:
    gate = threading.Event()

    async def logic(slot_data, policy_message, worker_state):
        while not gate.is_set():
            await asyncio.sleep(0.005)

    flow = new_flow("async-inflight")
    flow.add_routine(make_routine(logic, events=()), "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        assert not rt.wait_until_all_workers_idle(0.2)
        assert not rt.wait_until_all_jobs_finished(0.05)
        assert job.status == "running" and rt.statistics().busy == 0
        gate.set()
        assert job.wait(JOIN_TIMEOUT) and job.status == "completed"
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)


@pytest.mark.timeout(30)
def test_stop_fails_the_job_and_its_downstream_never_runs() -> None:
    got = Recorder()

    async def logic(slot_data, policy_message, worker_state):
        await asyncio.sleep(0)
        raise ValueError("bad input")

    flow = _sink_flow(logic, got, "async-stop")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        finish_all(rt)
        assert job.status == "failed"
        assert job.error == "ValueError: bad input"
        assert len(got) == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("strategy", [ErrorStrategy.CONTINUE, ErrorStrategy.SKIP])
def test_continue_and_skip(strategy: ErrorStrategy) -> None:
    async def logic(slot_data, policy_message, worker_state):
        raise KeyError("k")

    flow = new_flow("async-cont")
    routine = make_routine(logic, events=())
    routine.set_error_handler(ErrorHandler(strategy))
    flow.add_routine(routine, "a")
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "a", "in", {})
        finish_all(rt)
        assert job.status == "completed"
        expected = "error_continued" if strategy == ErrorStrategy.CONTINUE else "skipped"
        assert ws.get_routine_state("a")["status"] == expected
        assert any(r.event_name == expected for r in ws.get_execution_history("a"))


@pytest.mark.timeout(30)
def test_retry_reruns_the_same_call_then_completes() -> None:
    calls = Recorder()

    async def logic(slot_data, policy_message, worker_state):
        calls.add((dict(slot_data["in"][0]), get_current_job_id()))
        await asyncio.sleep(0)
        if len(calls) < 3:
            raise ConnectionError("flaky")

    flow = new_flow("async-retry")
    routine = make_routine(logic, events=())
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01))
    flow.add_routine(routine, "a")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {"x": 1})
        finish_all(rt)
        assert job.status == "completed"
        assert calls.snapshot() == [({"x": 1}, job.job_id)] * 3


@pytest.mark.timeout(30)
def test_retry_exhausted_fails_the_job() -> None:
    calls = Recorder()

    async def logic(slot_data, policy_message, worker_state):
        calls.add(1)
        raise ConnectionError("down")

    flow = new_flow("async-retry-out")
    routine = make_routine(logic, events=())
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0))
    flow.add_routine(routine, "a")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        finish_all(rt)
        assert job.status == "failed" and job.error == "ConnectionError: down"
        assert len(calls) == 3


@pytest.mark.timeout(30)
def test_trace_puts_coroutines_on_the_loop_lane() -> None:
    async def logic(slot_data, policy_message, worker_state):
        await asyncio.sleep(0.02)

    flow = new_flow("async-trace")
    flow.add_routine(make_routine(logic, events=()), "a")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "b")
    with running(thread_pool_size=2, trace=True) as rt:
        for _ in range(5):
            rt.post(flow.flow_id, "a", "in", {})
            rt.post(flow.flow_id, "b", "in", {})
        finish_all(rt)
        events = rt.tracer.read()
    lanes = {(e.routine, e.kind): set() for e in events}
    for e in events:
        if e.kind in ("task.started", "task.finished"):
            lanes[(e.routine, e.kind)].add(e.thread_name)
    assert lanes[("a", "task.started")] == {LOOP_THREAD}
    assert lanes[("a", "task.finished")] == {LOOP_THREAD}
    assert all(n.startswith("RoutiluxThread") for n in lanes[("b", "task.started")])
    durations = [e.value for e in events if e.kind == "task.finished" and e.routine == "a"]
    assert len(durations) == 5 and min(durations) >= 0.015


@pytest.mark.timeout(30)
def test_the_loop_thread_starts_lazily_and_ends_at_shutdown() -> None:
    before = set(_loop_threads())
    flow = new_flow("async-life")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "sync")

    async def logic(slot_data, policy_message, worker_state):
        await asyncio.sleep(0)

    flow.add_routine(make_routine(logic, events=()), "coro")
    with running(thread_pool_size=2) as rt:
        rt.post(flow.flow_id, "sync", "in", {})
        finish_all(rt)
        assert set(_loop_threads()) == before  # no coroutine yet: no loop
        rt.post(flow.flow_id, "coro", "in", {})
        finish_all(rt)
        mine = [t for t in _loop_threads() if t not in before]
        assert len(mine) == 1 and mine[0].daemon
    mine[0].join(JOIN_TIMEOUT)
    assert not mine[0].is_alive()


@pytest.mark.timeout(30)
def test_shutdown_without_wait_cancels_awaiting_jobs() -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def logic(slot_data, policy_message, worker_state):
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    flow = new_flow("async-abandon")
    flow.add_routine(make_routine(logic, events=()), "a")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        assert started.wait(JOIN_TIMEOUT)
        loop_threads = [t for t in _loop_threads()]
        t0 = time.monotonic()
        rt.shutdown(wait=False)
        assert time.monotonic() - t0 < 10
        assert job.status == "cancelled"
        assert cancelled.is_set()
        assert rt.statistics().in_flight == 0
    for t in loop_threads:
        t.join(JOIN_TIMEOUT)


@pytest.mark.timeout(30)
def test_explicit_asyncio_executor_and_sync_logic_under_it() -> None:
    got = Recorder()

    async def coro(slot_data, policy_message, worker_state):
        got.add(("coro", threading.current_thread().name))

    def sync(slot_data, policy_message, worker_state):
        got.add(("sync", threading.current_thread().name))

    flow = new_flow("async-explicit")
    flow.add_routine(make_routine(coro, events=()).set_executor("asyncio"), "c")
    flow.add_routine(make_routine(sync, events=()).set_executor("asyncio"), "s")
    with running(thread_pool_size=2) as rt:
        rt.post(flow.flow_id, "c", "in", {})
        rt.post(flow.flow_id, "s", "in", {})
        finish_all(rt)
    threads = dict(got.wait_for(2))
    assert threads["coro"] == LOOP_THREAD
    assert threads["sync"].startswith("RoutiluxThread")  # a loop is for coroutines only


@pytest.mark.timeout(30)
def test_async_method_logic_and_per_slot_style() -> None:
    from routilux import Routine, immediate_policy

    got = Recorder()

    class Joiner(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("a")
            self.add_slot("b")
            self.set_activation_policy(immediate_policy())

        async def logic(self, a, b, policy_message, worker_state):
            await asyncio.sleep(0)
            got.add((list(a), list(b), get_current_job_id()))

    flow = new_flow("async-method")
    flow.add_routine(Joiner(), "j")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "j", "b", {"v": 1})
        finish_all(rt)
    assert got.wait_for(1) == [([], [{"v": 1}], job.job_id)]


@pytest.mark.timeout(30)
def test_timeout_fails_a_job_whose_coroutine_never_returns() -> None:
    async def logic(slot_data, policy_message, worker_state):
        await asyncio.sleep(3600)

    flow = new_flow("async-timeout", execution_timeout=0.3)
    flow.add_routine(make_routine(logic, events=()), "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        assert job.wait(JOIN_TIMEOUT)
        assert job.status == "failed" and "timed out" in job.error
        rt.shutdown(wait=False)
        wait_until(lambda: rt.statistics().in_flight == 0, what="coroutine cancelled")
