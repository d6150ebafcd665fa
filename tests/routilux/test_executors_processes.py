"""Process-pool logic (#8): ``routine.set_executor("processes")``.

What must hold: the logic runs in another process; its emits are routed when its result
returns, under its job; ``get_current_job()`` there gives the job's id, metadata and data
as of dispatch, and data it sets comes back; unpicklable data fails that job with a
message naming the routine and the field; errors follow the routine's strategy; a child
that dies fails its job clearly and the pool recovers; the pool closes at shutdown.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Routine,
    RoutiluxError,
    get_current_job,
    immediate_policy,
)
from routilux.executors import ProcessExecutor

try:  # the functions below travel by value, as a notebook's would
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover - cloudpickle ships with the dev extras (dask)
    pass


# -- logic run in the children (module level: they are pickled) -------------------------
class Scale(Routine):
    """Emits x * factor, and what the child saw of its job."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out")
        self.set_activation_policy(immediate_policy())
        self.factor = 3  # an instance attribute the child reads from its copy

    def logic(self, slot_data, policy_message, worker_state):
        job = get_current_job()
        x = slot_data["in"][0]["x"]
        job.set_data("child_pid", os.getpid())
        self.emit("out", y=x * self.factor, job=job.job_id, meta=dict(job.metadata),
                  data_before=job.get_data("before"), pid=os.getpid(),
                  config=self.get_config("label"), worker=worker_state.worker_id)


def fail_logic(slot_data, policy_message, worker_state):
    raise ValueError(f"bad x={slot_data['in'][0]['x']}")


def flaky_logic(slot_data, policy_message, worker_state):
    # Fails until its third run; runs share nothing but the file system.
    marker = Path(slot_data["in"][0]["path"])
    with marker.open("a") as fh:
        fh.write("run\n")
    if len(marker.read_text().splitlines()) < 3:
        raise ConnectionError("flaky")
    get_current_job().set_data("runs", len(marker.read_text().splitlines()))


def die_logic(slot_data, policy_message, worker_state):
    os._exit(3)


def die_once_logic(slot_data, policy_message, worker_state):
    # Kills its child on the first run only; runs share nothing but the file system.
    marker = Path(slot_data["in"][0]["path"])
    if not marker.exists():
        marker.write_text("died\n")
        os._exit(3)
    get_current_job().set_data("survived", True)


async def async_logic(slot_data, policy_message, worker_state):
    import asyncio

    await asyncio.sleep(0)
    get_current_job().set_data("pid", os.getpid())


def _sink(got: Recorder) -> Routine:
    return make_routine(lambda sd, pm, ws: got.add((sd["in"][0], get_current_job().job_id)),
                        events=())


def _flow_into_sink(entry: Routine, got: Recorder, prefix: str):
    flow = new_flow(prefix)
    flow.add_routine(entry, "a")
    flow.add_routine(_sink(got), "sink")
    flow.connect("a", "out", "sink", "in")
    return flow


@pytest.mark.timeout(60)
def test_logic_runs_in_a_child_and_its_emits_are_routed_under_its_job() -> None:
    got = Recorder()
    scale = Scale().set_executor("processes")
    scale.set_config(label="cfg")
    flow = _flow_into_sink(scale, got, "proc-emit")
    with running(thread_pool_size=2) as rt:
        jobs = {}
        for i in range(20):
            _, job = rt.post(flow.flow_id, "a", "in", {"x": i}, metadata={"i": i})
            jobs[job.job_id] = (i, job)
        finish_all(rt)
        items = got.wait_for(20)
    assert {job.status for _, job in jobs.values()} == {"completed"}
    for item, job_id in items:
        i, job = jobs[job_id]
        assert item["job"] == job_id  # routed under the job that emitted it
        assert item["y"] == i * 3 and item["meta"] == {"i": i} and item["config"] == "cfg"
        assert item["pid"] != os.getpid() and item["worker"] == job.worker_id
        assert job.get_data("child_pid") == item["pid"]  # set_data came back


@pytest.mark.timeout(60)
def test_job_data_is_as_of_dispatch() -> None:
    got = Recorder()
    flow = new_flow("proc-data")

    def stage_one(slot_data, policy_message, worker_state):
        get_current_job().set_data("before", 42)  # set on a pool thread, before dispatch
        first.emit("out", **slot_data["in"][0])

    first = make_routine(stage_one)
    flow.add_routine(first, "first")
    flow.add_routine(Scale().set_executor("processes"), "a")
    flow.add_routine(_sink(got), "sink")
    flow.connect("first", "out", "a", "in")
    flow.connect("a", "out", "sink", "in")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "first", "in", {"x": 2})
        finish_all(rt)
        (item, _), = got.wait_for(1)
    assert item["data_before"] == 42 and item["y"] == 6


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("data", "config", "expected"),
    [
        ({"x": 1, "conn": threading.Lock()}, {}, "slot 'in' item 0 key 'conn'"),
        ({"x": 1}, {"db": threading.Lock()}, "routine config key 'db'"),
    ],
)
def test_unpicklable_data_fails_the_job_naming_routine_and_field(data, config, expected) -> None:
    got = Recorder()
    scale = Scale().set_executor("processes")
    scale.set_config(**config)
    flow = _flow_into_sink(scale, got, "proc-pickle")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", data)
        finish_all(rt)
    assert job.status == "failed"
    assert job.error.startswith("TypeError: routine 'a' cannot run on ProcessExecutor: ")
    assert expected in job.error and "not picklable" in job.error
    assert len(got) == 0


@pytest.mark.timeout(60)
def test_unpicklable_closure_variable_is_named() -> None:
    lock = threading.Lock()

    def logic(slot_data, policy_message, worker_state):
        with lock:
            pass

    flow = new_flow("proc-closure")
    flow.add_routine(make_routine(logic, events=()).set_executor("processes"), "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        finish_all(rt)
    assert job.status == "failed"
    assert "the logic's closure variable 'lock'" in job.error


@pytest.mark.timeout(60)
def test_child_error_follows_stop() -> None:
    flow = new_flow("proc-stop")
    flow.add_routine(make_routine(fail_logic, events=()).set_executor("processes"), "a")
    with running(thread_pool_size=1) as rt:
        ws, job = rt.post(flow.flow_id, "a", "in", {"x": 7})
        finish_all(rt)
    assert job.status == "failed" and job.error == "ValueError: bad x=7"
    assert ws.get_routine_state("a")["status"] == "failed"


@pytest.mark.timeout(60)
def test_child_error_retries_with_the_same_data(tmp_path: Path) -> None:
    flow = new_flow("proc-retry")
    routine = make_routine(flaky_logic, events=()).set_executor("processes")
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01))
    flow.add_routine(routine, "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {"path": str(tmp_path / "runs.txt")})
        finish_all(rt)
    assert job.status == "completed"
    assert job.get_data("runs") == 3


@pytest.mark.timeout(60)
def test_a_dying_child_fails_its_job_clearly_and_the_pool_recovers() -> None:
    got = Recorder()
    flow = new_flow("proc-die")
    flow.add_routine(make_routine(die_logic, events=()).set_executor("processes"), "die")
    flow.add_routine(Scale().set_executor("processes"), "a")
    flow.add_routine(_sink(got), "sink")
    flow.connect("a", "out", "sink", "in")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "die", "in", {})
        assert job.wait(JOIN_TIMEOUT)
        assert job.status == "failed"
        assert job.error.startswith("WorkerDiedError: routine 'die': the worker process")
        _, later = rt.post(flow.flow_id, "a", "in", {"x": 5})
        finish_all(rt)
        assert later.status == "completed" and got.wait_for(1)[0][0]["y"] == 15


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caught", [RoutiluxError, RuntimeError])
def test_a_dead_child_is_retried_by_a_handler_that_retries_routilux_errors(
        tmp_path: Path, caught: type) -> None:
    # The retry happens only if the handler's retryable_exceptions match WorkerDiedError:
    # a RoutiluxError (issue 15), and still a RuntimeError (its base before).
    flow = new_flow(f"proc-die-once-{caught.__name__}")
    routine = make_routine(die_once_logic, events=()).set_executor("processes")
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.0,
                                           retryable_exceptions=(caught,)))
    flow.add_routine(routine, "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {"path": str(tmp_path / "died.txt")})
        finish_all(rt)
    assert (tmp_path / "died.txt").exists()  # the first run did kill its child
    assert job.status == "completed", job.error
    assert job.get_data("survived") is True


@pytest.mark.timeout(60)
def test_async_logic_runs_in_the_child_too() -> None:
    flow = new_flow("proc-async")
    flow.add_routine(make_routine(async_logic, events=()).set_executor("processes"), "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        finish_all(rt)
    assert job.status == "completed" and job.get_data("pid") not in (None, os.getpid())


@pytest.mark.timeout(60)
def test_trace_shows_a_lane_per_child_process() -> None:
    flow = new_flow("proc-trace")
    flow.add_routine(Scale().set_executor("processes"), "a")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "sink")
    flow.connect("a", "out", "sink", "in")
    with running(thread_pool_size=2, trace=True) as rt:
        jobs = [rt.post(flow.flow_id, "a", "in", {"x": i})[1] for i in range(6)]
        finish_all(rt)
        events = rt.tracer.read()
    pids = {j.get_data("child_pid") for j in jobs}
    started = [e for e in events if e.kind == "task.started" and e.routine == "a"]
    finished = [e for e in events if e.kind == "task.finished" and e.routine == "a"]
    assert len(started) == len(finished) == 6
    assert {e.thread_name for e in started} == {f"RoutiluxProcess-{p}" for p in pids}
    assert all(e.detail["executor"] == "processes" for e in started)
    for s in started:  # each remote slice lies within the run, in this process's clock
        f = next(e for e in finished if e.job_id == s.job_id)
        assert f.ts_ns >= s.ts_ns and f.thread == s.thread


@pytest.mark.timeout(60)
def test_pool_is_lazy_and_closed_at_shutdown() -> None:
    flow = new_flow("proc-life")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "sync")
    flow.add_routine(make_routine(fail_logic, events=()).set_executor("processes"), "p")
    with running(thread_pool_size=1) as rt:
        rt.post(flow.flow_id, "sync", "in", {})
        finish_all(rt)
        ex = rt._executors.owned.get("processes")
        assert ex is None or ex._pool is None  # nothing started for sync work
        rt.post(flow.flow_id, "p", "in", {"x": 0})
        finish_all(rt)
        ex = rt._executors.owned["processes"]
        assert isinstance(ex, ProcessExecutor) and ex.max_workers == (os.cpu_count() or 1)
        pool = ex._pool
        children = list(pool._processes.values())
        assert children and all(p.is_alive() for p in children)
    for p in children:
        p.join(JOIN_TIMEOUT)
    assert not any(p.is_alive() for p in children)
    assert ex._pool is None


@pytest.mark.timeout(60)
def test_a_process_pool_you_pass_stays_yours() -> None:
    got = Recorder()
    with ProcessPoolExecutor(1) as pool:
        flow = _flow_into_sink(Scale().set_executor(pool), got, "proc-yours")
        with running(thread_pool_size=1) as rt:
            rt.post(flow.flow_id, "a", "in", {"x": 1})
            finish_all(rt)
        assert got.wait_for(1)[0][0]["y"] == 3
        assert pool.submit(abs, -2).result(JOIN_TIMEOUT) == 2  # not shut down by the runtime


# -- issue 13: a dying child fails only what it held; children never block exit ----------
def maybe_die_logic(slot_data, policy_message, worker_state):
    import time as _time

    item = slot_data["in"][0]
    if item.get("die"):
        # Die only once the other child is busy too, so the break hits work in flight.
        deadline = _time.monotonic() + 10
        while not Path(item["busy"]).exists() and _time.monotonic() < deadline:
            _time.sleep(0.01)
        os._exit(3)
    Path(item["busy"]).touch()
    _time.sleep(0.3)
    get_current_job().set_data("ran_in", os.getpid())


@pytest.mark.timeout(120)
def test_a_dying_child_fails_only_the_activation_it_held(tmp_path: Path) -> None:
    """6 jobs on 2 children, one logic calls os._exit: 1 job fails, 5 complete (was 6/6)."""
    busy = str(tmp_path / "busy")
    flow = new_flow("proc-die-one")
    ex = ProcessExecutor(max_workers=2)
    flow.add_routine(make_routine(maybe_die_logic, events=()).set_executor(ex), "r")
    try:
        with running(thread_pool_size=4) as rt:
            jobs = [rt.post(flow.flow_id, "r", "in", {"die": i == 0, "busy": busy})[1]
                    for i in range(6)]
            finish_all(rt, timeout=90)
            statuses = {j.job_id: j.status for j in jobs}
            assert jobs[0].status == "failed", statuses
            assert jobs[0].error.startswith("WorkerDiedError"), jobs[0].error
            assert [j.status for j in jobs[1:]] == ["completed"] * 5, statuses
            assert all(j.get_data("ran_in") for j in jobs[1:])
    finally:
        ex.shutdown()


EXIT_SCRIPT = """
import os, sys, time
from pathlib import Path
from routilux import Flow, Routine, Runtime, immediate_policy

def slow(slot_data, policy_message, worker_state):
    Path(slot_data["in"][0]["flag"]).touch()
    time.sleep(120)

def main():
    r = Routine()
    r.add_slot("in")
    r.set_logic(slow)
    r.set_activation_policy(immediate_policy())
    r.set_executor("processes")
    flow = Flow("exit-proc")
    flow.add_routine(r, "r")
    rt = Runtime(thread_pool_size=2)
    rt.post("exit-proc", "r", "in", {"flag": sys.argv[1]})
    deadline = time.monotonic() + 60
    while not Path(sys.argv[1]).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    print("running" if Path(sys.argv[1]).exists() else "never started", flush=True)
    if sys.argv[2] == "wait":
        rt.wait_until_all_jobs_finished()
    globals()["rt"] = rt  # alive until the interpreter exits: no shutdown, no collection


if __name__ == "__main__":  # children (forkserver) import this module
    main()  # the script ends without shutdown
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["script ends", "ctrl-c in a wait"])
def test_running_remote_logic_never_blocks_interpreter_exit(tmp_path: Path, how: str) -> None:
    import signal
    import subprocess
    import time

    script = tmp_path / "exit_script.py"
    script.write_text(EXIT_SCRIPT)
    flag = tmp_path / "started"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(flag), "wait" if how != "script ends" else "end"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running", proc.stderr
        t0 = time.monotonic()
        if how != "script ends":
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)  # the logic sleeps 120 s: exit must not wait for it
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        err = proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert took < 15, f"exit took {took:.1f} s; stderr: {err}"
    if how != "script ends":
        assert "KeyboardInterrupt" in err
