"""Dask distributed executor (#8): logic as Dask tasks, routing and jobs stay local.

One ``LocalCluster`` (2 worker processes, 1 thread each, loopback) serves the module. What
must hold: emits made remotely are routed when the result returns; ``get_current_job()``
there gives the job's id, metadata and data as of dispatch; writes to worker state stay
remote; the remote start/end come back and show as one trace lane per Dask worker thread;
a worker killed mid-job makes the job retry elsewhere or fail clearly, never hang.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running

from routilux import Routine, get_current_job, get_current_worker_state

distributed = pytest.importorskip("distributed")

from routilux.executors import DaskExecutor  # noqa: E402

try:  # the functions below travel by value, as a notebook's would
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover - distributed depends on cloudpickle
    pass

CLUSTER_TIMEOUT = 30  # seconds for workers to (re)join


@pytest.fixture(scope="module")
def client():
    import dask

    # One reschedule after a worker dies, then KilledWorker: keeps the kill tests short.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
            host="127.0.0.1",
        )
    c = distributed.Client(cluster)
    try:
        c.wait_for_workers(2, timeout=CLUSTER_TIMEOUT)
        yield c
    finally:
        c.close()
        cluster.close()


# -- remote logic (module level: pickled by value) --------------------------------------
def square(slot_data, policy_message, worker_state):
    job = get_current_job()
    x = slot_data["in"][0]["x"]
    job.set_data("remote_pid", os.getpid())
    worker_state.update_routine_state("remote", {"written": True})  # stays remote
    get_current_worker_state().worker_id  # noqa: B018 - reachable remotely
    SQUARE.emit("out", y=x * x, job=job.job_id, meta=dict(job.metadata),
                before=job.get_data("before"), pid=os.getpid())


SQUARE = make_routine(square)


def nap(slot_data, policy_message, worker_state):
    time.sleep(0.05)


def boom(slot_data, policy_message, worker_state):
    raise ValueError("remote boom")


def die_once(slot_data, policy_message, worker_state):
    marker = Path(slot_data["in"][0]["marker"])
    if not marker.exists():
        marker.write_text("killed\n")  # the signal: this attempt is the one that dies
        os._exit(1)
    get_current_job().set_data("survived_on", os.getpid())


def die_always(slot_data, policy_message, worker_state):
    with Path(slot_data["in"][0]["marker"]).open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    os._exit(1)


def _sink(got: Recorder) -> Routine:
    return make_routine(lambda sd, pm, ws: got.add((sd["in"][0], get_current_job().job_id)),
                        events=()).set_executor("threads")


@pytest.mark.timeout(60)
def test_emits_and_job_context_travel(client) -> None:
    got = Recorder()
    flow = new_flow("dask-emit")
    first = make_routine(None).set_executor("threads")

    def stage_one(slot_data, policy_message, worker_state):
        get_current_job().set_data("before", "set locally")
        first.emit("out", **slot_data["in"][0])

    first.set_logic(stage_one)
    flow.add_routine(first, "first")
    flow.add_routine(SQUARE, "sq")
    flow.add_routine(_sink(got), "sink")
    flow.connect("first", "out", "sq", "in")
    flow.connect("sq", "out", "sink", "in")
    with running(thread_pool_size=2, executor=DaskExecutor(client)) as rt:
        jobs = {}
        for i in range(10):
            ws, job = rt.post(flow.flow_id, "first", "in", {"x": i}, metadata={"i": i})
            jobs[job.job_id] = (i, job)
        finish_all(rt)
        items = got.wait_for(10)
    assert {j.status for _, j in jobs.values()} == {"completed"}
    for item, job_id in items:
        i, job = jobs[job_id]
        assert item["job"] == job_id and item["y"] == i * i and item["meta"] == {"i": i}
        assert item["before"] == "set locally" and item["pid"] != os.getpid()
        assert job.get_data("remote_pid") == item["pid"]
    assert ws.get_routine_state("remote") is None  # worker state writes stay remote


@pytest.mark.timeout(60)
def test_one_trace_lane_per_dask_worker(client) -> None:
    addresses = sorted(client.scheduler_info()["workers"])
    assert len(addresses) == 2
    flow = new_flow("dask-lanes")
    for n, address in enumerate(addresses):  # pin one routine to each worker
        flow.add_routine(make_routine(nap, events=()).set_executor(
            DaskExecutor(client, workers=[address])), f"r{n}")
    with running(thread_pool_size=2, trace=True) as rt:
        for _ in range(3):
            rt.post(flow.flow_id, "r0", "in", {})
            rt.post(flow.flow_id, "r1", "in", {})
        finish_all(rt)
        events = rt.tracer.read()
        chrome = rt.tracer.to_chrome_trace()
    started = [e for e in events if e.kind == "task.started"]
    finished = [e for e in events if e.kind == "task.finished"]
    for n, address in enumerate(addresses):
        names = {e.thread_name for e in started if e.routine == f"r{n}"}
        assert names == {f"Dask {address.removeprefix('tcp://')}/1"}
        assert {e.detail["address"] for e in started if e.routine == f"r{n}"} == {address}
    assert len({e.thread_name for e in started}) == 2
    assert len(finished) == 6 and min(e.value for e in finished) >= 0.045  # remote run time
    tracks = {e["args"]["name"] for e in chrome["traceEvents"] if e["name"] == "thread_name"}
    assert sum(name.startswith("Dask 127.0.0.1:") for name in tracks) == 2
    slices = [e for e in chrome["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "task"]
    assert len(slices) == 6 and min(s["dur"] for s in slices) >= 45_000  # microseconds


@pytest.mark.timeout(60)
def test_remote_error_follows_stop(client) -> None:
    flow = new_flow("dask-stop")
    flow.add_routine(make_routine(boom, events=()).set_executor(DaskExecutor(client)), "b")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "b", "in", {})
        finish_all(rt)
    assert job.status == "failed" and job.error == "ValueError: remote boom"


@pytest.mark.timeout(60)
def test_worker_killed_mid_job_is_rescheduled(client, tmp_path: Path) -> None:
    flow = new_flow("dask-kill-once")
    flow.add_routine(make_routine(die_once, events=()).set_executor(DaskExecutor(client)), "k")
    marker = tmp_path / "killed-once"
    try:
        with running(thread_pool_size=1) as rt:
            _, job = rt.post(flow.flow_id, "k", "in", {"marker": str(marker)})
            assert job.wait(JOIN_TIMEOUT), "a job whose worker died must not hang"
        assert marker.exists()  # the first attempt really died
        assert job.status == "completed", job.error
        assert job.get_data("survived_on") is not None
    finally:
        client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT)


@pytest.mark.timeout(60)
def test_worker_killed_every_time_fails_the_job_clearly(client, tmp_path: Path) -> None:
    flow = new_flow("dask-kill-always")
    flow.add_routine(make_routine(die_always, events=()).set_executor(DaskExecutor(client)),
                     "k")
    marker = tmp_path / "deaths"
    try:
        with running(thread_pool_size=1) as rt:
            _, job = rt.post(flow.flow_id, "k", "in", {"marker": str(marker)})
            assert job.wait(JOIN_TIMEOUT), "a job whose workers keep dying must not hang"
        assert job.status == "failed"
        assert job.error.startswith(
            "WorkerDiedError: routine 'k': the Dask worker(s) running it died")
        assert "KilledWorker" in job.error
        assert len(marker.read_text().splitlines()) == 2  # allowed-failures=1: two deaths
    finally:
        client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT)


@pytest.mark.timeout(60)
def test_a_routine_can_opt_back_into_threads(client) -> None:
    got = Recorder()
    flow = new_flow("dask-optout")
    flow.add_routine(make_routine(lambda sd, pm, ws: got.add(os.getpid()), events=())
                     .set_executor("threads"), "local")
    flow.add_routine(make_routine(nap, events=()), "remote")
    with running(thread_pool_size=1, executor=DaskExecutor(client), trace=True) as rt:
        rt.post(flow.flow_id, "local", "in", {})
        rt.post(flow.flow_id, "remote", "in", {})
        finish_all(rt)
        names = {e.routine: e.thread_name for e in rt.tracer.read() if e.kind == "task.started"}
    assert got.wait_for(1) == [os.getpid()]
    assert names["local"].startswith("RoutiluxThread") and names["remote"].startswith("Dask ")


def sleep_a_second(slot_data, policy_message, worker_state):
    time.sleep(1.0)


@pytest.mark.timeout(60)
def test_cancelled_tasks_fail_their_jobs_and_the_client_stays_open(client) -> None:
    ex = DaskExecutor(client)
    flow = new_flow("dask-cancel")
    flow.add_routine(make_routine(sleep_a_second, events=()).set_executor(ex), "s")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "s", "in", {})
        deadline = time.monotonic() + JOIN_TIMEOUT
        while ex.pending == 0:  # the pool thread hands the task to Dask asynchronously
            assert time.monotonic() < deadline, "the task never reached the cluster"
            time.sleep(0.005)
        ex.shutdown(wait=False)
        assert job.wait(JOIN_TIMEOUT), "a cancelled Dask task must not leave its job hanging"
        assert job.status == "failed"
        assert job.error.startswith("CancelledError: routine 's': its Dask task was cancelled")
        _, later = rt.post(flow.flow_id, "s", "in", {})
        finish_all(rt)
        assert later.status == "failed" and "after shutdown" in later.error
    assert client.submit(abs, -3, pure=False).result(timeout=JOIN_TIMEOUT) == 3
