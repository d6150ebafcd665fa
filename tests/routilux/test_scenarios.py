"""The 20 acceptance scenarios of api.md §18, one test each, asserting what each says.

Where a scenario makes logic take time (``sleep`` inside logic), the test does the same;
everything the test itself waits for is an Event, a Barrier or a runtime wait function.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest
from util import (
    JOIN_TIMEOUT,
    Concurrency,
    Recorder,
    finish_all,
    make_routine,
    new_flow,
    new_threads,
    running,
)

import routilux
from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Routine,
    SlotQueueFullError,
    WorkerState,
    all_slots_ready_policy,
    batch_size_policy,
    get_current_job,
    get_current_job_id,
    get_current_worker_state,
    time_interval_policy,
)


# 1 ------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_01_linear_flow_without_exec_completes_every_job_with_its_own_data() -> None:
    ran3 = Recorder()
    mismatches = Recorder()

    def first(slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        get_current_job().set_data("token", item["n"])
        r1.emit("out", n=item["n"])

    def second(slot_data, policy_message, worker_state):
        r2.emit("out", **slot_data["in"][0])

    def third(slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        job = get_current_job()
        if job.get_data("token") != item["n"]:
            mismatches.add((job.job_id, job.get_data("token"), item["n"]))
        ran3.add(item["n"])

    r1, r2, r3 = make_routine(first), make_routine(second), make_routine(third)
    flow = new_flow("s01")
    for rid, r in (("r1", r1), ("r2", r2), ("r3", r3)):
        flow.add_routine(r, rid)
    flow.connect("r1", "out", "r2", "in")
    flow.connect("r2", "out", "r3", "in")
    with running(thread_pool_size=4) as rt:
        jobs = [rt.post(flow.flow_id, "r1", "in", {"n": i})[1] for i in range(100)]
        assert rt.wait_until_all_jobs_finished(timeout=10)
        assert [j.status for j in jobs] == ["completed"] * 100
        assert sorted(ran3.snapshot()) == list(range(100))
        assert mismatches.snapshot() == []
        assert all(j.get_data("token") == i for i, j in enumerate(jobs))


# 2 ------------------------------------------------------------------------------------------
class KwargsRoutine(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.set_activation_policy(routilux.immediate_policy())

    def logic(self, items, **kwargs):
        got.add(("method", items[0], kwargs["worker_state"]))


got = Recorder()


@pytest.mark.timeout(30)
def test_02_logic_signatures_all_receive_the_posted_dicts() -> None:
    def mapping(slot_data, policy_message, worker_state):
        got.add(("mapping", slot_data.get("in")[0], worker_state))

    def job_state_style(items, policy_message, job_state):
        got.add(("items", items[0], job_state))

    def two_slots(a, b, policy_message, worker_state):
        got.add(("two", (a, b), worker_state))

    def one_param(x):
        raise AssertionError("never called with one argument")

    flow = new_flow("s02")
    flow.add_routine(make_routine(mapping, events=()), "mapping")
    flow.add_routine(make_routine(job_state_style, events=()), "items")
    flow.add_routine(KwargsRoutine(), "method")
    flow.add_routine(
        make_routine(two_slots, slots=("a", "b"), events=(), policy=all_slots_ready_policy()),
        "two",
    )
    flow.add_routine(make_routine(one_param, events=()), "bad")
    got.items.clear()
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        for rid in ("mapping", "items", "method"):
            rt.post(flow.flow_id, rid, "in", {"who": rid})
        rt.post(flow.flow_id, "two", "a", {"side": "a"})
        rt.post(flow.flow_id, "two", "b", {"side": "b"})
        _, bad = rt.post(flow.flow_id, "bad", "in", {"who": "bad"})
        finish_all(rt)
        records = {kind: (data, state) for kind, data, state in got.snapshot()}
        assert records["mapping"] == ({"who": "mapping"}, ws)
        assert records["items"] == ({"who": "items"}, ws)
        assert records["method"] == ({"who": "method"}, ws)
        assert records["two"] == (([{"side": "a"}], [{"side": "b"}]), ws)
        assert records["mapping"][1] is ws
        assert bad.status == "failed"
        assert "TypeError" in bad.error


# 3 ------------------------------------------------------------------------------------------
class Emitter(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out")
        self.set_activation_policy(routilux.immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        if slot_data["in"][0].get("undeclared"):
            self.emit("nope", x=2)
        self.emit("out", x=1)


@pytest.mark.timeout(30)
def test_03_emit_copies_payload_per_target_and_validates() -> None:
    received = Recorder()
    src = Emitter()
    flow = new_flow("s03")
    flow.add_routine(src, "src")
    for name in ("t1", "t2"):
        flow.add_routine(
            make_routine(lambda sd, pm, ws, name=name: received.add((name, sd["in"][0])),
                         events=()),
            name,
        )
        flow.connect("src", "out", name, "in")
    with running(thread_pool_size=2) as rt:
        _, ok = rt.post(flow.flow_id, "src", "in", {})
        _, bad = rt.post(flow.flow_id, "src", "in", {"undeclared": True})
        finish_all(rt)
        items = received.snapshot()
        assert sorted(name for name, _ in items) == ["t1", "t2"]
        assert [item for _, item in items] == [{"x": 1}, {"x": 1}]
        assert items[0][1] is not items[1][1]
        assert ok.status == "completed"
        assert bad.status == "failed"
        assert bad.error.startswith("ValueError") and "'nope'" in bad.error
        with pytest.raises(RuntimeError, match="no worker"):
            src.emit("out", x=1)


# 4 ------------------------------------------------------------------------------------------
def _scenario_04_batch(size: int) -> tuple[float, int, list[str]]:
    conc = Concurrency()
    downstream_threads = Recorder()

    def slow(slot_data, policy_message, worker_state):
        with conc:
            time.sleep(0.2)
        up.emit("out", done=True)

    def down(slot_data, policy_message, worker_state):
        downstream_threads.add(threading.current_thread().name)

    up = make_routine(slow)
    flow = new_flow("s04")
    flow.add_routine(up, "up")
    flow.add_routine(make_routine(down, events=()), "down")
    flow.connect("up", "out", "down", "in")
    with running(thread_pool_size=size) as rt:
        start = time.monotonic()
        for i in range(6):
            rt.post(flow.flow_id, "up", "in", {"i": i})
        finish_all(rt)
        elapsed = time.monotonic() - start
    return elapsed, conc.max, downstream_threads.snapshot()


@pytest.mark.timeout(60)
def test_04_pool_size_bounds_concurrency_and_downstream_runs_on_the_pool() -> None:
    slow_time, overlap, threads = _scenario_04_batch(2)
    assert overlap <= 2
    assert len(threads) == 6
    assert all(name.startswith("RoutiluxThread") for name in threads)
    fast_time, overlap6, _ = _scenario_04_batch(6)
    assert overlap6 <= 6
    assert fast_time < slow_time / 2, (fast_time, slow_time)


# 5 ------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_05_posts_without_worker_id_share_the_execd_worker() -> None:
    def count(slot_data, policy_message, worker_state):
        worker_state.modify_routine_state("counter", lambda s: {"n": s.get("n", 0) + 1})

    flow = new_flow("s05")
    flow.add_routine(make_routine(count, events=()), "counter")
    with running(thread_pool_size=3) as rt:
        ws = rt.exec(flow.flow_id)
        ids = [rt.post(flow.flow_id, "counter", "in", {"i": i})[0].worker_id for i in range(5)]
        finish_all(rt)
        assert ids == [ws.worker_id] * 5
        assert ws.routine_states["counter"] == {"n": 5}


# 6 ------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_06_all_slots_ready_pairs_by_position() -> None:
    acts = Recorder()

    def join(a, b, policy_message, worker_state):
        acts.add((a, b))

    r = make_routine(join, slots=("a", "b"), events=(), policy=all_slots_ready_policy())
    flow = new_flow("s06")
    flow.add_routine(r, "join")
    lonely = Recorder()
    one_sided = make_routine(lambda a, b, pm, ws: lonely.add(1), slots=("a", "b"),
                             events=(), policy=all_slots_ready_policy())
    flow.add_routine(one_sided, "lonely")
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        for n in (1, 2, 3):
            rt.post(flow.flow_id, "join", "a", {"a": n})
        for n in (1, 2):
            rt.post(flow.flow_id, "join", "b", {"b": n})
        for n in range(4):
            rt.post(flow.flow_id, "lonely", "a", {"a": n})
        finish_all(rt)
        assert acts.snapshot() == [([{"a": 1}], [{"b": 1}]), ([{"a": 2}], [{"b": 2}])]
        assert r.get_slot("a").for_worker(ws).get_unconsumed_count() == 1
        assert r.get_slot("a").get_unconsumed_count() == 1  # the default worker's queue
        assert r.get_slot("b").get_unconsumed_count() == 0
        assert lonely.snapshot() == []
        assert one_sided.get_slot("a").get_unconsumed_count() == 4


# 7 ------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_07_match_job_barrier_never_mixes_jobs() -> None:
    joins = Recorder()
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.01) for _ in range(200)]
    delay_lock = threading.Lock()

    def split(slot_data, policy_message, worker_state):
        src.emit("out", job=get_current_job_id(), n=slot_data["in"][0]["n"])

    def branch_logic(routine_ref):
        def logic(slot_data, policy_message, worker_state):
            with delay_lock:
                delay = delays.pop()
            time.sleep(delay)
            routine_ref[0].emit("out", **slot_data["in"][0])

        return logic

    def join(left, right, policy_message, worker_state):
        joins.add((left[0]["job"], right[0]["job"], get_current_job_id(), left[0]["n"]))

    src = make_routine(split)
    refs: dict[str, list[Routine]] = {"left": [], "right": []}
    flow = new_flow("s07")
    flow.add_routine(src, "src")
    for name in ("left", "right"):
        branch = make_routine(branch_logic(refs[name]))
        refs[name].append(branch)
        flow.add_routine(branch, name)
        flow.connect("src", "out", name, "in")
    flow.add_routine(
        make_routine(join, slots=("l", "r"), events=(),
                     policy=all_slots_ready_policy(match_job=True)),
        "join",
    )
    flow.connect("left", "out", "join", "l")
    flow.connect("right", "out", "join", "r")
    with running(thread_pool_size=8) as rt:
        ws = rt.exec(flow.flow_id)
        start = threading.Barrier(5)
        errors: list[BaseException] = []

        def poster(base: int) -> None:
            try:
                start.wait(JOIN_TIMEOUT)
                for i in range(10):
                    rt.post(flow.flow_id, "src", "in", {"n": base + i}, worker_id=ws.worker_id)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=poster, args=(k * 10,)) for k in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT)
        assert errors == []
        finish_all(rt)
        rows = joins.snapshot()
        assert len(rows) == 50
        assert all(left == right == current for left, right, current, _ in rows), rows
        assert sorted(n for *_, n in rows) == list(range(50))
        assert {j.status for j in rt.list_jobs()} == {"completed"}


# 8 ------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_08_batch_size_policy_gives_full_batches_only() -> None:
    batches = Recorder()

    def logic(slot_data, policy_message, worker_state):
        batches.add(([d["n"] for d in slot_data["in"]], get_current_job_id(), policy_message))

    r = make_routine(logic, events=(), policy=batch_size_policy(5))
    flow = new_flow("s08")
    flow.add_routine(r, "batch")
    with running(thread_pool_size=2) as rt:
        jobs = [rt.post(flow.flow_id, "batch", "in", {"n": n})[1] for n in range(1, 13)]
        finish_all(rt)
        rows = sorted(batches.snapshot())
        assert [items for items, _, _ in rows] == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
        assert [job for _, job, _ in rows] == [jobs[4].job_id, jobs[9].job_id]
        assert rows[0][2] == {"reason": "batch_ready", "batch_size": 5}
        assert r.get_slot("in").get_unconsumed_count() == 2
        assert [j.status for j in jobs] == ["completed"] * 12


# 9 ------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_09_full_slots_refuse_posts_and_fail_emitting_jobs() -> None:
    flow = new_flow("s09")
    flow.add_routine(make_routine(None, events=(), policy=None, max_queue_length=3), "parked")
    with running(thread_pool_size=2) as rt:
        for i in range(3):
            rt.post(flow.flow_id, "parked", "in", {"i": i})
        before = rt.list_jobs()
        with pytest.raises(SlotQueueFullError, match="parked.in"):
            rt.post(flow.flow_id, "parked", "in", {"i": 3})
        assert rt.list_jobs() == before
        assert len(before) == 3
        finish_all(rt)

    def src_logic(slot_data, policy_message, worker_state):
        src.emit("out", n=slot_data["in"][0]["n"])

    src = make_routine(src_logic)
    flow2 = new_flow("s09b")
    flow2.add_routine(src, "src")
    flow2.add_routine(make_routine(None, events=(), policy=None, max_queue_length=1), "full")
    other = make_routine(None, events=(), policy=None)  # parks what it gets, so we can look
    flow2.add_routine(other, "other")
    flow2.connect("src", "out", "full", "in")
    flow2.connect("src", "out", "other", "in")
    with running(thread_pool_size=2) as rt:
        _, first = rt.post(flow2.flow_id, "src", "in", {"n": 1})
        assert first.wait(JOIN_TIMEOUT)
        _, second = rt.post(flow2.flow_id, "src", "in", {"n": 2})
        finish_all(rt)
        assert first.status == "completed"
        assert second.status == "failed"
        assert second.error.startswith("SlotQueueFullError") and "full.in" in second.error
        assert other.get_slot("in").peek_all_new() == [{"n": 1}, {"n": 2}]


# 10 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_10_policy_firing_without_consuming_runs_once_per_post() -> None:
    runs = Recorder()
    r = make_routine(lambda sd, pm, ws: runs.add(dict(sd)), events=(),
                     policy=lambda slots, ws: (True, {}, None))
    flow = new_flow("s10")
    flow.add_routine(r, "lazy")
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        slot = r.get_slot("in").for_worker(ws)
        for i in range(1, 6):
            rt.post(flow.flow_id, "lazy", "in", {"i": i})
            finish_all(rt)
            assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
            assert len(runs) == i
            assert slot.get_unconsumed_count() == i
        assert runs.snapshot() == [{"in": []}] * 5


# 11 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_11_time_interval_throttles_per_routine_and_flushes_trailing_items() -> None:
    acts = Recorder()

    def logic_for(name):
        return lambda sd, pm, ws: acts.add((name, time.monotonic(), [d["i"] for d in sd["in"]]))

    flow = new_flow("s11")
    flow.add_routine(make_routine(logic_for("a"), events=(),
                                  policy=time_interval_policy(0.3)), "a")
    flow.add_routine(make_routine(logic_for("b"), events=(),
                                  policy=time_interval_policy(0.3)), "b")
    with running(thread_pool_size=2) as rt:
        rt.exec(flow.flow_id)
        start = time.monotonic()
        for i in range(5):
            rt.post(flow.flow_id, "a", "in", {"i": i})
        rt.post(flow.flow_id, "b", "in", {"i": 0})
        posted_within = time.monotonic() - start
        finish_all(rt)
        rows = acts.snapshot()
    a_rows = [r for r in rows if r[0] == "a"]
    b_rows = [r for r in rows if r[0] == "b"]
    assert posted_within < 0.1
    assert [items for _, _, items in a_rows] == [[0], [1, 2, 3, 4]]
    gap = a_rows[1][1] - a_rows[0][1]
    assert 0.25 <= gap < 1.0, gap
    # b's first arrival is not throttled by a's activation: it runs at once, alone.
    assert [items for _, _, items in b_rows] == [[0]]
    assert b_rows[0][1] - start < 0.25


# 12 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_12_unhandled_error_fails_only_its_job() -> None:
    downstream = Recorder()

    def up_logic(slot_data, policy_message, worker_state):
        if slot_data["in"][0]["boom"]:
            raise KeyError("kaboom")
        up.emit("out", ok=True)

    up = make_routine(up_logic)
    flow = new_flow("s12")
    flow.add_routine(up, "up")
    flow.add_routine(make_routine(lambda sd, pm, ws: downstream.add(1), events=()), "down")
    flow.connect("up", "out", "down", "in")
    with running(thread_pool_size=2) as rt:
        ws, bad = rt.post(flow.flow_id, "up", "in", {"boom": True})
        assert bad.wait(JOIN_TIMEOUT)
        assert downstream.snapshot() == []
        _, good = rt.post(flow.flow_id, "up", "in", {"boom": False}, worker_id=ws.worker_id)
        finish_all(rt)
        assert bad.status == "failed"
        assert "KeyError" in bad.error and "kaboom" in bad.error
        assert good.status == "completed"
        assert downstream.snapshot() == [1]
        assert ws.jobs_failed == 1
        assert ws.jobs_processed == 2


# 13 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_13_retry_reruns_the_same_call_with_a_fresh_budget_per_activation() -> None:
    calls = Recorder()
    failures: dict[str, int] = {}

    def flaky(slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        job_id = get_current_job_id()
        calls.add((job_id, dict(slot_data), policy_message))
        failures[job_id] = failures.get(job_id, 0) + 1
        if item["mode"] == "twice" and failures[job_id] <= 2:
            raise ConnectionError("flaky")
        if item["mode"] == "value":
            raise ValueError("not retryable")
        if item["mode"] == "always":
            raise ConnectionError("down")

    flow = new_flow("s13")
    r = make_routine(flaky, events=())
    r.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01))
    flow.add_routine(r, "flaky")
    r2 = make_routine(flaky, events=())
    r2.set_error_handler(ErrorHandler("retry", max_retries=3, retry_delay=0.01,
                                      retryable_exceptions=(ConnectionError,)))
    flow.add_routine(r2, "picky")
    with running(thread_pool_size=2) as rt:
        _, j1 = rt.post(flow.flow_id, "flaky", "in", {"mode": "twice"})
        assert j1.wait(JOIN_TIMEOUT)
        _, j2 = rt.post(flow.flow_id, "flaky", "in", {"mode": "twice"})
        _, j3 = rt.post(flow.flow_id, "picky", "in", {"mode": "value"})
        _, j4 = rt.post(flow.flow_id, "picky", "in", {"mode": "always"})
        finish_all(rt)
        by_job: dict[str, list] = {}
        for job_id, data, msg in calls.snapshot():
            by_job.setdefault(job_id, []).append((data, msg))
        assert j1.status == "completed"
        assert len(by_job[j1.job_id]) == 3
        assert all(call == by_job[j1.job_id][0] for call in by_job[j1.job_id])
        assert by_job[j1.job_id][0][0] == {"in": [{"mode": "twice"}]}
        assert j2.status == "completed" and len(by_job[j2.job_id]) == 3
        assert j3.status == "failed" and j3.error.startswith("ValueError")
        assert len(by_job[j3.job_id]) == 1
        assert j4.status == "failed" and j4.error.startswith("ConnectionError")
        assert len(by_job[j4.job_id]) == 4  # the first run and 3 retries


# 14 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_14_continue_skip_and_routine_handler_precedence() -> None:
    after = Recorder()

    def failing(slot_data, policy_message, worker_state):
        raise RuntimeError("broken " + slot_data["in"][0]["who"])

    flow = new_flow("s14")
    flow.set_error_handler(ErrorHandler(ErrorStrategy.STOP))
    cont = make_routine(failing, events=())
    cont.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    skip = make_routine(failing, events=())
    skip.set_error_handler(ErrorHandler(ErrorStrategy.SKIP))
    stop = make_routine(failing, events=())  # the flow's STOP applies
    for rid, r in (("cont", cont), ("skip", skip), ("stop", stop)):
        flow.add_routine(r, rid)
    flow.add_routine(make_routine(lambda sd, pm, ws: after.add(1), events=()), "after")
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        _, jc = rt.post(flow.flow_id, "cont", "in", {"who": "cont"})
        _, js = rt.post(flow.flow_id, "skip", "in", {"who": "skip"})
        _, jt = rt.post(flow.flow_id, "stop", "in", {"who": "stop"})
        finish_all(rt)
        assert jc.status == "completed"
        assert js.status == "completed"
        assert jt.status == "failed" and "broken stop" in jt.error
        history = ws.get_execution_history("cont")
        continued = [rec for rec in history if rec.event_name == "error_continued"]
        assert len(continued) == 1
        assert continued[0].data["error_type"] == "RuntimeError"
        assert ws.routine_states["cont"]["status"] == "error_continued"
        assert ws.routine_states["skip"]["status"] == "skipped"
        assert "broken skip" in ws.routine_states["skip"]["error"]
        assert ws.routine_states["stop"]["status"] == "failed"


# 15 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_15_wait_functions_explicit_complete_and_complete_job_counting() -> None:
    gate = threading.Event()

    def slow(slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        if item.get("gate"):
            assert gate.wait(JOIN_TIMEOUT)
        if item.get("fail"):
            get_current_job().complete("failed", error="x")

    flow = new_flow("s15")
    flow.add_routine(make_routine(slow, events=()), "slow")
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "slow", "in", {"gate": True})
        assert rt.wait_until_all_workers_idle(0.1) is False
        assert rt.wait_until_all_jobs_finished(0.1) is False
        gate.set()
        assert rt.wait_until_all_workers_idle(timeout=2) is True
        assert rt.wait_until_all_jobs_finished(timeout=2) is True
        assert job.status == "completed"

        _, failed = rt.post(flow.flow_id, "slow", "in", {"fail": True})
        finish_all(rt)
        assert failed.status == "failed" and failed.error == "x"

        gate.clear()
        _, held = rt.post(flow.flow_id, "slow", "in", {"gate": True})
        processed = ws.jobs_processed
        completed = rt.statistics().completed
        assert rt.complete_job(held.job_id) is True
        assert rt.complete_job(held.job_id) is False
        assert rt.complete_job("no-such-job") is False
        gate.set()
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        assert ws.jobs_processed == processed + 1
        assert rt.statistics().completed == completed + 1
        assert held.status == "completed"


# 16 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_16_context_helpers_and_set_config_inside_logic() -> None:
    seen = Recorder()

    def logic(slot_data, policy_message, worker_state):
        job = get_current_job()
        try:
            r.set_config(threshold=99)
            raised = None
        except RuntimeError as exc:
            raised = str(exc)
        seen.add((dict(job.metadata), get_current_worker_state(), worker_state, raised))

    r = make_routine(logic, events=())
    flow = new_flow("s16")
    flow.add_routine(r, "r")
    r.set_config(threshold=1)
    with running(thread_pool_size=2) as rt:
        ws, _ = rt.post(flow.flow_id, "r", "in", {}, metadata={"user": "ada"})
        finish_all(rt)
        r.set_config(threshold=2)  # between runs it works
        ((metadata, current_ws, passed_ws, raised),) = seen.snapshot()
        assert metadata == {"user": "ada"}
        assert current_ws is ws and passed_ws is ws
        assert raised is not None and "set_config" in raised
        assert r.get_config("threshold") == 2
        assert get_current_job() is None
        assert get_current_worker_state() is None
        assert get_current_job_id() is None


# 17 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_17_many_workers_share_a_small_pool_and_shutdown_cleans_up() -> None:
    baseline = set(threading.enumerate())
    peak = Recorder()

    def logic(slot_data, policy_message, worker_state):
        peak.add(len(new_threads(baseline)))

    flow = new_flow("s17")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=4) as rt:
        workers = [rt.exec(flow.flow_id) for _ in range(20)]
        jobs = []
        for i in range(200):
            ws = workers[i % 20]
            jobs.append(rt.post(flow.flow_id, "r", "in", {"i": i}, worker_id=ws.worker_id)[1])
            peak.add(len(new_threads(baseline)))
        finish_all(rt)
        assert max(peak.snapshot()) <= 4 + 2
        assert {j.status for j in jobs} == {"completed"}
        rt.shutdown()
        with pytest.raises(RuntimeError, match="shut down"):
            rt.post(flow.flow_id, "r", "in", {})
        assert rt.get_job(jobs[0].job_id) is jobs[0]
        assert rt.get_job(jobs[-1].job_id).status == "completed"
        assert new_threads(baseline) == []


# 18 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_18_registry_paths_and_post_validation_leave_nothing_behind() -> None:
    from routilux.monitoring.flow_registry import FlowRegistry as CompatRegistry

    assert CompatRegistry is routilux.FlowRegistry
    registry = routilux.get_flow_registry()
    name = f"s18-{id(registry):x}-name"
    first, second = new_flow("s18a"), new_flow("s18b")
    first.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "r")
    registry.register_by_name(name, first)
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register_by_name(name, second)
        registry.register_by_name(name, first)  # the same flow again: a no-op
        with running(thread_pool_size=2) as rt:
            rt.post(name, "r", "in", {})
            finish_all(rt)
            jobs, workers = rt.list_jobs(), rt.statistics().workers
            for args, match in (
                (("no-such-flow", "r", "in"), "unknown flow 'no-such-flow'"),
                ((name, "nope", "in"), "no routine 'nope'; routines are: r"),
                ((name, "r", "nope"), "no slot 'nope'; slots are: in"),
            ):
                with pytest.raises(ValueError, match=match):
                    rt.post(*args, {})
                assert rt.list_jobs() == jobs
                assert rt.statistics().workers == workers
    finally:
        registry.unregister_by_name(name)


# 19 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_19_worker_state_save_load_round_trip(tmp_path: Path) -> None:
    def logic(slot_data, policy_message, worker_state):
        worker_state.modify_routine_state("r", lambda s: {"n": s.get("n", 0) + 1})

    flow = new_flow("s19")
    flow.add_routine(make_routine(logic, events=()), "r")
    other = new_flow("s19-other")
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        for _ in range(3):
            rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        path = tmp_path / "nested" / "state.json"
        ws.save(path)
        loaded = WorkerState.load(path)
        assert loaded.worker_id == ws.worker_id
        assert loaded.routine_states == {"r": {"n": 3}}
        assert (loaded.jobs_processed, loaded.jobs_failed) == (3, 0)
        assert loaded.status == ws.status
        assert [(h.routine_id, h.event_name) for h in loaded.execution_history] == [
            (h.routine_id, h.event_name) for h in ws.execution_history
        ]
        assert len(loaded.execution_history) == 3
        with pytest.raises(ValueError, match="belongs to flow"):
            rt.exec(other.flow_id, worker_state=loaded)

    with running(thread_pool_size=2) as rt2:
        resumed = rt2.exec(flow.flow_id, worker_state=loaded)
        assert resumed.worker_id == ws.worker_id
        rt2.post(flow.flow_id, "r", "in", {})
        finish_all(rt2)
        assert resumed.routine_states["r"] == {"n": 4}

    sock = socket.socket()
    try:
        bad = WorkerState(flow.flow_id)
        bad.update_routine_state("conn", {"socket": sock})
        target = tmp_path / "bad" / "state.json"
        with pytest.raises(TypeError, match="'conn'"):
            bad.save(target)
        assert not target.exists()
        assert not target.parent.exists() or list(target.parent.iterdir()) == []
    finally:
        sock.close()


# 20 -----------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_20_execution_timeout_fails_the_job_not_the_worker() -> None:
    def logic(slot_data, policy_message, worker_state):
        if slot_data["in"][0]["slow"]:
            time.sleep(1.0)

    flow = new_flow("s20", execution_timeout=0.3)
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=2) as rt:
        ws, slow = rt.post(flow.flow_id, "r", "in", {"slow": True})
        start = time.monotonic()
        assert slow.wait(JOIN_TIMEOUT)
        waited = time.monotonic() - start
        assert slow.status == "failed"
        assert "timed out" in slow.error
        assert waited < 0.9, waited  # failed at the deadline, not when the logic returned
        elapsed = (slow.completed_at - slow.created_at).total_seconds()
        assert 0.25 <= elapsed < 0.9, elapsed
        _, fast = rt.post(flow.flow_id, "r", "in", {"slow": False}, worker_id=ws.worker_id)
        assert fast.wait(JOIN_TIMEOUT)
        assert fast.status == "completed"
        finish_all(rt)
        assert ws.status != "failed"
