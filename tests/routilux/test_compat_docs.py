"""Issue 14, item 1: what the Routilux docs' programs use, written from their usage.

``runtime.exec(name, entry_params=...)`` then ``.status`` / ``.job_id`` /
``runtime.get_job`` / ``.get_routine_state`` / ``.save``; ``worker_state.shared_log`` in
logic; ``routilux.monitoring.MonitoringRegistry``; plus upstream's ``setup()`` and enum
``str()`` semantics (item 2) and the small surprises (item 6).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from util import JOIN_TIMEOUT, make_routine, new_flow, running

from routilux import (
    EntryJob,
    ExecutionStatus,
    Flow,
    JobContext,
    JobStatus,
    Routine,
    RoutineStatus,
    Runtime,
    WorkerState,
    immediate_policy,
)
from routilux.monitoring import MonitoringRegistry
from routilux.monitoring.flow_registry import FlowRegistry


def _pipeline(prefix: str = "docs") -> Flow:
    """source -> upper -> sink, each recording what it saw in the worker's shared_log."""

    def source(slot_data, policy_message, job_state):
        text = slot_data.get("trigger", [{}])[0].get("text", "default")
        job_state.shared_log.append(("source", text))
        flow.routines["source"].emit("out", data=text)

    def upper(slot_data, policy_message, job_state):
        data = slot_data["in"][0]["data"]
        job_state.shared_log.append(("upper", data.upper()))
        flow.routines["upper"].emit("out", data=data.upper())

    def sink(slot_data, policy_message, job_state):
        job_state.update_routine_state("sink", {"result": slot_data["in"][0]["data"]})

    flow = new_flow(prefix)
    flow.add_routine(make_routine(source, slots=("trigger",)), "source")
    flow.add_routine(make_routine(upper), "upper")
    flow.add_routine(make_routine(sink), "sink")
    flow.connect("source", "out", "upper", "in")
    flow.connect("upper", "out", "sink", "in")
    return flow


# -- exec(entry_params) ------------------------------------------------------------------


def test_exec_entry_params_runs_the_flow_and_reads_as_job_and_worker_state() -> None:
    flow = _pipeline()
    FlowRegistry.get_instance().register_by_name(flow.flow_id, flow)
    with running(thread_pool_size=3) as rt:
        job_state = rt.exec(flow.flow_id, entry_params={"text": "hello"})
        assert isinstance(job_state, EntryJob)
        job = rt.get_job(job_state.job_id)
        assert job is job_state.job and isinstance(job, JobContext)
        assert job.wait(timeout=JOIN_TIMEOUT)
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        assert job_state.status == "completed"
        # everything else is the worker's state
        assert isinstance(job_state.worker_state, WorkerState)
        assert job_state.worker_id == job_state.worker_state.worker_id == job.worker_id
        assert job_state.get_routine_state("sink", {}) == {"result": "HELLO"}
        assert list(job_state.shared_log) == [("source", "hello"), ("upper", "HELLO")]
        assert "EntryJob" in repr(job_state) and job.job_id in repr(job_state)
    FlowRegistry.get_instance().unregister_by_name(flow.flow_id)


def test_exec_entry_params_then_save_and_load_keeps_the_worker(tmp_path: Path) -> None:
    flow = _pipeline()
    with running(thread_pool_size=2) as rt:
        job_state = rt.exec(flow.flow_id, entry_params={"text": "x"})
        assert job_state.wait(JOIN_TIMEOUT)
        job_state.save(tmp_path / "state.json")
    loaded = WorkerState.load(tmp_path / "state.json")
    assert loaded.worker_id == job_state.worker_id
    assert loaded.get_routine_state("sink") == {"result": "X"}
    assert [tuple(r) for r in loaded.shared_log] == [("source", "x"), ("upper", "X")]


def test_exec_without_entry_params_still_returns_the_worker_state() -> None:
    flow = _pipeline()
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        assert type(ws) is WorkerState
        assert rt.list_jobs() == []


def test_entry_routine_fed_only_by_itself_is_still_the_entry() -> None:
    seen = threading.Event()
    flow = new_flow("selfloop")
    flow.add_routine(make_routine(lambda d, m, w: seen.set()), "loop")
    flow.connect("loop", "out", "loop", "in")
    with running(thread_pool_size=1) as rt:
        rt.exec(flow.flow_id, entry_params={"data": 1}).wait(JOIN_TIMEOUT)
        assert seen.is_set()


@pytest.mark.parametrize(
    ("build", "match"),
    [
        ("two_entries", r"several entry routines \(a, b\)"),
        ("two_slots", r"entry routine 'a' .* has several slots \(x, y\)"),
        ("cycle", "has no entry routine"),
    ],
)
def test_exec_entry_params_ambiguity_names_the_candidates(build: str, match: str) -> None:
    flow = new_flow("ambiguous")
    if build == "two_entries":
        flow.add_routine(make_routine(lambda *a: None), "a")
        flow.add_routine(make_routine(lambda *a: None), "b")
    elif build == "two_slots":
        flow.add_routine(make_routine(lambda *a: None, slots=("x", "y")), "a")
    else:
        flow.add_routine(make_routine(lambda *a: None), "a")
        flow.add_routine(make_routine(lambda *a: None), "b")
        flow.connect("a", "out", "b", "in")
        flow.connect("b", "out", "a", "in")
    with running(thread_pool_size=1) as rt:
        with pytest.raises(ValueError, match=match):
            rt.exec(flow.flow_id, entry_params={"v": 1})
        assert rt.list_jobs() == [] and rt.statistics().workers == 0


def test_exec_entry_params_must_be_a_dict() -> None:
    flow = _pipeline()
    with running(thread_pool_size=1) as rt, pytest.raises(TypeError, match="entry_params must be a dict"):
        rt.exec(flow.flow_id, entry_params=["text"])


# -- shared_log --------------------------------------------------------------------------


def test_shared_log_takes_concurrent_appends_from_many_jobs() -> None:
    n_threads, per_thread = 4, 250
    barrier = threading.Barrier(n_threads, timeout=JOIN_TIMEOUT)

    def logic(slot_data, policy_message, job_state):
        barrier.wait()  # all four activations append at the same time
        for i in range(per_thread):
            job_state.shared_log.append((slot_data["in"][0]["k"], i))

    flow = new_flow("log")
    flow.add_routine(make_routine(logic), "log")
    with running(thread_pool_size=n_threads) as rt:
        ws = rt.exec(flow.flow_id)
        for k in range(n_threads):
            rt.post(flow.flow_id, "log", "in", {"k": k}, worker_id=ws.worker_id)
        assert rt.wait_until_all_jobs_finished(JOIN_TIMEOUT)
    entries = list(ws.shared_log)
    assert len(entries) == n_threads * per_thread
    for k in range(n_threads):  # each job's appends kept their order
        assert [i for kk, i in entries if kk == k] == list(range(per_thread))


def test_shared_log_round_trips_through_serialize() -> None:
    ws = WorkerState("f")
    ws.shared_log.append({"from": "A"})
    ws.shared_log.extend([{"from": "B"}])
    ws.shared_data["n"] = 2
    back = WorkerState.deserialize(json.loads(json.dumps(ws.serialize())))
    assert list(back.shared_log) == [{"from": "A"}, {"from": "B"}]
    assert back.shared_data == {"n": 2}


# -- MonitoringRegistry ------------------------------------------------------------------


@pytest.fixture
def monitoring_off():
    yield
    MonitoringRegistry.disable()


def test_monitoring_enable_makes_new_runtimes_trace(monitoring_off: None) -> None:
    assert not MonitoringRegistry.is_enabled()
    assert Runtime(thread_pool_size=1).tracer is None
    session = MonitoringRegistry.enable()
    assert MonitoringRegistry.is_enabled()
    assert MonitoringRegistry.get_instance() is MonitoringRegistry.get_instance()
    flow = new_flow("monitored")
    flow.add_routine(make_routine(lambda *a: None), "work")
    with running(thread_pool_size=2) as rt:
        assert rt.tracer is not None
        rt.exec(flow.flow_id, entry_params={"data": 1}).wait(JOIN_TIMEOUT)
        assert any(e.kind == "task.finished" for e in rt.tracer.read())
        assert (rt, rt.tracer) in MonitoringRegistry.traced(since=session)
    MonitoringRegistry.disable()
    assert not MonitoringRegistry.is_enabled()
    with running(thread_pool_size=1) as rt2:
        assert rt2.tracer is None


def test_monitoring_traces_an_existing_runtime_while_on_and_stops_after(
    monitoring_off: None,
) -> None:
    flow = new_flow("attached")
    flow.add_routine(make_routine(lambda *a: None), "work")
    with running(thread_pool_size=2) as rt:
        assert rt.tracer is None
        MonitoringRegistry.enable()
        _, job = rt.post(flow.flow_id, "work", "in", {})
        tracer = rt.tracer
        assert tracer is not None and job.wait(JOIN_TIMEOUT)
        rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        assert [e.kind for e in tracer.read() if e.kind.startswith("task.")] == [
            "task.queued", "task.started", "task.finished"]
        MonitoringRegistry.disable()
        assert rt.tracer is None  # tracing it switched on stops
        rt.post(flow.flow_id, "work", "in", {})[1].wait(JOIN_TIMEOUT)
        assert sum(e.kind == "task.finished" for e in tracer.read()) == 1
        assert tracer in [t for _, t in MonitoringRegistry.traced()]


# -- setup() once ------------------------------------------------------------------------


class _SetupRoutine(Routine):
    """Upstream test style: declare ports in setup(), which user code may call itself."""

    def setup(self) -> None:
        self.setup_calls = getattr(self, "setup_calls", 0) + 1
        self.add_slot("input")
        self.add_event("output")
        self.set_activation_policy(immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        self.emit("output", seen=slot_data["input"][0]["v"])


class _SetupChild(_SetupRoutine):
    def setup(self) -> None:
        super().setup()
        self.add_slot("extra")


def test_setup_called_by_the_user_then_add_routine_runs_it_once() -> None:
    routine = _SetupRoutine()
    routine.setup()
    flow = new_flow("setup")
    flow.add_routine(routine, "r")  # used to raise "already has a slot 'input'"
    routine.setup()
    assert routine.setup_calls == 1 and list(routine.slots) == ["input"]
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "r", "input", {"v": 3})
        assert job.wait(JOIN_TIMEOUT) and job.status == "completed"


def test_setup_runs_once_through_a_super_chain_whoever_calls_first() -> None:
    by_flow = _SetupChild()
    new_flow("setup").add_routine(by_flow, "c")
    by_flow.setup()
    by_user = _SetupChild()
    by_user.setup()
    by_user.setup()
    for routine in (by_flow, by_user):
        assert routine.setup_calls == 1
        assert list(routine.slots) == ["input", "extra"]


def test_a_setup_that_raises_can_be_retried() -> None:
    class Flaky(Routine):
        def setup(self) -> None:
            self.add_slot("in")
            if not getattr(self, "ok", False):
                raise RuntimeError("not yet")

    r = Flaky()
    with pytest.raises(RuntimeError, match="not yet"):
        r.setup()
    r.__dict__["_slots"].clear()
    r.ok = True
    r.setup()
    r.setup()
    assert list(r.slots) == ["in"]


# -- enum str() --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "text", "value"),
    [
        (JobStatus.PENDING, "JobStatus.PENDING", "pending"),
        (ExecutionStatus.IDLE, "ExecutionStatus.IDLE", "idle"),
        (RoutineStatus.ERROR_CONTINUED, "RoutineStatus.ERROR_CONTINUED", "error_continued"),
    ],
)
def test_status_str_is_upstreams_and_format_is_the_value(member, text: str, value: str) -> None:
    assert str(member) == text
    assert member == value and member.value == value
    assert f"{member}" == value  # messages built with f-strings stay readable


def test_statuses_still_filter_and_save_as_values(tmp_path: Path) -> None:
    flow = new_flow("status")
    flow.add_routine(make_routine(lambda *a: None), "w")
    with running(thread_pool_size=1) as rt:
        ws, job = rt.post(flow.flow_id, "w", "in", {})
        assert job.wait(JOIN_TIMEOUT)
        assert rt.list_jobs(status=JobStatus.COMPLETED) == [job]
    ws.save(tmp_path / "ws.json")
    assert json.loads((tmp_path / "ws.json").read_text())["status"] == "completed"


# -- small surprises (item 6) ------------------------------------------------------------


def test_the_very_large_pool_warning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="routilux"), running(thread_pool_size=1001):
        pass
    assert [r.getMessage() for r in caplog.records].count(
        "thread_pool_size=1001 is very large; threads cost memory") == 1


def test_a_second_flow_with_the_same_id_warns_once_and_replaces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fid = new_flow("dup").flow_id
    with caplog.at_level(logging.WARNING, logger="routilux"):
        first = Flow(fid)
        second = Flow(fid)
        third = Flow(fid)
    warned = [r for r in caplog.records if f"Flow({fid!r}) replaces" in r.getMessage()]
    assert len(warned) == 1
    assert FlowRegistry.get_instance().resolve(fid) is third
    assert first is not second


def test_post_none_is_an_empty_item() -> None:
    got = []
    flow = new_flow("none")
    flow.add_routine(make_routine(lambda d, m, w: got.append(d["in"])), "w")
    with running(thread_pool_size=1) as rt:
        assert rt.post(flow.flow_id, "w", "in", None)[1].wait(JOIN_TIMEOUT)
        with pytest.raises(TypeError, match="post data must be a dict"):
            rt.post(flow.flow_id, "w", "in", [1, 2])
    assert got == [[{}]]


def test_shared_pool_shows_in_repr_and_statistics() -> None:
    with running(thread_pool_size=0) as rt:
        stats = rt.statistics()
        assert stats.shared_pool and stats.pool_size == 100
        assert "pool=100 shared (thread_pool_size=0)" in repr(rt)
    with running(thread_pool_size=3) as rt:
        assert not rt.statistics().shared_pool and "pool=3 " in repr(rt)


def test_upstream_style_logic_emits_through_worker_state_runtime() -> None:
    """Upstream's integration tests emit only when ``worker_state._runtime`` is set."""
    received: list[dict] = []

    class Source(Routine):
        def setup(self) -> None:
            self.add_slot("input")
            self.add_event("output")
            self.set_activation_policy(immediate_policy())

        def logic(self, input_data_list, **kwargs):
            worker_state = kwargs.get("worker_state")
            runtime = getattr(worker_state, "_runtime", None)
            for data in input_data_list:
                if runtime:
                    self.emit("output", runtime=runtime, worker_state=worker_state, **data)

    class Target(Routine):
        def setup(self) -> None:
            self.add_slot("input")
            self.set_activation_policy(immediate_policy())

        def logic(self, input_data_list, **kwargs):
            received.extend(input_data_list)

    flow = new_flow("upstream-style")
    source, target = Source(), Target()
    source.setup()
    target.setup()
    flow.add_routine(source, "source")
    flow.add_routine(target, "target")
    flow.connect("source", "output", "target", "input")
    with running() as rt:
        ws, job = rt.post(flow.flow_id, "source", "input", {"value": 42})
        assert ws._runtime is rt
        assert job.wait(JOIN_TIMEOUT) and rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
    assert received == [{"value": 42}]
    assert WorkerState()._runtime is None
