"""Error handling (api.md §12): ErrorHandler validation, strategies on policies, errors
that are not Exceptions, and what gets recorded."""

from __future__ import annotations

from typing import Any

import pytest
from util import Recorder, finish_all, make_routine, new_flow, running

from routilux import ErrorHandler, ErrorStrategy, Routine


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strategy": "explode"}, ValueError,
         "unknown error strategy 'explode'; valid: stop, continue, retry, skip"),
        ({"strategy": 3}, TypeError, "strategy must be an ErrorStrategy or str, got int"),
        ({"max_retries": -1}, ValueError, "max_retries must be an int >= 0, got -1"),
        ({"max_retries": 1.5}, ValueError, "max_retries must be an int >= 0, got 1.5"),
        ({"retry_delay": -0.1}, ValueError, "retry_delay must be a number >= 0"),
        ({"retry_backoff": 0.5}, ValueError, "retry_backoff must be a number >= 1.0"),
        ({"retryable_exceptions": (ValueError, "nope")}, TypeError,
         "retryable_exceptions must hold exception types, got 'nope'"),
    ],
)
def test_error_handler_validation(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ErrorHandler(**kwargs)


def test_error_handler_defaults_and_helpers() -> None:
    h = ErrorHandler()
    assert h.strategy is ErrorStrategy.STOP
    assert (h.max_retries, h.retry_delay, h.retry_backoff) == (3, 1.0, 2.0)
    assert h.retryable_exceptions == (Exception,) and h.is_critical is False
    assert ErrorHandler("RETRY").strategy is ErrorStrategy.RETRY
    assert ErrorHandler(retryable_exceptions=KeyError).retryable_exceptions == (KeyError,)
    r = ErrorHandler("retry", retry_delay=0.5, retry_backoff=3.0)
    assert [r.delay_for(k) for k in (1, 2, 3)] == [0.5, 1.5, 4.5]
    assert r.handle_error(ValueError("x"), None, "rid", None) is True
    assert ErrorHandler("stop").handle_error(ValueError("x"), None, "rid", None) is False
    assert ErrorHandler("skip").handle_error(ValueError("x"), None, "rid", None) is True
    routine = Routine()
    routine.set_as_critical(max_retries=5, retry_delay=0.1)
    crit = routine.get_error_handler()
    assert crit.strategy is ErrorStrategy.RETRY and crit.is_critical and crit.max_retries == 5
    routine.set_as_optional()
    assert routine.get_error_handler().strategy is ErrorStrategy.CONTINUE
    with pytest.raises(TypeError, match="expected an ErrorHandler"):
        routine.set_error_handler("stop")


@pytest.mark.timeout(30)
def test_a_raising_policy_is_never_retried() -> None:
    calls = Recorder()

    def policy(slots, worker_state):
        calls.add(1)
        raise ZeroDivisionError("policy broke")

    r = make_routine(lambda sd, pm, ws: None, events=(), policy=policy)
    r.set_error_handler(ErrorHandler("retry", max_retries=3, retry_delay=0.0))
    flow = new_flow("err-policy")
    flow.add_routine(r, "r")
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
        assert job.status == "failed"
        assert job.error == "ZeroDivisionError: policy broke"
        assert len(calls) == 1
        assert ws.routine_states["r"] == {"status": "failed", "error": job.error}


@pytest.mark.timeout(30)
def test_a_raising_policy_under_continue_lets_the_job_complete() -> None:
    def policy(slots, worker_state):
        raise LookupError("no")

    r = make_routine(lambda sd, pm, ws: None, events=(), policy=policy)
    r.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow = new_flow("err-policy-continue")
    flow.add_routine(r, "r")
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
        assert job.status == "completed"
        kinds = [h.event_name for h in ws.get_execution_history("r")]
        assert kinds == ["logic_error", "error_continued"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
def test_base_exceptions_in_logic_fail_the_job_and_spare_the_pool(exc: BaseException) -> None:
    def logic(slot_data, policy_message, worker_state):
        if slot_data["in"][0]["boom"]:
            raise exc

    flow = new_flow("err-base")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=1) as rt:
        _, bad = rt.post(flow.flow_id, "r", "in", {"boom": True})
        finish_all(rt)
        _, good = rt.post(flow.flow_id, "r", "in", {"boom": False})
        finish_all(rt)
        assert bad.status == "failed" and bad.error.startswith(type(exc).__name__)
        assert good.status == "completed"
        assert rt.statistics().threads == 1


@pytest.mark.timeout(30)
def test_errors_are_recorded_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def logic(slot_data, policy_message, worker_state):
        raise ValueError("bad value 42")

    flow = new_flow("err-log")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=1) as rt, caplog.at_level("WARNING", logger="routilux"):
        ws, job = rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
    assert job.error == "ValueError: bad value 42"
    records = [h for h in ws.get_execution_history("r") if h.event_name == "logic_error"]
    assert [h.data["error"] for h in records] == ["ValueError: bad value 42"]
    assert any("bad value 42" in rec.getMessage() for rec in caplog.records)


@pytest.mark.timeout(30)
def test_explicit_failure_inside_logic_stops_downstream() -> None:
    down = Recorder()

    def up_logic(slot_data, policy_message, worker_state):
        from routilux import get_current_job

        get_current_job().complete("failed", error="given up")
        up.emit("out", x=1)  # dropped: the job already failed

    up = make_routine(up_logic)
    flow = new_flow("err-explicit")
    flow.add_routine(up, "up")
    flow.add_routine(make_routine(lambda sd, pm, ws: down.add(1), events=()), "down")
    flow.connect("up", "out", "down", "in")
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "up", "in", {})
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(10)
        assert (job.status, job.error) == ("failed", "given up")
        assert down.snapshot() == []
        assert "emit_dropped" in [h.event_name for h in ws.get_execution_history("up")]
        assert (ws.jobs_processed, ws.jobs_failed) == (1, 1)


def test_executor_errors_are_routilux_errors_and_keep_their_old_bases() -> None:
    """Everything routilux raises is a RoutiluxError (issue 15); WorkerDiedError stays a
    RuntimeError, so ``except RuntimeError`` written before keeps catching it."""
    from routilux import RoutiluxError
    from routilux.executors import RemoteLogicError, WorkerDiedError

    assert issubclass(WorkerDiedError, RoutiluxError)
    assert issubclass(WorkerDiedError, RuntimeError)
    assert issubclass(RemoteLogicError, RoutiluxError)
    for exc in (WorkerDiedError("child died"), RemoteLogicError("Bad: text")):
        with pytest.raises(RoutiluxError, match=str(exc)):
            raise exc
