"""Issue 14, item 2: ``routilux.core.hooks``, upstream's observer interface, really called.

Each hook is called, in order, with the right arguments; a hook that raises is logged and
detached and never kills a pool thread; ``on_event_emit`` / ``on_slot_before_enqueue``
can drop an emit or a delivery; with no hooks set nothing is called.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from util import JOIN_TIMEOUT, make_routine, new_flow, running

from routilux import Flow, JobContext, WorkerState
from routilux.core.hooks import (
    ExecutionHooksInterface,
    NullExecutionHooks,
    get_execution_hooks,
    reset_execution_hooks,
    set_execution_hooks,
)


class Recording(ExecutionHooksInterface):
    """Every call, as (hook name, arguments), in the order the runtime made them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.job_ended = threading.Event()  # job.wait() may return before on_job_end runs

    def _add(self, name: str, *args: Any) -> None:
        with self.lock:
            self.calls.append((name, args))

    def names(self) -> list[str]:
        with self.lock:
            return [name for name, _ in self.calls]

    def on_worker_start(self, flow, worker_state):
        self._add("on_worker_start", flow, worker_state)

    def on_worker_stop(self, flow, worker_state, status):
        self._add("on_worker_stop", flow, worker_state, status)

    def on_job_start(self, job_context, worker_state):
        self._add("on_job_start", job_context, worker_state)

    def on_job_end(self, job_context, worker_state, status="completed", error=None):
        self._add("on_job_end", job_context, worker_state, status, error)
        self.job_ended.set()

    def on_routine_start(self, routine_id, worker_state, job_context=None):
        self._add("on_routine_start", routine_id, worker_state, job_context)
        return True

    def on_routine_end(self, routine_id, worker_state, job_context=None, status="completed",
                       error=None):
        self._add("on_routine_end", routine_id, worker_state, job_context, status, error)

    def on_event_emit(self, event, source_routine_id, worker_state, job_context=None,
                      data=None):
        self._add("on_event_emit", event, source_routine_id, worker_state, job_context, data)
        return True

    def on_slot_before_enqueue(self, slot, routine_id, job_context, data, flow_id):
        self._add("on_slot_before_enqueue", slot, routine_id, job_context, data, flow_id)
        return True, None


@pytest.fixture(autouse=True)
def no_hooks_after() -> Iterator[None]:
    yield
    reset_execution_hooks()


def _two_stage(fail_second: bool = False) -> Flow:
    def first(slot_data, policy_message, worker_state):
        flow.routines["first"].emit("out", y=slot_data["in"][0]["x"] + 1)

    def second(slot_data, policy_message, worker_state):
        if fail_second:
            raise ValueError("second failed")

    flow = new_flow("hooks")
    flow.add_routine(make_routine(first), "first")
    flow.add_routine(make_routine(second), "second")
    flow.connect("first", "out", "second", "in")
    return flow


def test_no_hooks_means_the_null_hooks() -> None:
    assert isinstance(get_execution_hooks(), NullExecutionHooks)
    hooks = Recording()
    set_execution_hooks(hooks)
    assert get_execution_hooks() is hooks
    set_execution_hooks(NullExecutionHooks())
    assert isinstance(get_execution_hooks(), NullExecutionHooks)
    with pytest.raises(TypeError, match="must be an ExecutionHooksInterface"):
        set_execution_hooks(object())  # type: ignore[arg-type]


def test_every_hook_is_called_in_order_with_its_arguments() -> None:
    hooks = Recording()
    set_execution_hooks(hooks)
    flow = _two_stage()
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "first", "in", {"x": 1})
        assert job.wait(JOIN_TIMEOUT) and hooks.job_ended.wait(JOIN_TIMEOUT)
    assert hooks.names() == [
        "on_worker_start",
        "on_job_start",
        "on_slot_before_enqueue",  # the posted item into first.in
        "on_routine_start",
        "on_event_emit",
        "on_slot_before_enqueue",  # the emitted item into second.in
        "on_routine_end",  # first returns after its emit was delivered
        "on_routine_start",
        "on_routine_end",
        "on_job_end",
        "on_worker_stop",
    ]
    calls = dict(hooks.calls[:2])
    assert calls["on_worker_start"] == (flow, ws)
    assert calls["on_job_start"] == (job, ws)
    slot, rid, job_ctx, data, flow_id = hooks.calls[2][1]
    assert (slot, rid, job_ctx, data, flow_id) == (
        flow.routines["first"].get_slot("in"), "first", job, {"x": 1}, flow.flow_id)
    assert hooks.calls[3][1] == ("first", ws, job)
    event, source, ws_, job_, payload = hooks.calls[4][1]
    assert (event, source, ws_, job_, payload) == (
        flow.routines["first"].get_event("out"), "first", ws, job, {"y": 2})
    assert hooks.calls[5][1][:4] == (flow.routines["second"].get_slot("in"), "second", job,
                                      {"y": 2})
    assert hooks.calls[6][1] == ("first", ws, job, "completed", None)
    assert hooks.calls[8][1] == ("second", ws, job, "completed", None)
    assert hooks.calls[9][1] == (job, ws, "completed", None)
    assert hooks.calls[10][1] == (flow, ws, "completed")


def test_a_failing_routine_reaches_routine_end_and_job_end_with_its_error() -> None:
    hooks = Recording()
    set_execution_hooks(hooks)
    flow = _two_stage(fail_second=True)
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "first", "in", {"x": 1})
        assert job.wait(JOIN_TIMEOUT) and job.status == "failed"
        assert hooks.job_ended.wait(JOIN_TIMEOUT)
    ends = [args for name, args in hooks.calls if name == "on_routine_end"]
    assert ends[-1][:4] == ("second", ws, job, "failed")
    assert isinstance(ends[-1][4], ValueError) and str(ends[-1][4]) == "second failed"
    (job_end,) = [args for name, args in hooks.calls if name == "on_job_end"]
    assert job_end[:3] == (job, ws, "failed") and isinstance(job_end[3], ValueError)


def test_a_hook_that_raises_is_logged_detached_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recording):
        def on_routine_start(self, routine_id, worker_state, job_context=None):
            super().on_routine_start(routine_id, worker_state, job_context)
            raise RuntimeError("hook bug")

    hooks = Broken()
    set_execution_hooks(hooks)
    flow = _two_stage()
    with caplog.at_level(logging.ERROR, logger="routilux"), running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "first", "in", {"x": 1})
        assert job.wait(JOIN_TIMEOUT) and job.status == "completed"
        # the same (single) pool thread keeps serving jobs
        _, later = rt.post(flow.flow_id, "first", "in", {"x": 2})
        assert later.wait(JOIN_TIMEOUT) and later.status == "completed"
        assert rt.statistics().threads == 1
    assert isinstance(get_execution_hooks(), NullExecutionHooks)  # detached
    assert hooks.names().count("on_routine_start") == 1  # never called again
    (record,) = [r for r in caplog.records if "Broken.on_routine_start raised" in r.getMessage()]
    assert record.exc_info is not None and "hook bug" in str(record.exc_info[1])


def test_event_emit_returning_false_drops_the_emit() -> None:
    class Block(Recording):
        def on_event_emit(self, event, source_routine_id, worker_state, job_context=None,
                          data=None):
            super().on_event_emit(event, source_routine_id, worker_state, job_context, data)
            return False

    set_execution_hooks(Block())
    ran = threading.Event()
    flow = _two_stage()
    flow.routines["second"].set_logic(lambda *a: ran.set())
    with running(thread_pool_size=1) as rt:
        ws, job = rt.post(flow.flow_id, "first", "in", {"x": 1})
        assert job.wait(JOIN_TIMEOUT) and job.status == "completed"
    assert not ran.is_set()
    history = [r.event_name for r in ws.execution_history if r.routine_id == "first"]
    assert history == ["emit_dropped", "logic_executed"]


def test_slot_before_enqueue_false_drops_one_delivery(caplog: pytest.LogCaptureFixture) -> None:
    class OnlyEven(Recording):
        def on_slot_before_enqueue(self, slot, routine_id, job_context, data, flow_id):
            super().on_slot_before_enqueue(slot, routine_id, job_context, data, flow_id)
            return (data.get("x", 0) % 2 == 0, "odd x")

    set_execution_hooks(OnlyEven())
    seen: list[int] = []
    lock = threading.Lock()

    def record(slot_data, policy_message, worker_state):
        with lock:
            seen.append(slot_data["in"][0]["x"])

    flow = new_flow("filter")
    flow.add_routine(make_routine(record), "r")
    with caplog.at_level(logging.INFO, logger="routilux"), running(thread_pool_size=2) as rt:
        jobs = [rt.post(flow.flow_id, "r", "in", {"x": x})[1] for x in range(6)]
        assert all(j.wait(JOIN_TIMEOUT) for j in jobs)
    assert sorted(seen) == [0, 2, 4]
    assert all(j.status == "completed" for j in jobs)  # a dropped item still ends its job
    assert sum("dropped by execution hooks: odd x" in r.getMessage() for r in caplog.records) == 3


def test_a_malformed_enqueue_answer_detaches_the_hooks() -> None:
    class Bad(Recording):
        def on_slot_before_enqueue(self, slot, routine_id, job_context, data, flow_id):
            return "yes"

    set_execution_hooks(Bad())
    flow = _two_stage()
    with running(thread_pool_size=1) as rt:
        assert rt.post(flow.flow_id, "first", "in", {"x": 1})[1].wait(JOIN_TIMEOUT)
    assert isinstance(get_execution_hooks(), NullExecutionHooks)


def test_hooks_see_the_job_context_of_the_activation() -> None:
    from routilux import get_current_job

    seen: list[Any] = []

    class Peek(NullExecutionHooks):
        def on_routine_start(self, routine_id, worker_state, job_context=None):
            seen.append((get_current_job(), job_context, type(worker_state)))
            return True

    set_execution_hooks(Peek())
    flow = _two_stage()
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "first", "in", {"x": 1})
        assert job.wait(JOIN_TIMEOUT)
    assert seen == [(job, job, WorkerState), (job, job, WorkerState)]
    assert isinstance(job, JobContext)
