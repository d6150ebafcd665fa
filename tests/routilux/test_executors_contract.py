"""Executors (#8): the choices, one contract run against each executor, the interface.

The contract: whatever runs the logic, emit reaches the connected slots under the same
job, ``get_current_job()`` answers for that job, and STOP / CONTINUE / SKIP act as for
sync logic on the pool. (RETRY, timing and failure modes are in the per-executor files.)
"""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from util import Recorder, finish_all, make_routine, new_flow, running

import routilux.executors
from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Routine,
    RoutiluxError,
    Runtime,
    get_current_job,
    immediate_policy,
)
from routilux.executors import (
    AsyncioExecutor,
    Executor,
    ProcessExecutor,
    RemoteLogicError,
    TaskOutcome,
    ThreadExecutor,
)
from routilux.trace import Tracer

try:  # module functions travel by value to the process pool
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover
    pass


# -- choices ----------------------------------------------------------------------------
@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("choice", "error", "match"),
    [
        ("thread", ValueError,
         "unknown executor 'thread'; choose one of threads, asyncio, processes"),
        ("dask", ValueError, "unknown executor 'dask'"),
        (4, TypeError, "executor must be one of 'threads', 'asyncio', 'processes'"),
        (ThreadPoolExecutor, TypeError, "executor must be one of"),
    ],
)
def test_bad_executor_choices(choice, error, match) -> None:
    with pytest.raises(error, match=match):
        Routine().set_executor(choice)
    with pytest.raises(error, match=match):
        Runtime(thread_pool_size=1, executor=choice)


@pytest.mark.timeout(10)
def test_a_thread_pool_executor_object_is_refused_with_a_reason() -> None:
    with ThreadPoolExecutor(1) as pool, pytest.raises(TypeError, match="ThreadPoolExecutor is not"):
        Routine().set_executor(pool)


@pytest.mark.timeout(10)
def test_set_executor_returns_the_routine_and_get_executor_reads_it() -> None:
    r = Routine()
    assert r.get_executor() is None
    assert r.set_executor("processes") is r and r.get_executor() == "processes"
    ex = ThreadExecutor()
    assert r.set_executor(ex).get_executor() is ex
    assert r.set_executor(None).get_executor() is None


# -- one contract, every in-process and process executor ---------------------------------
class SyncEmitter(Routine):
    """Sets job data, then emits what it saw of its job; raises when asked to."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out")
        self.set_activation_policy(immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        if item.get("raise"):
            raise ValueError("asked to")
        job = get_current_job()
        job.set_data("seen", item["x"])
        self.emit("out", x=item["x"], job=job.job_id, meta=dict(job.metadata))


class AsyncEmitter(SyncEmitter):
    async def logic(self, slot_data, policy_message, worker_state):  # type: ignore[override]
        await asyncio.sleep(0)
        SyncEmitter.logic(self, slot_data, policy_message, worker_state)


KINDS = {
    "threads": (SyncEmitter, "threads"),
    "asyncio": (AsyncEmitter, None),  # async def logic under the default executor
    "processes": (SyncEmitter, "processes"),
}


@pytest.fixture(params=sorted(KINDS))
def contract_flow(request):
    cls, executor = KINDS[request.param]
    got = Recorder()
    emitter = cls().set_executor(executor)
    flow = new_flow(f"contract-{request.param}")
    flow.add_routine(emitter, "e")
    flow.add_routine(make_routine(lambda sd, pm, ws: got.add((sd["in"][0],
                                                              get_current_job().job_id)),
                                  events=()), "sink")
    flow.connect("e", "out", "sink", "in")
    return flow, got


@pytest.mark.timeout(60)
def test_contract_emit_and_job_context(contract_flow) -> None:
    flow, got = contract_flow
    with running(thread_pool_size=2) as rt:
        jobs = {}
        for i in range(8):
            _, job = rt.post(flow.flow_id, "e", "in", {"x": i}, metadata={"i": i})
            jobs[job.job_id] = (i, job)
        finish_all(rt)
        items = got.wait_for(8)
    for item, job_id in items:
        i, job = jobs[job_id]
        assert item == {"x": i, "job": job_id, "meta": {"i": i}}
        assert job.status == "completed" and job.get_data("seen") == i


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("strategy", "status", "routine_status"),
    [
        (ErrorStrategy.STOP, "failed", "failed"),
        (ErrorStrategy.CONTINUE, "completed", "error_continued"),
        (ErrorStrategy.SKIP, "completed", "skipped"),
    ],
)
def test_contract_error_strategies(contract_flow, strategy, status, routine_status) -> None:
    flow, got = contract_flow
    flow.routines["e"].set_error_handler(ErrorHandler(strategy))
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "e", "in", {"raise": True})
        finish_all(rt)
    assert job.status == status
    assert ws.get_routine_state("e")["status"] == routine_status
    assert ws.get_routine_state("e")["error"] == "ValueError: asked to"
    if status == "failed":
        assert job.error == "ValueError: asked to"
    assert len(got) == 0


# -- the interface ----------------------------------------------------------------------
class FreshThreadExecutor(Executor):
    """A custom executor: each activation on a new thread (the smallest useful one)."""

    name = "fresh-thread"

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def submit(self, spec, on_done) -> None:
        def run() -> None:
            ctx = spec.bind()
            spec.started()
            try:
                ctx.run(spec.call)
            except Exception as exc:
                on_done(TaskOutcome(error=exc))
            else:
                on_done(TaskOutcome())

        t = threading.Thread(target=run, name=f"fresh-{spec.routine_id}-{spec.job_id[:8]}")
        self.threads.append(t)
        t.start()


@pytest.mark.timeout(30)
def test_a_custom_executor_plugs_in() -> None:
    got = Recorder()
    ex = FreshThreadExecutor()

    def logic(slot_data, policy_message, worker_state):
        got.add((threading.current_thread().name, get_current_job().job_id))

    flow = new_flow("contract-custom")
    flow.add_routine(make_routine(logic, events=()).set_executor(ex), "c")
    with running(thread_pool_size=1, trace=True) as rt:
        jobs = [rt.post(flow.flow_id, "c", "in", {})[1] for _ in range(3)]
        finish_all(rt)
        names = {e.thread_name for e in rt.tracer.read()
                 if e.kind == "task.finished" and e.routine == "c"}
    for t in ex.threads:
        t.join()
    assert {job.status for job in jobs} == {"completed"}
    assert {job_id for _, job_id in got.snapshot()} == {j.job_id for j in jobs}
    assert all(name.startswith("fresh-c-") for name, _ in got.snapshot())
    assert names == {name for name, _ in got.snapshot()}  # traced on the thread that ran it


class BytesOnAThreadExecutor(Executor):
    """An out-of-process executor in miniature: only bytes cross, through the spec's
    remote entry points (``to_bytes`` -> ``remote_call`` -> ``outcome``), on a new thread."""

    name = "bytes-thread"
    remote = True

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException | None] = []
        self.calls: list[object] = []

    def submit(self, spec, on_done) -> None:
        payload = spec.to_bytes()
        call = spec.remote_call
        self.calls.append(call)

        def run() -> None:
            outcome = spec.outcome(call(payload))
            self.errors.append(outcome.error)
            on_done(outcome)

        t = threading.Thread(target=run, name=f"bytes-{spec.routine_id}")
        self.threads.append(t)
        t.start()


class Unpicklable(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()  # cannot travel back


@pytest.mark.timeout(30)
def test_an_executor_runs_remote_logic_through_the_spec_alone() -> None:
    got = Recorder()
    ex = BytesOnAThreadExecutor()

    def logic(slot_data, policy_message, worker_state):
        x = slot_data["in"][0]["x"]
        get_current_job().set_data("seen", x)
        routine.emit("out", y=x * 2)

    routine = make_routine(logic).set_executor(ex)
    flow = new_flow("contract-bytes")
    flow.add_routine(routine, "a")
    flow.add_routine(make_routine(lambda sd, pm, ws: got.add(sd["in"][0]["y"]), events=()),
                     "sink")
    flow.connect("a", "out", "sink", "in")
    with running(thread_pool_size=1, trace=True) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {"x": 21})
        finish_all(rt)
        lanes = {e.thread_name for e in rt.tracer.read()
                 if e.kind == "task.finished" and e.routine == "a"}
    for t in ex.threads:
        t.join()
    assert job.status == "completed", job.error
    assert got.snapshot() == [42]  # emitted "remotely", routed here
    assert job.get_data("seen") == 21  # job data set there, applied here
    assert ex.errors == [None]
    # The documented public name and the spec's entry point are the same function.
    assert ex.calls == [routilux.executors.run_remote]
    assert len(lanes) == 1 and next(iter(lanes)).startswith("RoutiluxProcess-")


@pytest.mark.timeout(30)
def test_an_exception_that_cannot_travel_back_is_a_remote_logic_error() -> None:
    ex = BytesOnAThreadExecutor()

    def logic(slot_data, policy_message, worker_state):
        raise Unpicklable("holds a lock")

    flow = new_flow("contract-bytes-error")
    flow.add_routine(make_routine(logic, events=()).set_executor(ex), "a")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "a", "in", {})
        finish_all(rt)
    for t in ex.threads:
        t.join()
    assert job.status == "failed"
    assert job.error == "RemoteLogicError: Unpicklable: holds a lock"
    (error,) = ex.errors
    assert isinstance(error, RemoteLogicError) and isinstance(error, RoutiluxError)
    assert "Unpicklable: holds a lock" in str(error.__cause__)  # the remote traceback


# The plug-in modules see routilux only through executors._base: the codec and the runtime
# hand them everything on the TaskSpec (issue 15). _choice.py sits above them (it wraps a
# foreign pool in one of them); the face (__init__) re-exports.
_PLUGINS = ("_base", "threads", "asyncio", "processes", "dask")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("module", _PLUGINS)
def test_executor_plug_ins_import_only_the_base(module: str) -> None:
    path = Path(routilux.executors.__file__).with_name(f"{module}.py")
    seen = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):  # lazy imports included
        if isinstance(node, ast.ImportFrom) and (node.level or 0) > 0:
            seen.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("routilux"):
            seen.append(node.module)
        elif isinstance(node, ast.Import):
            seen += [a.name for a in node.names if a.name.startswith("routilux")]
    allowed = {"..": set(), "_base": {".._errors"}}.get(module, {"._base"})
    assert set(seen) <= allowed, f"executors/{module}.py imports {sorted(set(seen) - allowed)}"


@pytest.mark.timeout(30)
def test_submit_raising_fails_the_job_like_a_logic_error() -> None:
    class Refusing(Executor):
        def submit(self, spec, on_done) -> None:
            raise RuntimeError(f"no capacity for {spec.routine_id}")

    flow = new_flow("contract-refuse")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()).set_executor(Refusing()),
                     "r")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
    assert job.status == "failed" and job.error == "RuntimeError: no capacity for r"


@pytest.mark.timeout(30)
def test_executor_objects_are_context_managers_and_idempotent() -> None:
    with AsyncioExecutor() as a, ProcessExecutor(max_workers=1) as p:
        assert a.loop is None and "not started" in repr(p)
    a.shutdown()
    p.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        a.submit(None, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_workers must be an int >= 1"):
        ProcessExecutor(max_workers=0)


@pytest.mark.timeout(10)
def test_record_as_keeps_a_given_timestamp() -> None:
    tracer = Tracer()
    tracer.record_as(7, "task.started", "j", "r", "in", 0.1, None, "w", "lane", ts_ns=123)
    tracer.record_as(7, "task.finished", "j", "r", "in", 0.1, None, "w", "lane")
    first, second = tracer.read()
    assert (first.ts_ns, first.thread, first.thread_name) == (123, 7, "lane")
    assert second.ts_ns > 123


@pytest.mark.timeout(120)
def test_routilux_runs_without_dask_and_says_how_to_get_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if not installed\n"
        "sys.modules['dask'] = None\n"
        "import routilux\n"
        "from routilux import Flow, Routine, Runtime, immediate_policy\n"
        "from routilux.executors import DaskExecutor\n"
        "r = Routine(); r.add_slot('in'); r.set_activation_policy(immediate_policy())\n"
        "r.set_logic(lambda sd, pm, ws: None)\n"
        "f = Flow('no-dask'); f.add_routine(r, 'r')\n"
        "with Runtime(thread_pool_size=1) as rt:\n"
        "    _, job = rt.post('no-dask', 'r', 'in', {})\n"
        "    assert rt.wait_until_all_jobs_finished(30) and job.status == 'completed'\n"
        "try:\n"
        "    DaskExecutor(None)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=100, check=True)
    assert "pip install routilux[dask]" in out.stdout, out.stderr


@pytest.mark.timeout(120)
def test_executors_public_names_resolve_and_load_lazily() -> None:
    code = (
        "import sys\n"
        "import routilux.executors as ex\n"
        "lazy = [m for m in ('distributed', 'dask', 'multiprocessing',\n"
        "                    'routilux.executors.processes', 'routilux.executors.dask')\n"
        "        if m in sys.modules]\n"
        "for name in ex.__all__:\n"
        "    assert not name.startswith('_') and getattr(ex, name) is not None, name\n"
        "print(','.join(lazy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=100, check=True)
    assert out.stdout.strip() == "", f"import routilux.executors loaded: {out.stdout.strip()}"
