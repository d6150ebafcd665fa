"""WorkerState: routine-state helpers, exact read-modify-write, history, persistence."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from util import JOIN_TIMEOUT, finish_all, make_routine, new_flow, running

from routilux import ExecutionRecord, ExecutionStatus, WorkerState

THREADS = 8
INCREMENTS = 1000


def _hammer(target, threads: int = THREADS) -> None:
    """Run ``target`` in ``threads`` threads released together by a Barrier; join them all.

    The GIL switch interval is shrunk meanwhile, so the threads really interleave.
    """
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body() -> None:
        try:
            start.wait(JOIN_TIMEOUT)
            target()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    pool = [threading.Thread(target=body) for _ in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join(JOIN_TIMEOUT)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in pool)
    assert errors == []


@pytest.mark.timeout(60)
def test_modify_routine_state_is_exact_under_concurrency() -> None:
    ws = WorkerState("flow")

    def increment() -> None:
        for _ in range(INCREMENTS):
            ws.modify_routine_state("counter", lambda s: {**s, "n": s.get("n", 0) + 1})

    _hammer(increment)
    assert ws.get_routine_state("counter") == {"n": THREADS * INCREMENTS}


@pytest.mark.timeout(60)
def test_get_then_update_is_atomic_per_call_only() -> None:
    """The non-atomic pattern never counts more than was added; each call stays whole.

    Whether (and how much) it loses is luck, so only the bounds are asserted.
    """
    ws = WorkerState("flow")

    def increment() -> None:
        for _ in range(INCREMENTS):
            state = ws.get_routine_state("counter", {"n": 0})
            ws.update_routine_state("counter", {"n": state["n"] + 1})

    _hammer(increment)
    n = ws.get_routine_state("counter")["n"]
    assert 1 <= n <= THREADS * INCREMENTS
    assert ws.get_routine_state("counter").keys() == {"n"}


@pytest.mark.timeout(60)
def test_modify_routine_state_inside_logic_counts_every_activation() -> None:
    def logic(slot_data, policy_message, worker_state):
        worker_state.modify_routine_state("hits", lambda s: {"n": s.get("n", 0) + 1})

    flow = new_flow("ws-logic")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=8) as rt:
        ws = rt.exec(flow.flow_id)
        for i in range(500):
            rt.post(flow.flow_id, "r", "in", {"i": i})
        finish_all(rt)
        assert ws.get_routine_state("hits") == {"n": 500}


def test_modify_routine_state_returns_a_copy_and_rejects_non_dicts() -> None:
    ws = WorkerState("flow")
    new = ws.modify_routine_state("k", lambda s: {"a": 1})
    new["a"] = 2
    assert ws.get_routine_state("k") == {"a": 1}
    seen = []
    ws.modify_routine_state("k", lambda s: seen.append(s) or s)
    seen[0]["a"] = 99  # fn got a copy
    assert ws.get_routine_state("k") == {"a": 1}
    with pytest.raises(TypeError, match=r"modify_routine_state\('k', fn\): fn must return a dict"):
        ws.modify_routine_state("k", lambda s: [1])
    assert ws.get_routine_state("k") == {"a": 1}


def test_update_replaces_and_get_returns_a_copy_or_default() -> None:
    ws = WorkerState("flow")
    assert ws.get_routine_state("missing") is None
    assert ws.get_routine_state("missing", {"n": 0}) == {"n": 0}
    original = {"a": 1, "b": 2}
    ws.update_routine_state("k", original)
    original["a"] = 100
    assert ws.get_routine_state("k") == {"a": 1, "b": 2}
    ws.update_routine_state("k", {"c": 3})
    assert ws.get_routine_state("k") == {"c": 3}  # replaced, not merged
    copy = ws.get_routine_state("k")
    copy["c"] = 4
    assert ws.get_routine_state("k") == {"c": 3}
    with pytest.raises(TypeError, match="routine state for 'k' must be a dict, got list"):
        ws.update_routine_state("k", [1])


def test_constructor_defaults_and_history_bound() -> None:
    ws = WorkerState("f")
    assert ws.flow_id == "f" and ws.status == ExecutionStatus.PENDING == "pending"
    assert (ws.jobs_processed, ws.jobs_failed) == (0, 0)
    assert WorkerState(worker_id="w1").worker_id == "w1"
    with pytest.raises(ValueError, match="max_execution_history must be an int >= 10"):
        WorkerState("f", max_execution_history=9)
    small = WorkerState("f", max_execution_history=10)
    for i in range(25):
        small.record_execution("r", "step", {"i": i})
    history = small.get_execution_history()
    assert [h.data["i"] for h in history] == list(range(15, 25))
    assert all(isinstance(h, ExecutionRecord) and h.action == "step" for h in history)


def test_increment_jobs_processed_counts_failures() -> None:
    ws = WorkerState("f")
    ws.increment_jobs_processed()
    ws.increment_jobs_processed(success=False)
    assert (ws.jobs_processed, ws.jobs_failed) == (2, 1)


def test_save_writes_json_and_load_rejects_other_files(tmp_path: Path) -> None:
    ws = WorkerState("f")
    ws.update_routine_state("r", {"n": 1, "nested": {"x": [1, 2]}})
    ws.record_execution("r", "custom", {"obj": object()})  # stringified in the file
    path = tmp_path / "a" / "b" / "ws.json"
    ws.save(path)
    data = json.loads(path.read_text())
    assert data["worker_id"] == ws.worker_id
    assert data["routine_states"] == {"r": {"n": 1, "nested": {"x": [1, 2]}}}
    loaded = WorkerState.load(path)
    assert loaded.routine_states == ws.routine_states
    assert loaded.get_execution_history()[0].event_name == "custom"
    with pytest.raises(FileNotFoundError, match="no saved WorkerState"):
        WorkerState.load(tmp_path / "missing.json")
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="is not a saved WorkerState"):
        WorkerState.load(junk)


@pytest.mark.timeout(30)
def test_status_goes_running_and_back_to_idle() -> None:
    gate = threading.Event()
    running_now = threading.Event()

    def logic(slot_data, policy_message, worker_state):
        running_now.set()
        assert gate.wait(JOIN_TIMEOUT)

    flow = new_flow("ws-status")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=1) as rt:
        ws = rt.exec(flow.flow_id)
        assert ws.status == ExecutionStatus.RUNNING
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        assert ws.status == ExecutionStatus.IDLE
        rt.post(flow.flow_id, "r", "in", {})
        assert running_now.wait(JOIN_TIMEOUT)
        assert ws.status == ExecutionStatus.RUNNING
        assert WorkerState.wait_for_completion(flow, ws, timeout=0.05) is False
        gate.set()
        assert WorkerState.wait_for_completion(flow, ws, timeout=JOIN_TIMEOUT) is True
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        assert ws.status == ExecutionStatus.IDLE
    assert ws.status == ExecutionStatus.COMPLETED


@pytest.mark.timeout(30)
def test_current_routine_id_inside_logic_only() -> None:
    seen = []

    def logic(slot_data, policy_message, worker_state):
        seen.append(worker_state.current_routine_id)

    flow = new_flow("ws-rid")
    flow.add_routine(make_routine(logic, events=()), "the-routine")
    with running(thread_pool_size=1) as rt:
        ws, _ = rt.post(flow.flow_id, "the-routine", "in", {})
        finish_all(rt)
        assert seen == ["the-routine"]
        assert ws.current_routine_id is None
