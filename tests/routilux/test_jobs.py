"""Jobs: ids, the bound on finished jobs kept, explicit completion, shutdown, the shared pool."""

from __future__ import annotations

import random
import threading

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running, wait_until

import routilux
from routilux import JobContext, Runtime


def _trivial_flow():
    flow = new_flow("jobs")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "r")
    return flow


@pytest.mark.timeout(30)
def test_job_ids_stay_unique_when_user_code_seeds_random() -> None:
    # Regression: ids came from the global ``random``, so a user's random.seed(0) before
    # two posts made the second raise "job_id ... is already in use".
    flow = _trivial_flow()
    with running(thread_pool_size=2) as rt:
        random.seed(0)
        _, first = rt.post(flow.flow_id, "r", "in", {})
        random.seed(0)
        _, second = rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
        assert first.job_id != second.job_id
        assert {first.status, second.status} == {"completed"}


@pytest.mark.timeout(30)
def test_given_job_id_and_metadata_copy() -> None:
    flow = _trivial_flow()
    meta = {"user": "ada"}
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "r", "in", {}, job_id="job-1", metadata=meta)
        meta["user"] = "bob"
        finish_all(rt)
        assert job.job_id == "job-1" and rt.get_job("job-1") is job
        assert job.metadata == {"user": "ada"}
        assert job.worker_id == ws.worker_id and job.flow_id == flow.flow_id
        assert job.completed_at is not None and job.completed_at >= job.created_at
        assert rt.list_jobs(status="completed") == [job]
        assert rt.list_jobs(status="failed") == []
        assert rt.list_jobs(worker_id=ws.worker_id) == [job]
        assert rt.list_jobs(flow_name=flow.flow_id) == [job]


@pytest.mark.timeout(30)
def test_post_copies_the_data_dict() -> None:
    got = Recorder()
    flow = new_flow("jobs-copy")
    flow.add_routine(make_routine(lambda sd, pm, ws: got.add(sd["in"][0]), events=()), "r")
    data = {"k": 1}
    with running(thread_pool_size=1) as rt:
        rt.post(flow.flow_id, "r", "in", data)
        finish_all(rt)
    (item,) = got.snapshot()
    assert item == {"k": 1} and item is not data


@pytest.mark.timeout(120)
def test_finished_jobs_kept_are_bounded() -> None:
    flow = _trivial_flow()
    with running(thread_pool_size=4) as rt:
        first = None
        last = None
        for i in range(10_500):
            _, last = rt.post(flow.flow_id, "r", "in", {})
            if first is None:
                first = last
        finish_all(rt, timeout=120)
        jobs = rt.list_jobs()
        assert len(jobs) <= 10_000
        assert len(jobs) == 10_000  # all finished, so exactly the cap
        assert rt.get_job(first.job_id) is None  # the oldest were evicted
        assert rt.get_job(last.job_id) is last
        assert rt.statistics().completed == 10_500


@pytest.mark.timeout(60)
def test_running_jobs_are_never_evicted() -> None:
    gate = threading.Event()

    def logic(slot_data, policy_message, worker_state):
        if slot_data["in"][0].get("hold"):
            assert gate.wait(JOIN_TIMEOUT)

    flow = new_flow("jobs-hold")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=2) as rt:
        _, held = rt.post(flow.flow_id, "r", "in", {"hold": True})
        for _ in range(10_050):
            rt.post(flow.flow_id, "r", "in", {})
        # Everything but the held job can finish while it runs.
        wait_until(lambda: rt.statistics().running == 1, timeout=60,
                   what="all but the held job finished")
        jobs = rt.list_jobs()
        assert held in jobs
        assert len(jobs) == 10_001  # 10,000 finished + 1 running
        gate.set()
        finish_all(rt)


@pytest.mark.timeout(30)
def test_job_context_outside_a_runtime() -> None:
    job = JobContext()
    assert job.status == "pending"
    job.start()
    assert job.status == "running"
    job.set_data("k", 1)
    assert job.get_data("k") == 1 and job.get_data("missing", 0) == 0
    job.trace("r", "step", {"a": 1})
    assert job.trace_log[0]["routine_id"] == "r" and job.trace_log[0]["details"] == {"a": 1}
    with pytest.raises(ValueError, match="cannot complete job .* with status 'running'"):
        job.complete("running")
    assert job.complete("failed", error="x") is True
    assert job.complete("completed") is False
    assert (job.status, job.error) == ("failed", "x")
    assert job.wait(0) is True
    d = job.to_dict()
    assert d["status"] == "failed" and d["data"] == {"k": 1}


@pytest.mark.timeout(30)
def test_shutdown_with_wait_drains_and_is_idempotent() -> None:
    ran = Recorder()
    flow = new_flow("jobs-drain")
    flow.add_routine(make_routine(lambda sd, pm, ws: ran.add(1), events=()), "r")
    rt = Runtime(thread_pool_size=2)
    ws = rt.exec(flow.flow_id)
    jobs = [rt.post(flow.flow_id, "r", "in", {})[1] for _ in range(50)]
    rt.shutdown(wait=True)
    rt.shutdown(wait=True)  # idempotent
    assert rt.is_shut_down
    assert {j.status for j in jobs} == {"completed"}
    assert len(ran) == 50
    assert ws.status == "completed"
    assert rt.list_jobs() == jobs


@pytest.mark.timeout(30)
def test_shutdown_without_wait_cancels_every_unfinished_job() -> None:
    gate = threading.Event()
    started = threading.Event()
    ran = Recorder()

    def logic(slot_data, policy_message, worker_state):
        started.set()
        ran.add(slot_data["in"][0]["i"])
        assert gate.wait(JOIN_TIMEOUT)

    flow = new_flow("jobs-cancel")
    flow.add_routine(make_routine(logic, events=()), "r")
    rt = Runtime(thread_pool_size=1)
    ws = rt.exec(flow.flow_id)
    jobs = [rt.post(flow.flow_id, "r", "in", {"i": i})[1] for i in range(5)]
    assert started.wait(JOIN_TIMEOUT)
    stopper = threading.Thread(target=rt.shutdown, kwargs={"wait": False})
    stopper.start()
    # Jobs are cancelled before the pool is joined, so they are final while the logic runs.
    for job in jobs:
        assert job.wait(JOIN_TIMEOUT)
    assert [j.status for j in jobs] == ["cancelled"] * 5
    gate.set()
    stopper.join(JOIN_TIMEOUT)
    assert not stopper.is_alive()
    assert ran.snapshot() == [0]  # the queued four never ran
    assert ws.status == "cancelled"
    assert rt.statistics().cancelled == 5


@pytest.mark.timeout(30)
def test_context_manager_shuts_down_and_never_swallows() -> None:
    flow = _trivial_flow()
    with pytest.raises(KeyError), Runtime(thread_pool_size=1) as rt:
        rt.post(flow.flow_id, "r", "in", {})
        raise KeyError("boom")
    assert rt.is_shut_down
    assert {j.status for j in rt.list_jobs()} == {"completed"}


@pytest.mark.timeout(60)
def test_shared_pool_runtimes() -> None:
    threads = Recorder()
    flow = new_flow("jobs-shared")
    flow.add_routine(make_routine(lambda sd, pm, ws: threads.add(threading.current_thread().name),
                                  events=()), "r")
    try:
        a = Runtime(thread_pool_size=0)
        b = Runtime(thread_pool_size=0)
        assert a.thread_pool is None and a.thread_pool_size == 0
        for rt in (a, b):
            for _ in range(10):
                rt.post(flow.flow_id, "r", "in", {})
        finish_all(a)
        finish_all(b)
        a.shutdown()
        # b keeps working on the shared pool after a shut down.
        _, job = b.post(flow.flow_id, "r", "in", {})
        assert job.wait(JOIN_TIMEOUT) and job.status == "completed"
        b.shutdown()
        assert len(threads) == 21
        assert all(name.startswith("RoutiluxThread") for name in threads.snapshot())
        assert routilux.get_worker_manager().max_workers == 100
    finally:
        routilux.reset_worker_manager()


@pytest.mark.timeout(60)
def test_idle_is_never_reported_while_downstream_work_is_pending() -> None:
    done = Recorder()

    def stage(name: str, last: bool):
        def logic(slot_data, policy_message, worker_state):
            if last:
                done.add(slot_data["in"][0]["n"])
            else:
                routines[name].emit("out", **slot_data["in"][0])

        return logic

    routines = {}
    flow = new_flow("jobs-idle")
    for name, last in (("a", False), ("b", False), ("c", True)):
        routines[name] = make_routine(stage(name, last))
        flow.add_routine(routines[name], name)
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "c", "in")
    with running(thread_pool_size=3) as rt:
        for rounds in range(5):
            for n in range(200):
                rt.post(flow.flow_id, "a", "in", {"n": n})
            assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
            assert len(done) == 200 * (rounds + 1)  # nothing was still queued or running
            assert rt.statistics().running == 0


@pytest.mark.timeout(60)
def test_posts_racing_shutdown_all_end_terminal() -> None:
    """Every job a racing post registered is terminal after shutdown; later posts raise."""
    flow = _trivial_flow()
    for _ in range(10):
        rt = Runtime(thread_pool_size=2)
        start = threading.Barrier(4)
        refused: list[BaseException] = []
        unexpected: list[BaseException] = []

        def poster(rt=rt, start=start, refused=refused, unexpected=unexpected) -> None:
            start.wait(JOIN_TIMEOUT)
            try:
                while True:
                    rt.post(flow.flow_id, "r", "in", {})
            except RuntimeError as exc:
                refused.append(exc)
            except BaseException as exc:  # noqa: BLE001 - reported below
                unexpected.append(exc)

        posters = [threading.Thread(target=poster) for _ in range(3)]
        for t in posters:
            t.start()
        start.wait(JOIN_TIMEOUT)
        rt.shutdown(wait=True, timeout=JOIN_TIMEOUT)
        for t in posters:
            t.join(JOIN_TIMEOUT)
        assert not any(t.is_alive() for t in posters)
        assert unexpected == []
        assert len(refused) == 3
        stuck = [j for j in rt.list_jobs() if j.status not in ("completed", "cancelled")]
        assert stuck == [], f"{len(stuck)} jobs never finished: {stuck[:3]}"
        assert rt.statistics().running == 0


@pytest.mark.timeout(60)
def test_a_done_callback_may_wait_for_work_queued_behind_its_job() -> None:
    """A pool thread that finishes a job runs its done-callbacks before it takes more work:
    a callback waiting for a queued job must not hold that job's task on its own thread
    while another thread is free to run it (the hot path once took the next task in the
    same step as the finish, and this wait timed out)."""
    gates = {"a": threading.Event(), "c": threading.Event()}

    def logic(sd: dict, pm: object, ws: object) -> None:
        gate = gates.get(sd["in"][0]["gate"])
        if gate is not None:
            assert gate.wait(JOIN_TIMEOUT)

    flow = new_flow("cbwait")
    flow.add_routine(make_routine(logic, events=()), "r")
    seen: list[object] = []
    called = threading.Event()
    with running(thread_pool_size=2) as rt:
        _, job_c = rt.post(flow.flow_id, "r", "in", {"gate": "c"})  # holds one thread
        _, job_a = rt.post(flow.flow_id, "r", "in", {"gate": "a"})  # holds the other
        _, job_b = rt.post(flow.flow_id, "r", "in", {"gate": None})  # queued behind both

        def wait_for_b(job: JobContext) -> None:
            gates["c"].set()  # frees the other thread, which can run b
            job_b.wait(timeout=10.0)
            seen.append(job_b.status)
            called.set()

        job_a.add_done_callback(wait_for_b)  # a is held at its gate: runs in a's finish
        gates["a"].set()
        assert called.wait(JOIN_TIMEOUT)
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
    assert seen == ["completed"], seen


@pytest.mark.timeout(30)
def test_a_raising_done_callback_is_logged_and_the_job_still_finishes(caplog) -> None:
    """Review bug (issue 15): a done-callback that raised aborted the runtime's finish step,
    so the job read completed while statistics().running stayed 1 and waits never ended."""
    release = threading.Event()
    flow = new_flow("cb")
    flow.add_routine(
        make_routine(lambda sd, pm, ws: release.wait(JOIN_TIMEOUT), events=()), "r")
    ran: list[str] = []
    second_ran = threading.Event()  # callbacks run after the job's gate opens: wait for it

    def bad(job: JobContext) -> None:
        raise RuntimeError("callback boom")

    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "r", "in", {"x": 1})
        job.add_done_callback(bad)  # the logic is held: both run in the finish step
        job.add_done_callback(lambda j: (ran.append(j.status), second_ran.set()))
        release.set()
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        assert second_ran.wait(JOIN_TIMEOUT)  # the raising one did not stop the next
        assert job.status == "completed" and ran == ["completed"]
        assert rt.statistics().running == 0
        job.add_done_callback(bad)  # already terminal: runs at once, in this thread, logged
    assert sum("callback" in r.getMessage() and r.exc_info is not None
               for r in caplog.records) == 2


@pytest.mark.timeout(30)
def test_job_context_init_keeps_the_dataclass_defaults() -> None:
    # JobContext's __init__ is hand-written (it runs once per post); it must behave as the
    # generated one: a factory default only when the argument is left out, fresh
    # containers per job, the dataclass's fields and a subclass's __post_init__ called.
    import dataclasses
    import uuid

    a, b = JobContext(), JobContext(job_id="given", created_at=None, metadata=None)
    assert uuid.UUID(a.job_id).version == 4 and a.created_at is not None
    assert (b.job_id, b.created_at, b.metadata) == ("given", None, None)
    assert a.data is not JobContext().data and a.trace_log is not JobContext().trace_log
    assert (a.metadata, a.data, a.trace_log, a.status, a.error) == ({}, {}, [], "pending", None)
    assert [f.name for f in dataclasses.fields(JobContext)] == [
        "job_id", "worker_id", "flow_id", "created_at", "completed_at", "metadata", "data",
        "trace_log", "status", "error"]
    assert dataclasses.asdict(JobContext(job_id="x", worker_id="w"))["worker_id"] == "w"

    class Marked(JobContext):
        def __post_init__(self) -> None:
            super().__post_init__()
            self.marked = True

    assert Marked(job_id="m").marked is True
